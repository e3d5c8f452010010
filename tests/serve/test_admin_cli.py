"""`steward keys` and `steward audit` through the CLI."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from typer.testing import CliRunner

from steward.cli.app import app
from steward.service.audit import AuditLog, database_url
from steward.service.keys import KeyStore

runner = CliRunner()


def test_keys_create_prints_the_key_once_on_its_last_line(tmp_path: Path) -> None:
    res = runner.invoke(app, ["keys", "create", "--role", "reviewer", "--run-dir", str(tmp_path), "--name", "labellers"])
    assert res.exit_code == 0, res.output
    key = res.stdout.strip().splitlines()[-1]
    log = AuditLog(database_url(None, tmp_path))
    rec = KeyStore(log.engine).authenticate(key)
    assert rec is not None and rec.role == "reviewer" and rec.name == "labellers"
    listed = json.loads(runner.invoke(app, ["keys", "list", "--run-dir", str(tmp_path), "--json"]).stdout)
    assert [k["key_id"] for k in listed] == [rec.key_id] and key not in json.dumps(listed)
    assert runner.invoke(app, ["keys", "revoke", rec.key_id, "--run-dir", str(tmp_path)]).exit_code == 0
    assert KeyStore(log.engine).authenticate(key) is None
    bad = runner.invoke(app, ["keys", "revoke", "nope", "--run-dir", str(tmp_path)])
    assert bad.exit_code == 1
    wrong = runner.invoke(app, ["keys", "create", "--role", "root", "--run-dir", str(tmp_path)])
    assert wrong.exit_code == 2 and "valid roles: predict, reviewer, chat, admin" in wrong.output


def test_audit_verify_and_export_exit_codes(tmp_path: Path) -> None:
    log = AuditLog(database_url(None, tmp_path))
    for i in range(3):
        log.append(decision_id=f"d{i}", kind="predict", key_id="k", model_version="v", model_hash="h",
                   input_hash="x", redacted_input="t", findings=[], output={"label": "a"}, latency_ms=1.0)
    ok = runner.invoke(app, ["audit", "verify", "--run-dir", str(tmp_path), "--json"])
    assert ok.exit_code == 0 and json.loads(ok.stdout)["records"] == 3
    out = tmp_path / "export.jsonl"
    assert runner.invoke(app, ["audit", "export", "--run-dir", str(tmp_path), "--out", str(out)]).exit_code == 0
    assert len(out.read_text().splitlines()) == 3
    con = sqlite3.connect(tmp_path / "serve" / "audit.db")
    con.execute("UPDATE audit_records SET output = '{\"label\": \"b\"}' WHERE seq = 2")
    con.commit()
    broken = runner.invoke(app, ["audit", "verify", "--run-dir", str(tmp_path)])
    assert broken.exit_code == 1 and "record 2 (d1) was edited" in broken.output
