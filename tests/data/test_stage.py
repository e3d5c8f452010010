"""The whole data stage on small files: accounting, outputs, ledger, atomicity."""

import json
from pathlib import Path

import pandas as pd
import pytest

from steward.config import parse_config
from steward.data import run
from steward.errors import DataStageError
from steward.ledger import verify
from tests.conftest import write_csv


def _cfg(tmp_path: Path, path: Path, **data: object) -> object:
    raw = {"run_dir": str(tmp_path / "run"),
           "data": {"input": {"path": str(path), "group_columns": ["gender"],
                              "labels": ["refund", "delivery", "billing", "technical", "cancel"]},
                    "split": {"validation": 0.2, "test": 0.2}, **data}}
    return parse_config(raw)


def test_every_row_is_accounted_for_and_outputs_are_complete(tmp_path: Path, small_csv: Path) -> None:
    result = run(_cfg(tmp_path, small_csv))
    s = result.summary
    assert s["rows_in"] == 15
    assert s["rows_in"] == s["rows_kept"] + s["rows_quarantined"] and s["invariant_ok"]
    assert s["quarantine_by_reason"]["empty_text"] == 1
    assert s["quarantine_by_reason"]["unknown_label"] == 1
    assert s["quarantine_by_reason"]["duplicate_exact"] == 1
    assert s["quarantine_by_reason"]["duplicate_near"] == 1
    assert s["pii_by_type"] == {"CREDIT_CARD": 1, "EMAIL_ADDRESS": 1}
    # The default NER is the built-in names model, named by its keyed name in the summary and the card.
    assert s["pii"]["mode"] == "regex+ner" and s["pii"]["ner_model"].startswith("steward-names-")
    out = result.out_dir
    for name in ("train", "validation", "test", "quarantine"):
        assert (out / f"{name}.parquet").is_file()
    splits = pd.concat([pd.read_parquet(out / f"{n}.parquet") for n in ("train", "validation", "test")])
    assert len(splits) == s["rows_kept"] and splits["row_id"].is_unique
    assert {"text", "label", "gender", "sample_weight", "toxicity", "pii_types"} <= set(splits.columns)
    assert "<CREDIT_CARD>" in " ".join(splits["text"]) and "4111" not in " ".join(splits["text"])
    q = pd.read_parquet(out / "quarantine.parquet")
    assert set(q.columns) == {"row_id", "line", "reason", "stage", "text_sha256", "detail", "action"}
    assert q["line"].notna().all()  # every record points at its line in the input
    assert set(q.loc[q.action == "dropped", "row_id"]) | set(splits["row_id"]) == set(range(15))
    # never raw PII in the quarantine, only hashes and positions
    dumped = q.to_json()
    assert "jane.doe" not in dumped and "4111" not in dumped
    summary = json.loads((out / "summary.json").read_text())
    assert summary["rows_kept"] == s["rows_kept"]
    card = (out / "data_card.md").read_text()
    assert "## What was removed and why" in card and "| empty_text | 1 |" in card
    assert f"`{s['pii']['ner_model']}`" in card
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["rows"] == s["splits"] and manifest["splits"]["train"]["path"] == "data/train.parquet"
    assert verify(tmp_path / "run").ok


def test_tampered_output_is_caught_by_the_ledger(tmp_path: Path, small_csv: Path) -> None:
    result = run(_cfg(tmp_path, small_csv))
    train = result.out_dir / "train.parquet"
    df = pd.read_parquet(train)
    df.loc[0, "label"] = "billing" if df.loc[0, "label"] != "billing" else "refund"
    df.to_parquet(train)
    report = verify(tmp_path / "run")
    assert not report.ok and "data/train.parquet was modified" in report.error


