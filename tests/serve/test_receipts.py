"""Receipts through the real service: every decision carries its leaf, the signed checkpoint and proof arrive
at /v1/receipts/{id}, `steward audit verify-receipt` checks them offline with the published key, and a
service refuses to extend a log its witness says was rewritten."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from steward.cli.app import app as cli
from steward.ledger.checkpoint import Ed25519Signer, write_key
from steward.service.audit import AuditLog, database_url, record_hash
from steward.service.keys import KeyStore
from tests.serve.conftest import live, start_unready
from tests.train.conftest import copy_run


@pytest.fixture
def signed(served_run: Path, tmp_path: Path):  # type: ignore[no-untyped-def]
    run_dir = copy_run(served_run, tmp_path / "run")
    key_file = write_key(Ed25519Signer.generate(), tmp_path / "keys" / "signing.pem")
    transparency = {"signing_key": str(key_file), "witness_dir": str(tmp_path / "witness"),
                    "checkpoint_interval_s": 0.2}
    keys = {role: KeyStore(AuditLog(database_url(None, run_dir)).engine).create(role)[1]
            for role in ("predict", "admin")}
    return run_dir, transparency, keys, tmp_path


def _receipt(url: str, key: str, decision_id: str) -> dict:
    for _ in range(50):  # signed within the interval
        r = httpx.get(f"{url}/v1/receipts/{decision_id}", headers={"X-API-Key": key}, timeout=10)
        assert r.status_code == 200, r.text
        if r.json()["checkpoint"] is not None:
            return r.json()
        time.sleep(0.1)
    raise AssertionError("no checkpoint was signed")


def test_a_decision_carries_a_receipt_that_verifies_offline(signed) -> None:  # type: ignore[no-untyped-def]
    run_dir, transparency, keys, tmp_path = signed
    with live(run_dir, transparency=transparency) as srv:
        r = httpx.post(f"{srv.url}/v1/predict", json={"texts": ["refund my order", "my card was charged twice"]},
                       headers={"X-API-Key": keys["predict"]}, timeout=30)
        assert r.status_code == 200, r.text
        first, second = r.json()["decisions"]
        assert second["receipt"]["leaf_index"] == first["receipt"]["leaf_index"] + 1
        published = httpx.get(f"{srv.url}/v1/models", headers={"X-API-Key": keys["predict"]}, timeout=10).json()
        public_key = published["transparency"]["public_key"]
        card = httpx.get(f"{srv.url}/v1/models/card", headers={"X-API-Key": keys["predict"]}, timeout=10).text
        assert f"--public-key {public_key}" in card  # the model card names the key to check receipts with
        assert "`train/model`: sha256" in card and "ledger event" in card  # and what vouches for the model
        doc = _receipt(srv.url, keys["predict"], first["decision_id"])
        assert doc["leaf_hash"] == first["receipt"]["leaf_hash"] and doc["public_key"] == public_key
        other = KeyStore(AuditLog(database_url(None, run_dir)).engine).create("predict")[1]
        assert httpx.get(f"{srv.url}/v1/receipts/{first['decision_id']}", headers={"X-API-Key": other},
                         timeout=10).status_code == 404  # another caller's decision is not theirs to see
    path = tmp_path / "receipt.json"
    path.write_text(json.dumps(doc))
    runner = CliRunner()
    ok = runner.invoke(cli, ["audit", "verify-receipt", str(path), "--public-key", public_key, "--json",
                             "--record-hash", first["receipt"]["record_hash"],
                             "--origin", published["transparency"]["origin"]])
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.output)["leaf_index"] == first["receipt"]["leaf_index"]
    # a valid receipt for another decision does not pass for this one
    wrong = runner.invoke(cli, ["audit", "verify-receipt", str(path), "--public-key", public_key,
                                "--record-hash", second["receipt"]["record_hash"]])
    assert wrong.exit_code == 1 and "another record" in " ".join(wrong.output.split())
    path.write_text(json.dumps({**doc, "record_hash": record_hash("0" * 64, {"decision_id": "forged"})}))
    bad = runner.invoke(cli, ["audit", "verify-receipt", str(path), "--public-key", public_key])
    assert bad.exit_code == 1 and "does not verify" in bad.output
    # the witness folder kept what the service signed; the log extends it
    witness_dir = Path(transparency["witness_dir"])
    assert list(witness_dir.rglob("*.json"))
    assert runner.invoke(cli, ["audit", "verify", "--run-dir", str(run_dir), "--witness", str(witness_dir),
                               "--public-key", public_key]).exit_code == 0


def test_a_rewritten_log_is_refused_at_start_up(signed) -> None:  # type: ignore[no-untyped-def]
    """The operator edits decision 1, recomputes every hash, the head and the tree: the chain verifies, but
    the service will not extend it — the witness holds a checkpoint the log no longer matches."""
    from tests.serve.test_transparency import _rewrite

    run_dir, transparency, keys, _ = signed
    with live(run_dir, transparency=transparency) as srv:
        r = httpx.post(f"{srv.url}/v1/predict", json={"text": "refund my order"},
                       headers={"X-API-Key": keys["predict"]}, timeout=30)
        assert r.status_code == 200, r.text
        _receipt(srv.url, keys["predict"], r.json()["decisions"][0]["decision_id"])
    log = AuditLog(database_url(None, run_dir))
    seq = log.get(r.json()["decisions"][0]["decision_id"])["seq"]
    _rewrite(log, {seq: {"output": json.dumps({"label": "refund", "probabilities": {}, "abstained": False})}})
    assert log.verify().ok
    log.close()
    srv = live(run_dir, transparency=transparency, audit_broken="read_only")
    start_unready(srv)  # /readyz answers 503 in this mode
    try:
        ready = httpx.get(f"{srv.url}/readyz", timeout=10)
        assert ready.status_code == 503 and "rewritten" in ready.text
        r = httpx.post(f"{srv.url}/v1/predict", json={"text": "refund my order"},
                       headers={"X-API-Key": keys["predict"]}, timeout=30)
        assert r.status_code == 503  # no decision is added to a log that cannot be proven
    finally:
        srv.__exit__(None, None, None)


def test_a_deleted_database_is_not_intact_to_a_witness(signed) -> None:  # type: ignore[no-untyped-def]
    """`steward audit verify` on a log whose database was deleted (or replaced) said "intact, 0 records"; with
    the witness that saw the log it is an error naming the log it saw."""
    run_dir, transparency, keys, _ = signed
    with live(run_dir, transparency=transparency) as srv:
        r = httpx.post(f"{srv.url}/v1/predict", json={"text": "refund my order"},
                       headers={"X-API-Key": keys["predict"]}, timeout=30)
        doc = _receipt(srv.url, keys["predict"], r.json()["decisions"][0]["decision_id"])
    args = ["audit", "verify", "--run-dir", str(run_dir), "--witness", transparency["witness_dir"],
            "--public-key", doc["public_key"]]
    runner = CliRunner()
    assert runner.invoke(cli, args).exit_code == 0
    for f in (run_dir / "serve").glob("audit.db*"):
        f.unlink()
    gone = runner.invoke(cli, args)
    assert gone.exit_code == 1 and "deleted and started over" in " ".join(gone.output.split())


def test_checkpoints_reach_http_witnesses_and_a_dead_or_slow_one_does_not_stall_shutdown(signed) -> None:  # type: ignore[no-untyped-def]
    """Witness URLs on loopback: one that takes checkpoints, three that hang, one where nothing listens. The live
    one gets the checkpoints (valid, signed); the service still stops within one witness timeout (posted one
    after another, the hanging three took three)."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from steward.ledger.checkpoint import Checkpoint, parse_public_key, verify_checkpoint
    from steward.service.signing import WITNESS_TIMEOUT_S
    from tests.serve.conftest import _free_port

    got: list[dict] = []
    release = threading.Event()

    class Witness(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            if self.path.startswith("/hang"):
                release.wait(30)
            else:
                got.append(body)
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Witness)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    run_dir, transparency, keys, _ = signed
    urls = [f"{base}/take", *(f"{base}/hang{i}" for i in range(3)), f"http://127.0.0.1:{_free_port()}/nobody"]
    try:
        srv = live(run_dir, transparency={**transparency, "witness_urls": urls})
        with srv:
            r = httpx.post(f"{srv.url}/v1/predict", json={"text": "refund my order"},
                           headers={"X-API-Key": keys["predict"]}, timeout=30)
            assert r.status_code == 200
            public_key = parse_public_key(httpx.get(f"{srv.url}/v1/models", headers={"X-API-Key": keys["predict"]},
                                                    timeout=10).json()["transparency"]["public_key"])
            t0 = time.monotonic()
        srv.thread.join(timeout=60)  # the context's own wait is 10 s; a machine busy with other tests may need more
        stopped_in = time.monotonic() - t0
    finally:
        release.set()
        server.shutdown()
    # a checkpoint posted while the service stopped costs one witness timeout, and the one signed at shutdown
    # another (posted to every witness at once): two, plus slack for a busy machine; one after another, the
    # three hanging witnesses would cost three each
    assert stopped_in < 2 * WITNESS_TIMEOUT_S + 4, f"shutdown took {stopped_in:.1f} s with a hanging witness"
    assert got, "the live witness received no checkpoint"
    for body in got:
        verify_checkpoint(Checkpoint.from_dict(body), public_key)
    assert max(b["size"] for b in got) >= 1
