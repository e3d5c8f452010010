"""Nothing is changed or dropped silently: each file here is built in the test to reproduce a case where the
data stage used to exit 0 after damaging or dropping data (CoNLL persons, latin-1, a wrong label list, a JSON
array, a header-only file), driven through the real CLI."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from steward.cli.app import app

WORDS = ["parcel", "refund", "invoice", "account", "router", "order", "delivery", "password", "charge", "screen"]


def _steward(*args: str) -> tuple[int, str, str]:
    res = CliRunner().invoke(app, list(args))
    return res.exit_code, res.stdout, res.stderr


def _texts(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [f"message {i} about my {rng.choice(WORDS)} and the {rng.choice(WORDS)} {rng.choice(WORDS)} today"
            for i in range(n)]


def test_latin1_file_is_detected_and_a_wrong_named_encoding_stops_the_stage(tmp_path: Path) -> None:
    texts = _texts(200)
    rows = [f"{t} {'café crème à régler' if i % 4 == 0 else 'thanks'}\t{i % 2}" for i, t in enumerate(texts)]
    src = tmp_path / "latin1.tsv"
    src.write_bytes(("text\tlabel\n" + "\n".join(rows) + "\n").encode("latin-1"))
    code, out, err = _steward("data", str(src), "--run-dir", str(tmp_path / "auto"), "--regex-only", "--json")
    assert code == 0, err
    s = json.loads(out)
    assert s["encoding_detected"] and s["encoding"].replace("_", "-") in {"latin-1", "iso8859-1", "cp1252"}
    assert "bad_encoding" not in s["quarantine_by_reason"]
    train = pd.read_parquet(tmp_path / "auto" / "data" / "train.parquet")
    assert train["text"].str.contains("café crème").sum() > 20
    assert "encoding" in (tmp_path / "auto" / "data" / "data_card.md").read_text()
    # Naming the wrong encoding: the rows with bad bytes are not silently dropped; the stage stops.
    code, out, err = _steward("data", str(src), "--run-dir", str(tmp_path / "utf8"), "--regex-only",
                              "--encoding", "utf-8")
    assert code == 1
    assert "bad_encoding: 50 rows (25.0%)" in err and "--encoding" in err
    assert not (tmp_path / "utf8" / "data").exists()


def test_a_label_list_that_leaves_out_a_class_stops_the_stage_and_names_the_labels_found(tmp_path: Path) -> None:
    texts = _texts(600, seed=1)
    spellings = ["0", "1", "2", "2.0"]  # a float-spelled label is the same class as "2"
    src = tmp_path / "three.csv"
    pd.DataFrame({"text": texts, "label": [spellings[i % 4] for i in range(600)]}).to_csv(src, index=False)
    code, out, err = _steward("data", str(src), "--run-dir", str(tmp_path / "r"), "--regex-only", "--labels", "0,1")
    assert code == 1
    assert "unknown_label: 300 rows (50.0%)" in err and "label '2': all 300 rows" in err
    # With --allow-loss it goes on, says so first, and the data card opens with it.
    code, out, err = _steward("data", str(src), "--run-dir", str(tmp_path / "r"), "--regex-only", "--labels", "0,1",
                              "--allow-loss", "--json")
    assert code == 0
    assert "warning: data lost" in err and "label '2'" in err
    s = json.loads(out)
    assert s["labels_found"] == {"2": 300, "0": 150, "1": 150} and s["label_spellings_normalised"] == {"2.0": "2"}
    card = (tmp_path / "r" / "data" / "data_card.md").read_text()
    assert card.index("Data lost") < card.index("## Source")
    # Without the wrong list every spelling of 2 is one class.
    code, out, err = _steward("data", str(src), "--run-dir", str(tmp_path / "all"), "--regex-only", "--json")
    assert code == 0, err
    assert json.loads((tmp_path / "all" / "data" / "manifest.json").read_text())["labels"] == ["0", "1", "2"]


def test_a_json_array_file_is_read_as_records(tmp_path: Path) -> None:
    texts = _texts(120, seed=2)
    src = tmp_path / "array.json"
    src.write_text(json.dumps([{"text": t, "label": "ab"[i % 2]} for i, t in enumerate(texts)], indent=2))
    code, out, err = _steward("data", str(src), "--run-dir", str(tmp_path / "r"), "--regex-only", "--json")
    assert code == 0, err
    s = json.loads(out)
    assert s["rows_in"] == 120 and "malformed_line" not in s["quarantine_by_reason"]
    # An array of records without the expected columns is named as such, with the columns it has.
    other = tmp_path / "spans.json"
    other.write_text(json.dumps([{"full_text": t, "spans": []} for t in texts]))
    code, _, err = _steward("data", str(other), "--run-dir", str(tmp_path / "s"), "--regex-only")
    assert code == 2 and "input.text_column = 'text'" in err and "full_text" in err


def test_when_every_row_fails_one_way_the_error_says_what_the_file_looks_like(tmp_path: Path) -> None:
    src = tmp_path / "arrays.jsonl"  # JSON Lines of arrays, not of objects
    src.write_text("".join(json.dumps([t, "a"]) + "\n" for t in _texts(30)))
    code, _, err = _steward("data", str(src), "--run-dir", str(tmp_path / "r"), "--regex-only")
    assert code == 1
    assert "Every row failed for the same reason (malformed_line" in err
    assert "expected one JSON object per line" in err and "begins like a JSON array" in err


def test_a_header_only_file_is_refused_by_name(tmp_path: Path) -> None:
    src = tmp_path / "header.csv"
    src.write_text("text,label\n")
    code, _, err = _steward("data", str(src), "--run-dir", str(tmp_path / "r"))
    assert code == 2 and "header.csv has no data rows (columns: label, text)" in err
    assert not (tmp_path / "r" / "ledger.jsonl").exists()


def test_quarantine_command_lists_rows_with_lines_and_fixes(tmp_path: Path, small_csv: Path) -> None:
    run = tmp_path / "r"
    code, _, err = _steward("data", str(small_csv), "--run-dir", str(run), "--regex-only",
                            "--labels", "refund,delivery,billing,technical,cancel")
    assert code == 0, err
    code, out, err = _steward("data", "quarantine", "--run-dir", str(run), "--reason", "unknown_label", "--json")
    assert code == 0, err
    rep = json.loads(out)
    assert rep["total"] == 1 and rep["rows"][0]["line"] == 16 and "--labels" in rep["rows"][0]["fix"]
    assert not rep["failed_attempt"]
    code, out, _ = _steward("data", "quarantine", "--run-dir", str(run))
    assert code == 0 and "duplicate_exact" in out and "fix for unknown_label" in out
    code, _, err = _steward("data", "quarantine", "--run-dir", str(run), "--reason", "nonsense")
    assert code == 2 and "reasons in this run:" in err
    code, _, err = _steward("data", "quarantine", "--run-dir", str(tmp_path / "nowhere"))
    assert code == 2 and "no such run folder" in err


def test_quarantine_command_shows_a_failed_attempt(tmp_path: Path) -> None:
    src = tmp_path / "three.csv"
    pd.DataFrame({"text": _texts(300, seed=4), "label": [str(i % 3) for i in range(300)]}).to_csv(src, index=False)
    run = tmp_path / "r"
    assert _steward("data", str(src), "--run-dir", str(run), "--regex-only", "--labels", "0,1")[0] == 1
    code, out, err = _steward("data", "quarantine", "--run-dir", str(run), "--reason", "unknown_label", "--json")
    assert code == 0, err
    rep = json.loads(out)
    assert rep["failed_attempt"] and rep["total"] == 100
    # A later successful run supersedes the failed attempt.
    assert _steward("data", str(src), "--run-dir", str(run), "--regex-only")[0] == 0
    assert not json.loads(_steward("data", "quarantine", "--run-dir", str(run), "--json")[1])["failed_attempt"]


CONLL = """-DOCSTART- O