def test_rerun_appends_and_interrupted_run_keeps_previous_outputs(tmp_path: Path, small_csv: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = _cfg(tmp_path, small_csv)
    first = run(cfg)
    before = {p.name: p.read_bytes() for p in first.out_dir.iterdir()}
    import steward.data.card as card

    def crash(*a: object, **k: object) -> str:
        raise KeyboardInterrupt("killed while writing the data card")

    monkeypatch.setattr(card, "render", crash)
    with pytest.raises(KeyboardInterrupt):
        run(cfg)
    after = {p.name: p.read_bytes() for p in first.out_dir.iterdir()}
    assert after == before  # the previous complete set, not a mix
    assert verify(tmp_path / "run").ok
    monkeypatch.undo()
    run(cfg)
    report = verify(tmp_path / "run")
    assert report.ok and report.events == 2


def test_drop_action_and_screen_quarantine(tmp_path: Path) -> None:
    p = write_csv(tmp_path / "in.csv", ["text", "label"], [
        ["please update the card 4111 1111 1111 1111 on my account", "billing"],
        ["what the fuck is wrong with you idiots, fix it", "complaint"],
        ["how do I change the delivery address for my order", "delivery"],
        ["can I pay with a different method next month please", "billing"],
        ["the parcel arrived damaged and the box was open", "delivery"],
        ["i would like to speak to a manager about my last bill", "complaint"],
    ])
    cfg = parse_config({"run_dir": str(tmp_path / "run"), "data": {
        "input": {"path": str(p)}, "pii": {"actions": {"CREDIT_CARD": "drop"}},
        "screen": {"action": "quarantine", "threshold": 0.8}, "split": {"validation": 0.0, "test": 0.0}}})
    s = run(cfg).summary
    assert s["quarantine_by_reason"] == {"pii": 1, "harmful_text": 1}
    assert s["rows_kept"] == 4 and s["invariant_ok"]


def test_user_split_column_and_leakage_quarantine(tmp_path: Path) -> None:
    base = "the courier left my new blender with a neighbour I have never met before today"
    rows = [[base, "delivery", "train"], [base + " again", "delivery", "test"],
            ["how do I reset the password on my account settings page", "account", "train"],
            ["my refund has not arrived after two weeks of waiting", "refund", "validation"],
            ["the printer will not connect to the wireless network", "tech", "bogus"]]
    p = write_csv(tmp_path / "in.csv", ["text", "label", "part"], rows)
    cfg = parse_config({"run_dir": str(tmp_path / "run"), "data": {
        "input": {"path": str(p)}, "dedup": {"near": False}, "split": {"column": "part"}}})
    s = run(cfg).summary
    assert s["quarantine_by_reason"] == {"invalid_split_value": 1, "leakage_near_duplicate_of_train": 1}
    assert s["leakage"]["found"] == 1 and s["splits"] == {"train": 2, "validation": 1, "test": 0}


def test_nothing_left_is_a_clear_error(tmp_path: Path) -> None:
    p = write_csv(tmp_path / "in.csv", ["text", "label"], [["", "a"], ["", "b"]])
    cfg = parse_config({"run_dir": str(tmp_path / "run"), "data": {"input": {"path": str(p)}}})
    with pytest.raises(DataStageError, match=r"no rows left after cleaning \(2 in, all quarantined"):
        run(cfg)


def test_ner_stage_on_real_conll(tmp_path: Path, shared_data: Path) -> None:
    lines = (shared_data / "conll2003" / "dev.txt").read_text().split("\n\n")[:300]
    src = tmp_path / "dev.conll"
    src.write_text("\n\n".join(lines) + "\n")
    cfg = parse_config({"run_dir": str(tmp_path / "run"), "data": {
        "input": {"path": str(src), "task": "ner"}, "pii": {"ner": False}, "quality": {"min_chars": 1},
        "split": {"seed": 3}}})
    result = run(cfg)
    s = result.summary
    assert s["invariant_ok"] and s["rows_kept"] > 200
    train = pd.read_parquet(result.out_dir / "train.parquet")
    assert all(len(t) == len(g) for t, g in zip(train["tokens"], train["tags"], strict=True))
    assert set(s["balance"]["entity_types"]["counts"]) == {"PER", "ORG", "LOC", "MISC"}
    assert set(result.manifest.labels) >= {"B-PER", "I-PER", "O"}


def test_canaries_are_planted_in_train_only_and_recorded(tmp_path: Path, small_csv: Path) -> None:
    result = run(_cfg(tmp_path, small_csv, canaries={"count": 3, "repeats": 2, "digits": 8}))
    s, out = result.summary, result.out_dir
    assert s["invariant_ok"] and s["canaries"]["rows_added"] == 6
    planted = json.loads((out / "canaries.json").read_text())
    texts = {c["text"] for c in planted["canaries"]}
    assert len(texts) == 3 and all(t.startswith("my account number is ") and len(t.split()[-1]) == 8 for t in texts)
    train = pd.read_parquet(out / "train.parquet")
    held = pd.concat([pd.read_parquet(out / f"{n}.parquet") for n in ("validation", "test")])
    assert train["text"].isin(texts).sum() == 6 and not held["text"].isin(texts).any()
    assert train["row_id"].is_unique and train.loc[train["text"].isin(texts), "row_id"].min() >= 15
    assert set(train.loc[train["text"].isin(texts), "label"]) <= {"refund", "delivery", "billing", "technical", "cancel"}
    assert s["splits"]["train"] == len(train)
    assert "## Planted canaries" in (out / "data_card.md").read_text()


@pytest.mark.parametrize(("data", "field"), [
    ({"canaries": {"count": 2, "template": "no placeholder here"}}, "template"),
    ({"canaries": {"count": 2}, "input": {"task": "ner"}}, "canaries.count"),
])
def test_bad_canary_settings_are_refused_up_front(tmp_path: Path, small_csv: Path, data: dict, field: str) -> None:
    from steward.errors import ConfigError

    raw = {"run_dir": str(tmp_path / "run"), "data": {"input": {"path": str(small_csv)}}}
    raw["data"] = {**raw["data"], **data, "input": {"path": str(small_csv), **data.get("input", {})}}
    with pytest.raises(ConfigError, match=field.replace(".", r"\.")):
        parse_config(raw)
    assert not (tmp_path / "run").exists()
