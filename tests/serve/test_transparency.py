"""The audit log as a transparency log, on SQLite and a real PostgreSQL server: the operator's attacks that the
plain hash chain passes as "intact" fail against a witness's signed checkpoint; receipts verify offline."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from steward.errors import LedgerIntegrityError
from steward.ledger.checkpoint import Checkpoint, Ed25519Signer
from steward.service.audit import AuditLog, database_url, record_hash
from steward.service.transparency import backfill, verify_receipt

ORIGIN = "steward/audit/test"


def _append(log: AuditLog, n: int, start: int = 0) -> None:
    log.append_many([{"decision_id": f"d{i}", "kind": "predict", "key_id": "k1", "model_version": "v1",
                      "model_hash": "ab" * 32, "input_hash": "cd" * 32, "redacted_input": f"text #{i}",
                      "findings": [], "output": {"label": "billing"}, "latency_ms": 1.0}
                     for i in range(start, start + n)])


def _rewrite(log: AuditLog, change: dict[int, dict[str, object]], keep: int | None = None) -> None:
    """What a careful operator does: edit (or drop) records, recompute every later hash, the head and the tree."""
    from sqlalchemy import delete, insert, update

    from steward.service.tables import audit_head, audit_nodes, audit_records

    rows = [r for r in log.records() if keep is None or r["seq"] <= keep]
    prev = "0" * 64
    with log.engine.begin() as conn:
        conn.execute(delete(audit_records))
        conn.execute(delete(audit_nodes))
        for r in rows:
            r = {**r, **change.get(r["seq"], {}), "prev_hash": prev}
            r["hash"] = prev = record_hash(prev, r)
            conn.execute(insert(audit_records).values(**r))
        conn.execute(update(audit_head).values(seq=len(rows), hash=prev))
        backfill(conn)


def test_rewrite_with_recomputed_hashes_passes_the_chain_but_not_the_witness(log: AuditLog) -> None:
    signer = Ed25519Signer.generate()
    _append(log, 20)
    seen = log.sign_checkpoint(signer, ORIGIN)
    assert seen is not None and seen.size == 20
    _rewrite(log, {2: {"output": json.dumps({"label": "refund"})}})
    assert log.verify().ok  # the chain alone cannot tell
    report = log.verify_against([seen], signer.public_key)
    assert not report.ok and "rewritten" in str(report.error)


@pytest.mark.parametrize("keep", [10, 0])
def test_truncation_and_emptying_are_caught(log: AuditLog, keep: int) -> None:
    signer = Ed25519Signer.generate()
    _append(log, 20)
    seen = log.sign_checkpoint(signer, ORIGIN)
    assert seen is not None
    _rewrite(log, {}, keep=keep)
    assert log.verify().ok and log.verify().records == keep
    report = log.verify_against([seen], signer.public_key)
    assert not report.ok and "records were deleted" in str(report.error)


def test_a_replaced_database_is_caught(log: AuditLog, tmp_path: Path) -> None:
    signer = Ed25519Signer.generate()
    _append(log, 8)
    seen = log.sign_checkpoint(signer, ORIGIN)
    other = AuditLog(database_url(None, tmp_path / "other"))
    _append(other, 8, start=100)  # same size, different records, a valid chain of its own
    assert other.verify().ok
    report = other.verify_against([seen], signer.public_key)
    assert not report.ok and "rewritten" in str(report.error)
    other.close()


def test_growth_is_consistent_and_receipts_verify_offline(log: AuditLog) -> None:
    signer = Ed25519Signer.generate()
    _append(log, 5)
    assert log.receipt("d3")["checkpoint"] is None  # not signed yet: the receipt says so
    first = log.sign_checkpoint(signer, ORIGIN)
    assert log.sign_checkpoint(signer, ORIGIN) is None  # nothing new: no second signature
    early = log.receipt("d3")
    _append(log, 60, start=5)
    second = log.sign_checkpoint(signer, ORIGIN)
    assert first is not None and second is not None and second.size == 65
    assert log.verify_against([first, second], signer.public_key).ok
    # a receipt issued before the log grew still verifies, offline, with the public key alone
    doc = json.loads(json.dumps(early))
    assert verify_receipt(doc, signer.public_key).size == 5
    late = log.receipt("d40")
    assert late["checkpoint"]["size"] == 65 and len(late["inclusion_proof"]) <= 7
    verify_receipt(late, signer.public_key)
    for field, value in (("record_hash", "00" * 32), ("leaf_index", 41)):
        with pytest.raises(LedgerIntegrityError):
            verify_receipt({**late, field: value}, signer.public_key)
    with pytest.raises(LedgerIntegrityError, match="signed by key"):
        verify_receipt(late, Ed25519Signer.generate().public_key)


def test_a_forged_checkpoint_is_refused(log: AuditLog) -> None:
    signer = Ed25519Signer.generate()
    _append(log, 4)
    cp = log.sign_checkpoint(signer, ORIGIN)
    assert cp is not None
    forged = Checkpoint(cp.origin, cp.size, bytes(32), cp.time, cp.key_id, cp.signature)
    report = log.verify_against([forged], signer.public_key)
    assert not report.ok and "bad signature" in str(report.error)


def test_an_older_database_gets_its_tree_on_open(tmp_path: Path) -> None:
    """A log written before the tree existed: opening it fills ``audit_nodes`` from its records."""
    from sqlalchemy import delete

    from steward.service.tables import audit_nodes

    url = database_url(None, tmp_path)
    log = AuditLog(url)
    _append(log, 9)
    with log.engine.begin() as conn:
        conn.execute(delete(audit_nodes))
    log.close()
    log = AuditLog(url)
    signer = Ed25519Signer.generate()
    cp = log.sign_checkpoint(signer, ORIGIN)
    assert cp is not None and cp.size == 9
    verify_receipt(log.receipt("d0"), signer.public_key)
    log.close()


def test_a_fork_shown_to_two_witnesses_is_caught(tmp_path: Path) -> None:
    """The operator shows log A to one witness and log B (same size, other records) to another: each log
    fails against the other witness, and the two witnesses' checkpoints together prove the fork."""
    from steward.ledger import witness

    signer = Ed25519Signer.generate()
    a, b = AuditLog(database_url(None, tmp_path / "a")), AuditLog(database_url(None, tmp_path / "b"))
    _append(a, 6)
    _append(b, 6, start=50)
    w1, w2 = tmp_path / "witness1", tmp_path / "witness2"
    witness.record(a.sign_checkpoint(signer, ORIGIN), w1)
    witness.record(b.sign_checkpoint(signer, ORIGIN), w2)
    assert a.verify_against(witness.load(w1, ORIGIN), signer.public_key).ok
    assert not a.verify_against(witness.load(w2, ORIGIN), signer.public_key).ok
    assert not b.verify_against(witness.load(w1, ORIGIN), signer.public_key).ok
    with pytest.raises(LedgerIntegrityError, match="forked at size 6"):
        witness.check_forks(witness.load(w1) + witness.load(w2), signer.public_key)
    with pytest.raises(LedgerIntegrityError, match="forked"):  # a witness refuses a second root for a size
        witness.record(witness.load(w2)[0], w1)
    a.close()
    b.close()


