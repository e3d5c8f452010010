import json
from pathlib import Path

import pandas as pd
import pytest

from steward.data.config import InputConfig
from steward.data.io import load
from steward.data.quarantine import Quarantine
from steward.errors import InputDataError


def _load(path: Path, **kw: object) -> tuple[pd.DataFrame, int, Quarantine]:
    q = Quarantine()
    read = load(InputConfig(path=path, **kw), q)
    return read.frame, read.rows_in, q


def test_csv_malformed_empty_unknown_label_and_bad_encoding_are_quarantined(tmp_path: Path) -> None:
    p = tmp_path / "in.csv"
    p.write_bytes(
        b"text,label\n"
        b"hello there friend,a\n"
        b"too,many,fields\n"
        b",a\n"
        b"no label here,\n"
        b"caf\xe9 latin-1 byte,a\n"
        b"\"quoted, with comma\",b\n"
        b"outside the set,zzz\n"
    )
    frame, rows_in, q = _load(p, labels=["a", "b"], encoding="utf-8")  # named: bad bytes are quarantined
    assert rows_in == 7
    assert frame["text"].tolist() == ["hello there friend", "quoted, with comma"]
    reasons = sorted(r.reason for r in q.records)
    assert reasons == ["bad_encoding", "empty_text", "malformed_line", "missing_label", "unknown_label"]
    assert len(frame) + len(q.dropped_ids) == rows_in
    assert any("line 3" in r.detail for r in q.records if r.reason == "malformed_line")


def test_missing_column_error_names_field_value_and_available_columns(tmp_path: Path) -> None:
    p = tmp_path / "in.csv"
    p.write_text("body,intent\nhi,a\n")
    with pytest.raises(InputDataError, match=r"input\.text_column = 'text'.*Available columns: body, intent"):
        _load(p)


def test_group_column_missing_values_are_kept_and_named(tmp_path: Path) -> None:
    p = tmp_path / "in.tsv"
    p.write_text("text\tlabel\tgender\nhello world\ta\t\nbye world\tb\tf\n")
    frame, rows_in, _q = _load(p, group_columns=["gender"])
    assert frame["gender"].tolist() == ["(missing)", "f"] and rows_in == 2


def test_jsonl_and_parquet(tmp_path: Path) -> None:
    p = tmp_path / "in.jsonl"
    p.write_text('{"text": "one two", "label": "x"}\nnot json\n[1, 2]\n\n{"text": "three", "label": "y"}\n')
    frame, rows_in, q = _load(p)
    assert rows_in == 4 and len(frame) == 2 and [r.reason for r in q.records] == ["malformed_line"] * 2
    pq = tmp_path / "in.parquet"
    pd.DataFrame({"text": ["a b c", "d e f"], "label": [1, 2]}).to_parquet(pq)
    frame, rows_in, _ = _load(pq)
    assert frame["label"].tolist() == ["1", "2"] and rows_in == 2


def test_conll_and_ner_jsonl(tmp_path: Path) -> None:
    p = tmp_path / "in.conll"
    p.write_text("-DOCSTART- -X- -X- O\n\nEU NNP B-NP B-ORG\nrejects VBZ B-VP O\n\nPeter B-PER\nBlackburn I-PER\n\n"
                 "broken\n\n")
    frame, rows_in, q = _load(p, task="ner")
    assert frame["tokens"].tolist() == [["EU", "rejects"], ["Peter", "Blackburn"]]
    assert frame["tags"].tolist() == [["B-ORG", "O"], ["B-PER", "I-PER"]]
    assert rows_in == 3 and [r.reason for r in q.records] == ["malformed_line"]
    j = tmp_path / "ner.jsonl"
    j.write_text("\n".join(json.dumps(x) for x in [
        {"tokens": ["a", "b"], "tags": ["O", "B-LOC"]},
        {"tokens": ["a"], "tags": ["O", "O"]},
        {"tokens": ["a"], "tags": ["LOC"]},
        {"tokens": ["x"], "tags": ["B-FOO"]},
    ]))
    frame, rows_in, q = _load(j, task="ner", labels=["LOC"])
    assert len(frame) == 1 and rows_in == 4
    assert sorted(r.reason for r in q.records) == ["invalid_tag", "tokens_tags_mismatch", "unknown_label"]


def test_format_errors_are_clear(tmp_path: Path) -> None:
    p = tmp_path / "in.xlsx"
    p.write_text("x")
    with pytest.raises(InputDataError, match=r"set input.format to one of"):
        _load(p)
    with pytest.raises(InputDataError, match="does not exist"):
        _load(tmp_path / "missing.csv")
    c = tmp_path / "x.conll"
    c.write_text("a O\n")
    with pytest.raises(InputDataError, match=r"set input.task: ner"):
        _load(c)
    with pytest.raises(InputDataError, match="unknown encoding"):
        _load(tmp_path / "in.xlsx", format="csv", encoding="klingon")


def test_auto_encoding_keeps_utf8_when_only_a_stray_byte_is_bad(tmp_path: Path) -> None:
    p = tmp_path / "mostly_utf8.csv"
    rows = [f"café crème number {i},a".encode() for i in range(300)]
    rows[7] = b"one stray \xff byte here,a"
    p.write_bytes(b"text,label\n" + b"\n".join(rows) + b"\n")
    frame, rows_in, q = _load(p)
    assert rows_in == 300 and [r.reason for r in q.records] == ["bad_encoding"]
    assert frame["text"].str.contains("café crème").all()  # not re-read in another code page


@pytest.mark.parametrize("raw, canonical", [
    ("2", "2"), ("2.0", "2"), (" 2.00 ", "2"), (2.0, "2"), (2, "2"), ("-1.0", "-1"), ("+2.0", "+2"),
    ("007", "007"), ("007.0", "007"), ("2.5", "2.5"), ("1e3", "1e3"), (True, "True"), ("True", "True"),
    (None, ""), (float("nan"), ""), (" refund ", "refund"),
])
def test_label_spellings(raw: object, canonical: str) -> None:
    from steward.data.io import canonical_label

    assert canonical_label(raw) == canonical


def test_label_names_from_yaml_int_keys(tmp_path: Path) -> None:
    from steward.config import load_config

    cfg = tmp_path / "steward.yaml"
    cfg.write_text("data:\n  label_names: {0: negative, 1: positive}\n")
    assert load_config(cfg).data.label_names == {"0": "negative", "1": "positive"}
