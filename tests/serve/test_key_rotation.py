"""Key rotation recorded in the log itself, on SQLite and a real PostgreSQL server: the old key signs the
handover; verifiers holding either key verify the whole log against every checkpoint; a forged handover, a
checkpoint by the old key after it, and a key that never signed the log are caught; a service starts with the
new key against a witness that holds the old key's checkpoints, and refuses to go on signing with the old one."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from steward.errors import LedgerIntegrityError
from steward.ledger.checkpoint import Ed25519Signer, sign_checkpoint, write_key
from steward.service.audit import AuditLog
from steward.service.transparency import ROTATION
from tests.serve.test_transparency import ORIGIN, _append


def _rotated(log: AuditLog) -> tuple[Ed25519Signer, Ed25519Signer, list]:  # type: ignore[type-arg]
    old, new = Ed25519Signer.generate(), Ed25519Signer.generate()
    _append(log, 10)
    seen = [log.sign_checkpoint(old, ORIGIN)]
    done = log.rotate_key(old, new, ORIGIN)
    assert done["seq"] == 11 and done["old_key_id"] != done["new_key_id"]
    _append(log, 5, start=10)
    seen.append(log.sign_checkpoint(new, ORIGIN))
    return old, new, seen


def test_either_key_verifies_the_whole_log_after_a_rotation(log: AuditLog) -> None:
    old, new, seen = _rotated(log)
    assert [cp.size for cp in seen] == [10, 16]
    covering = log.latest_checkpoint()
    assert covering is not None and covering.size == 16
    for key in (old.public_key, new.public_key):
        report = log.verify_against(seen, key)
        assert report.ok, report.error
    history = log.key_history(new.public_key).describe()
    assert [(h["from_size"], h["to_size"]) for h in history] == [(1, 11), (12, None)]
    record = next(r for r in log.records() if r["kind"] == ROTATION)
    assert json.loads(record["output"])["new_key_id"] == history[1]["key_id"]  # readable without the data key
    assert log.verify().ok


def test_a_forged_handover_and_the_old_key_after_it_are_caught(log: AuditLog) -> None:
    old, new, seen = _rotated(log)
    late = sign_checkpoint(old, ORIGIN, seen[-1].size, seen[-1].root, "2026-12-03T00:00:00Z")
    report = log.verify_against([*seen, late], new.public_key)
    assert not report.ok and "not by the key given" in str(report.error)  # the old key may not sign size 16
    stranger = Ed25519Signer.generate()
    with pytest.raises(LedgerIntegrityError, match="never signed this log"):
        log.key_history(stranger.public_key)
    from sqlalchemy import update

    from steward.service.tables import audit_records

    # the handover rewritten to name a thief's key: the old key's endorsement no longer matches it
    out = json.loads(next(r for r in log.records() if r["kind"] == ROTATION)["output"])
    from steward.ledger.checkpoint import public_key_text

    forged = {**out, "new_public_key": public_key_text(Ed25519Signer.generate().public_key)}
    with log.engine.begin() as conn:
        conn.execute(update(audit_records).where(audit_records.c.kind == ROTATION).values(output=json.dumps(forged)))
    with pytest.raises(LedgerIntegrityError, match="forged"):
        log.key_history(old.public_key)


def test_the_service_rotates_through_the_cli_and_starts_with_the_new_key(served_run: Path, tmp_path: Path) -> None:
    from steward.cli.app import app as cli
    from steward.service.audit import database_url
    from steward.service.keys import KeyStore
    from tests.serve.conftest import live
    from tests.train.conftest import copy_run

    run_dir = copy_run(served_run, tmp_path / "run")
    old_file = write_key(Ed25519Signer.generate(), tmp_path / "keys" / "old.pem")
    new_file = write_key(Ed25519Signer.generate(), tmp_path / "keys" / "new.pem")
    witness_dir = tmp_path / "witness"
    base = {"witness_dir": str(witness_dir), "checkpoint_interval_s": 0.2}
    key = KeyStore(AuditLog(database_url(None, run_dir)).engine).create("predict")[1]
    with live(run_dir, transparency={**base, "signing_key": str(old_file)}) as srv:
        for text in ("refund my order", "where is my parcel"):
            assert httpx.post(f"{srv.url}/v1/predict", json={"text": text}, headers={"X-API-Key": key},
                              timeout=30).status_code == 200
    config = tmp_path / "steward.yaml"
    config.write_text(json.dumps({"run_dir": str(run_dir), "serve": {"transparency": {**base,
                                                                                      "signing_key": str(old_file)}}}))
    runner = CliRunner()
    res = runner.invoke(cli, ["audit", "rotate-key", "--new-key", str(new_file), "-c", str(config), "--json"])
    assert res.exit_code == 0, res.output
    # the old key may no longer sign: a service started with it refuses (the default audit_broken: refuse)
    from fastapi.testclient import TestClient

    from steward.config import parse_config
    from steward.errors import AuditChainError
    from steward.serve import create_app

    stale = create_app(parse_config({"run_dir": str(run_dir), "serve": {
        "guards": {"injection_model": "patterns"}, "transparency": {**base, "signing_key": str(old_file)}}}))
    with pytest.raises(AuditChainError, match="rotated to"), TestClient(stale):
        pass
    with live(run_dir, transparency={**base, "signing_key": str(new_file)}) as srv:
        assert httpx.post(f"{srv.url}/v1/predict", json={"text": "my card"}, headers={"X-API-Key": key},
                          timeout=30).status_code == 200
        doc = httpx.get(f"{srv.url}/v1/transparency", headers={"X-API-Key": key}, timeout=10).json()
        assert len(doc["key_history"]) == 2 and doc["key_history"][1]["to_size"] is None
    # an auditor holding only the old public key still verifies everything against the witness
    from steward.ledger.checkpoint import load_signer, public_key_text

    for pem in (old_file, new_file):
        ok = runner.invoke(cli, ["audit", "verify", "-c", str(config), "--witness", str(witness_dir), "--public-key",
                                 public_key_text(load_signer(pem).public_key)])
        assert ok.exit_code == 0, ok.output