def test_kill_9_while_appending_and_signing_never_signs_an_uncommitted_record(tmp_path: Path) -> None:
    """A process appending in one thread and signing (and exporting to its witness) in another is killed with
    SIGKILL at a random moment, five times over: every checkpoint ever signed — stored or exported — covers
    only records that are in the database, and matches the root recomputed from them."""
    import os
    import random
    import signal
    import subprocess
    import sys
    import textwrap
    import time

    from steward.ledger import witness
    from steward.ledger.checkpoint import load_signer, write_key
    from steward.service.transparency import latest_checkpoint

    key_file = write_key(Ed25519Signer.generate(), tmp_path / "key.pem")
    url, wit = database_url(None, tmp_path / "run"), tmp_path / "witness"
    script = textwrap.dedent(f"""
        import threading
        from pathlib import Path
        from steward.ledger import witness
        from steward.ledger.checkpoint import load_signer
        from steward.service.audit import AuditLog
        log, signer = AuditLog({url!r}), load_signer({str(key_file)!r})
        def sign():
            while True:
                cp = log.sign_checkpoint(signer, {ORIGIN!r})
                if cp is not None:
                    witness.record(cp, Path({str(wit)!r}))
        threading.Thread(target=sign, daemon=True).start()
        for i in range(10**6):
            log.append_many([{{"decision_id": f"d{{i}}", "kind": "predict", "findings": [], "output": {{}},
                               "latency_ms": 1.0}}])
    """)
    rng = random.Random(7)
    for _ in range(5):
        proc = subprocess.Popen([sys.executable, "-c", script], env=os.environ.copy())
        time.sleep(1.5 + rng.random() * 2)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    log = AuditLog(url)
    signer_pub = load_signer(key_file).public_key
    held = witness.load(wit, ORIGIN)
    with log.engine.connect() as conn:
        stored = latest_checkpoint(conn)
    assert held and stored is not None and log.count() > 0
    report = log.verify_against([*held, stored], signer_pub)
    assert report.ok, report.error
    log.close()
