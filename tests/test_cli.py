"""The real `steward` command in a subprocess, as a user runs it."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

STEWARD = [sys.executable, "-m", "steward.cli.app"]


def steward(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS": "", "COLUMNS": "200"}
    return subprocess.run([*STEWARD, *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=600)


@pytest.mark.parametrize("cmd", [[], ["data"], ["train"], ["federated"], ["demo"], ["init"], ["ledger"], ["ledger", "verify"]])
def test_every_command_has_help(cmd: list[str]) -> None:
    r = steward(*cmd, "--help")
    assert r.returncode == 0 and "Usage" in r.stdout


def test_version_short_help_and_flags_without_a_type() -> None:
    from steward import __version__

    r = steward("--version")
    assert r.returncode == 0 and r.stdout.strip() == f"steward {__version__}"
    for cmd in (["-h"], ["data", "run", "-h"], ["ledger", "verify", "-h"], ["evaluate", "-h"]):
        r = steward(*cmd)
        assert r.returncode == 0 and "Usage" in r.stdout, cmd
        assert "<bool>" not in r.stdout, cmd  # a flag takes no value, so none is shown


def test_init_writes_a_valid_commented_config(tmp_path: Path) -> None:
    r = steward("init", str(tmp_path))
    assert r.returncode == 0
    text = (tmp_path / "steward.yaml").read_text()
    assert "# Steward run configuration" in text and "threshold: 0.8" in text
    assert steward("init", str(tmp_path)).returncode == 2  # refuses to overwrite
    # The template's own "validate with" line works as written.
    assert "Validate with `steward validate -c steward.yaml`" in text
    r = steward("validate", "-c", "steward.yaml", cwd=tmp_path)
    assert r.returncode == 0 and "valid" in r.stdout
    (tmp_path / "steward.yaml").write_text(text.replace("threshold: 0.8", "threshold: 8.0", 1))
    r = steward("validate", "-c", "steward.yaml", cwd=tmp_path)
    assert r.returncode == 2 and "threshold: got 8.0" in r.stderr


def test_ledger_verify_names_a_missing_run_folder(tmp_path: Path) -> None:
    r = steward("ledger", "verify", "--run-dir", str(tmp_path / "nope"))
    assert r.returncode == 2 and "no such run folder" in r.stderr
    r = steward("ledger", "verify", "--run-dir", str(tmp_path))
    assert r.returncode == 2 and "has no ledger.jsonl" in r.stderr
    r = steward("ledger", "verify")
    assert r.returncode == 2 and "--run-dir: missing" in r.stderr


def test_data_with_flags_only_then_verify(tmp_path: Path, small_csv: Path) -> None:
    run_dir = tmp_path / "run"
    r = steward("data", str(small_csv), "--text-column", "text", "--label-column", "label",
                "--group-column", "gender", "--run-dir", str(run_dir), "--regex-only", "--json")
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout)
    assert summary["rows_in"] == summary["rows_kept"] + summary["rows_quarantined"] == 15
    assert summary["pii"]["mode"] == "regex"
    ok = steward("ledger", "verify", str(run_dir))
    assert ok.returncode == 0 and "ledger intact" in ok.stdout
    assert steward("ledger", "verify", "--run-dir", str(run_dir)).returncode == 0
    (run_dir / "data" / "summary.json").write_text("{}")
    bad = steward("ledger", "verify", str(run_dir), "--json")
    assert bad.returncode == 1 and json.loads(bad.stdout)["broken_index"] == 0


def test_bad_config_exits_nonzero_naming_field_value_and_fix(tmp_path: Path, small_csv: Path) -> None:
    cfg = tmp_path / "steward.yaml"
    cfg.write_text(f"data:\n  input:\n    path: {small_csv}\n  dedup:\n    threshold: 2\n")
    r = steward("data", "-c", str(cfg))
    assert r.returncode == 2
    assert "data.dedup.threshold: got 2" in r.stderr and "Fix: lower it" in r.stderr
    assert not (tmp_path / "runs").exists()


def test_missing_column_is_a_clear_error(tmp_path: Path, small_csv: Path) -> None:
    r = steward("data", str(small_csv), "--text-column", "body", "--run-dir", str(tmp_path / "r"))
    assert r.returncode == 2
    assert "input.text_column = 'body'" in r.stderr and "Available columns: gender, label, text" in r.stderr


def test_demo_runs_end_to_end_and_finds_what_was_planted(tmp_path: Path) -> None:
    r = steward("demo", "--run-dir", str(tmp_path / "demo"), "--rows", "1500", "--skip-train", "--skip-serve",
                "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    plan, s = out["plan"], out["data"]
    assert out["ledger"]["ok"]
    assert s["invariant_ok"] and s["rows_in"] == plan["rows"]
    by = s["quarantine_by_reason"]
    assert by["malformed_line"] == plan["malformed_lines"]
    assert by["empty_text"] == plan["empty"]
    assert by["unknown_label"] == plan["unknown_label"]
    assert by["wrong_language"] == plan["foreign"]
    assert by["harmful_text"] >= plan["abusive"] * 0.9
    # a planted copy whose source also got a conflicting-label copy is counted as a conflict instead
    assert by["duplicate_exact"] + by["duplicate_label_conflict"] >= plan["exact_duplicates"]
    assert by["duplicate_near"] >= plan["near_duplicates"] * 0.9
    assert s["duplicates"]["label_conflicts"] >= 6
    for kind, n in plan["pii"].items():
        assert s["pii_by_type"].get(kind, 0) >= n * 0.9, kind
    terms = {(a["term"], a["label"]) for a in s["balance"]["term_label_associations"]}
    assert (plan["spurious_term"], plan["spurious_label"]) in terms
    gender = s["balance"]["groups"]["gender"]
    assert gender["shares"]["nonbinary"] < 0.05 and gender["imbalance_ratio"] > 10  # the under-represented group
    assert (tmp_path / "demo" / "data" / "data_card.md").is_file()
    # the chat run beside it: every problem planted in the conversations is found, every record accounted for
    chat = out["chat"]
    cplan, cs = chat["plan"], chat["data"]
    assert out["chat_ledger"]["ok"] and cs["invariant_ok"] and cs["rows_in"] == cplan["records"]
    by = cs["quarantine_by_reason"]
    for reason, n in cplan["bad"].items():  # unknown role, no answer, empty turn, turn order, broken JSON
        assert by.get(reason) == n, (reason, by)
    assert by["duplicate_exact"] == cplan["exact_duplicates"]
    assert by.get("duplicate_prompt_exact", 0) + by.get("duplicate_prompt_near", 0) == cplan["duplicate_prompts"]
    assert by["harmful_answer"] == cplan["toxic_answers"]
    for kind in cplan["pii_user"]:
        planted = cplan["pii_user"][kind] + cplan["pii_assistant"].get(kind, 0)
        assert cs["pii_by_type"].get(kind, 0) >= planted, kind
    assert cs["pii"]["by_role"]["assistant"] >= sum(cplan["pii_assistant"].values())
    canaries = json.loads((tmp_path / "demo" / "chat" / "data" / "canaries.json").read_text())
    assert canaries["canaries"] and canaries["canaries"][0]["secret"]


def test_train_flags_and_bad_values(tmp_path: Path, small_csv: Path) -> None:
    run_dir = tmp_path / "run"
    assert steward("data", str(small_csv), "--run-dir", str(run_dir), "--regex-only").returncode == 0
    bad = steward("train", "--run-dir", str(run_dir), "--method", "magic")
    assert bad.returncode == 2 and "train.method: got 'magic'" in bad.stderr and "'lora'" in bad.stderr
    missing = steward("train", "--run-dir", str(tmp_path / "nothing"))  # a typo: named as such, a usage error
    assert missing.returncode == 2 and "no such run folder" in missing.stderr
    (tmp_path / "empty").mkdir()
    missing = steward("train", "--run-dir", str(tmp_path / "empty"))  # a real folder with no data stage yet
    assert missing.returncode == 1 and "run `steward data`" in missing.stderr


def test_console_tables_wrap_at_80_columns_instead_of_cutting() -> None:
    from rich.console import Console

    from steward.cli.compress_cmd import summary_table

    fix = "set data.input.group_columns to the columns that hold the groups, e.g. gender"
    cand = {"name": "onnx_int8_with_a_long_name", "format": "onnx", "size_bytes": 2**20, "accuracy": 0.9,
            "dp_difference": 0.01, "attack_success": 0.2, "latency_ms_p95": 3.0, "throughput_per_s": 300.0,
            "rejected": f"max_cf_flip_rate 0.12 > 0.10; {fix}", "chosen": False}
    console = Console(width=80, record=True, file=open(os.devnull, "w"))
    console.print(summary_table([cand]))
    text = console.export_text()
    assert "…" not in text
    flat = "".join(text.split())  # folded cells read in full once line breaks and borders are removed
    assert "".join(fix.split()) in flat.replace("│", "").replace("┃", "")
