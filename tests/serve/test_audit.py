"""The hash-chained audit log on SQLite (WAL) and a real PostgreSQL server; API keys."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from steward.errors import ConfigError
from steward.service.audit import AuditLog, database_url
from steward.service.keys import KeyStore


def _append(log: AuditLog, n: int, start: int = 0) -> None:
    for i in range(start, start + n):
        log.append(decision_id=f"d{i}", kind="predict", key_id="k1", model_version="v1", model_hash="ab" * 32,
                   input_hash="cd" * 32, redacted_input=f"call me at <PHONE_NUMBER> #{i}",
                   findings=[{"guard": "pii", "type": "PHONE_NUMBER"}], output={"label": "billing"}, latency_ms=3.2)


def _sql(log: AuditLog, statement: str) -> None:
    from sqlalchemy import text

    with log.engine.begin() as conn:
        conn.execute(text(statement))


def test_chain_verifies_and_exports(log: AuditLog, tmp_path: Path) -> None:
    _append(log, 6)
    rep = log.verify()
    assert rep.ok and rep.records == 6 and log.count() == 6
    n = log.export(tmp_path / "audit.jsonl")
    rows = [json.loads(x) for x in (tmp_path / "audit.jsonl").read_text().splitlines()]
    assert n == 6 and [r["seq"] for r in rows] == list(range(1, 7))
    assert rows[0]["findings"] == [{"guard": "pii", "type": "PHONE_NUMBER"}]
    since = rows[3]["ts"]
    assert log.export(tmp_path / "late.jsonl", since=since) == 3


@pytest.mark.parametrize("tamper, expected", [
    ("UPDATE audit_records SET redacted_input = 'edited' WHERE seq = 3", "record 3 (d2) was edited"),
    ("UPDATE audit_records SET output = '{\"label\": \"refund\"}' WHERE seq = 5", "record 5 (d4) was edited"),
    ("DELETE FROM audit_records WHERE seq = 2", "record 2 is missing"),
    ("DELETE FROM audit_records WHERE seq = 6", "newest record(s) were deleted"),
])
def test_any_edit_delete_or_truncation_is_detected(log: AuditLog, tamper: str, expected: str) -> None:
    _append(log, 6)
    _sql(log, tamper)
    rep = log.verify()
    assert not rep.ok and expected in (rep.error or "")


def test_a_record_inserted_beyond_the_head_is_detected(log: AuditLog) -> None:
    _append(log, 3)
    row = {k: v for k, v in next(iter(log.records())).items() if k != "seq"}
    from steward.service.tables import audit_records

    with log.engine.begin() as conn:
        conn.execute(audit_records.insert().values(seq=4, **{**row, "decision_id": "forged", "hash": "f" * 64}))
    rep = log.verify()
    assert not rep.ok and "beyond the head" in (rep.error or "") and rep.seq == 4


def test_verify_on_a_live_database_never_reports_a_sound_chain_broken(log: AuditLog) -> None:
    """Finding 10: the walk and the head were read at different moments, so appends in between looked like
    deleted records. Verify while another connection appends; every report must be sound."""
    _append(log, 20)
    stop = threading.Event()
    errors: list[BaseException] = []

    def append() -> None:
        other = AuditLog(log.url)
        k = 1000
        try:
            while not stop.is_set():
                _append(other, 1, start=k)
                k += 1
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            other.close()

    t = threading.Thread(target=append)
    t.start()
    try:
        reports = [log.verify() for _ in range(40)]
    finally:
        stop.set()
        t.join()
    assert not errors
    assert all(r.ok for r in reports), [r.error for r in reports if not r.ok][:3]
    assert reports[-1].records > 20 and log.verify().records == log.count()


def test_reordering_two_records_is_detected(log: AuditLog) -> None:
    _append(log, 4)
    # Swap the content of records 2 and 3 (keeping seq): the chain no longer links.
    rows = {r["seq"]: r for r in log.records()}
    a, b = rows[2], rows[3]
    cols = [c for c in a if c != "seq"]
    _sql(log, "DELETE FROM audit_records WHERE seq IN (2, 3)")
    from steward.service.tables import audit_records

    with log.engine.begin() as conn:
        conn.execute(audit_records.insert().values(seq=2, **{c: b[c] for c in cols}))
        conn.execute(audit_records.insert().values(seq=3, **{c: a[c] for c in cols}))
    rep = log.verify()
    assert not rep.ok and rep.seq == 2


def _writers(url: str, writers: int, each: int, *, together: bool = False) -> list[BaseException]:
    """``writers`` threads, each with its own AuditLog on ``url``, append ``each`` records (after all have
    opened it, when ``together``); the errors they hit."""
    errors: list[BaseException] = []
    start = threading.Barrier(writers)

    def writer(k: int) -> None:
        other = AuditLog(url)
        if together:
            start.wait()
        try:
            _append(other, each, start=100 * k)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            other.close()

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors


def test_concurrent_writers_build_one_chain(log: AuditLog) -> None:
    """Several writers (threads here; replicas in production) append at once: one unbroken chain."""
    assert not _writers(log.url, 4, 15)
    rep = log.verify()
    assert rep.ok and rep.records == 60


def test_replicas_opening_a_new_sqlite_file_together_all_write(tmp_path: Path) -> None:
    """Eight writers open one fresh database file at the same instant, forty times over: none gets "database
    is locked" (switching a new file to WAL takes an exclusive lock SQLite's busy handler does not wait for;
    before the fix about one round in sixteen failed)."""
    for r in range(40):
        url = database_url(None, tmp_path / f"r{r}")
        errors = _writers(url, 8, 1, together=True)
        assert not errors, f"round {r}: {errors[0]!r}"
        check = AuditLog(url)
        assert check.verify().records == 8
        check.close()


def test_kill_9_mid_write_loses_no_committed_record(tmp_path: Path) -> None:
    """A writer process killed with SIGKILL mid-stream: every record it reported committed is there, and
    the chain verifies."""
    url = database_url(None, tmp_path)
    progress = tmp_path / "committed.txt"
    script = textwrap.dedent(f"""
        import sys
        from steward.service.audit import AuditLog
        log = AuditLog({url!r})
        with open({str(progress)!r}, "a") as fh:
            for i in range(100000):
                log.append(decision_id=f"d{{i}}", kind="predict", key_id="k", model_version="v", model_hash="h",
                           input_hash="x", redacted_input="t", findings=[], output={{}}, latency_ms=1.0)
                fh.write(f"{{i}}\\n"); fh.flush()
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], env=os.environ.copy())
    deadline = time.time() + 60
    while time.time() < deadline and (not progress.exists() or len(progress.read_text().splitlines()) < 50):
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    committed = len(progress.read_text().splitlines())
    assert committed >= 50
    log = AuditLog(url)
    rep = log.verify()
    assert rep.ok, rep.error
    assert rep.records >= committed  # nothing reported as committed is lost (one more may be in the file)
    _append(log, 3, start=10**6)  # and the chain continues after a restart
    assert log.verify().ok