Peter B-PER
Blackburn I-PER
said O
the O
Bovine B-MISC
Spongiform I-MISC
Encephalopathy I-MISC
report O
was O
wrong O
. O

PRICE O
100.92 O
PAY O
DATE O
24.SEP.96 O

Blackburn B-PER
met O
Werner B-PER
Zwingmann I-PER
in O
Brussels B-LOC
. O
"""


@pytest.mark.parametrize("ner", [True, False], ids=["spacy", "regex-only"])
def test_conll_persons_are_pseudonymised_consistently_and_other_labels_untouched(
        tmp_path: Path, ner: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STEWARD_PII_KEY", "a fixed key, so the surrogates are known")
    from steward.data.pii.operators import PIIKey, surrogate_name

    lone = surrogate_name("Blackburn", first=False, key=PIIKey.from_env("STEWARD_PII_KEY"))
    src = tmp_path / "tiny.conll"
    src.write_text(CONLL * 4)  # repeated: exact duplicates are removed, the rest must survive intact
    args = ["data", str(src), "--task", "ner", "--run-dir", str(tmp_path / "r"), "--json"]
    code, out, err = _steward(*args, *([] if ner else ["--regex-only"]))
    assert code == 0, err
    s = json.loads(out)
    rows = pd.concat([pd.read_parquet(tmp_path / "r" / "data" / f"{n}.parquet") for n in ("train", "validation",
                                                                                          "test")])
    for toks, tags in zip(rows["tokens"], rows["tags"], strict=True):
        toks, tags = list(toks), list(tags)
        assert len(toks) == len(tags) and not any("<" in t for t in toks)  # no placeholder anywhere
        by = dict(zip(toks, tags, strict=True))
        assert "Blackburn" not in by and "Peter" not in by and "Zwingmann" not in by
        if "Spongiform" in toks:
            assert toks[toks.index("Spongiform") - 1] == "Bovine" and by["Spongiform"] == "I-MISC"
        if "PRICE" in toks:
            assert toks == ["PRICE", "100.92", "PAY", "DATE", "24.SEP.96"]
        if "Brussels" in toks:
            assert by["Brussels"] == "B-LOC"
            assert tags[0] == "B-PER" and toks[0] == lone  # a lone PER token: its surname surrogate
        if "Spongiform" in toks:
            assert toks[1] == lone  # "Peter Blackburn": the same token, the same surrogate
    assert s["pii"]["by_tag"]["PER"]["pseudonymise"] >= 5
    assert "MISC" not in s["pii"]["by_tag"] or set(s["pii"]["by_tag"]["MISC"]) == {"kept_labelled"}
    assert "Token-classification data" in (tmp_path / "r" / "data" / "data_card.md").read_text()