def test_sqlite_runs_in_wal_mode(tmp_path: Path) -> None:
    log = AuditLog(database_url(None, tmp_path))
    _append(log, 1)
    db = tmp_path / "serve" / "audit.db"
    assert sqlite3.connect(db).execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_keys_are_stored_hashed_checked_and_revocable(log: AuditLog) -> None:
    store = KeyStore(log.engine)
    rec, key = store.create("predict", name="ci")
    assert key.startswith(f"stw_{rec.key_id}_")
    assert store.authenticate(key) == rec and rec.may("predict") and not rec.may("metrics")
    assert rec.may("feedback") and not rec.reviews  # its own decisions only (checked by the service)
    assert store.create("feedback")[0].role == "reviewer"  # the old name of the reviewer role
    secret = key.split("_", 2)[2]
    from sqlalchemy import select

    from steward.service.tables import api_keys

    with log.engine.connect() as conn:
        stored = [dict(r) for r in conn.execute(select(api_keys)).mappings()]
    assert secret not in json.dumps(stored, default=str) and key not in json.dumps(stored, default=str)
    assert store.authenticate(key[:-1] + ("A" if key[-1] != "A" else "B")) is None
    assert store.authenticate("stw_nope_x") is None and store.authenticate(None) is None
    assert store.authenticate("not-a-key") is None
    _admin, admin_key = store.create("admin")
    assert store.authenticate(admin_key).may("metrics")  # type: ignore[union-attr]
    assert store.revoke(rec.key_id) and store.authenticate(key) is None
    assert [k["revoked"] for k in store.list()] == [True, False, False]
    with pytest.raises(ConfigError, match="--role: got 'root'"):
        store.create("root")


def test_key_cache_trusts_a_checked_key_only_for_its_time(log: AuditLog) -> None:
    store = KeyStore(log.engine, cache_seconds=0.3)
    rec, key = store.create("predict")
    assert store.cached(key) is None  # never checked yet
    assert store.authenticate(key) == rec and store.cached(key) == rec
    assert store.cached(key[:-1] + ("A" if key[-1] != "A" else "B")) is None  # the whole key must match
    assert KeyStore(log.engine).revoke(rec.key_id)  # e.g. `steward keys revoke` from another process
    assert store.cached(key) == rec  # still trusted within cache_seconds ...
    time.sleep(0.35)
    assert store.cached(key) is None and store.authenticate(key) is None  # ... and refused after it
    uncached = KeyStore(log.engine)
    _, key2 = uncached.create("predict")
    assert uncached.authenticate(key2) is not None and uncached.cached(key2) is None


def test_key_checks_do_not_wait_for_an_audit_write(tmp_path: Path) -> None:
    """A key check is a read: it must not queue behind a transaction that holds SQLite's write lock."""
    log = AuditLog(database_url(None, tmp_path))
    store = KeyStore(log.engine)
    rec, key = store.create("predict")
    writer = sqlite3.connect(tmp_path / "serve" / "audit.db", isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")  # held, like an append in the middle of its commit
    try:
        found: list[object] = []
        t = threading.Thread(target=lambda: found.append(store.authenticate(key)), daemon=True)
        t.start()
        t.join(timeout=5)  # busy_timeout is 30 s: a locking read would still be waiting
        assert found == [rec]
        assert log.count() >= 0 and log.verify().ok
    finally:
        writer.execute("ROLLBACK")
        writer.close()
