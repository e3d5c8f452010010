"""The tamper-evident audit log: one hash-chained record per decision, in SQLite (WAL) or PostgreSQL.

Each record's hash covers its fields and the previous record's hash; a one-row ``audit_head`` table holds
the newest sequence number and hash. Appends lock the head row inside the same transaction (SQLite:
``BEGIN IMMEDIATE``; PostgreSQL: ``SELECT … FOR UPDATE``), so several service replicas writing to one
database still build one chain. ``verify`` detects an edited, deleted, inserted or reordered record,
including the newest one (the head would disagree). A record is committed before its response is sent:
a crash loses at most requests still in flight, never a committed record.

Records never hold raw input: the redacted text and a keyed hash of the original (HMAC-SHA256).
"""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from steward.errors import ConfigError
from steward.hashing import canonical_json, sha256_bytes
from steward.ledger.checkpoint import Checkpoint, Signer, key_id, public_key_text
from steward.ledger.rotation import KeyHistory, rotation_statement
from steward.service.erasure import ERASED_OUTPUT, SEALED, RecordCipher, is_sealed
from steward.service.erasure import KEY_ENV as DATA_KEY_ENV
from steward.service.transparency import (
    ROTATION,
    DatabaseNodes,
    backfill,
    check_against,
    record_leaf,
    sign_head,
    store_checkpoint,
)
from steward.service.transparency import receipt as build_receipt

GENESIS = "0" * 64
# Records the log writes about itself, with no customer text: kept in the clear, so a verifier without the data
# key reads them (an erasure names records and a reason; a key rotation names keys).
SYSTEM_KINDS = frozenset({"erasure", ROTATION})
FIELDS = ("seq", "decision_id", "ts", "kind", "key_id", "model_version", "model_hash", "input_hash",
          "redacted_input", "findings", "output", "latency_ms", "ref")


@dataclass(frozen=True)
class AuditReport:
    ok: bool
    records: int
    error: str | None = None
    seq: int | None = None  # the first bad record

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "records": self.records, "error": self.error, "seq": self.seq}


READ_ONLY = "steward_read_only"


def reading(engine: Any) -> Any:
    """A connection for reads only: on SQLite a deferred transaction, which does not wait for the writer."""
    return engine.connect().execution_options(**{READ_ONLY: True})


def keyed_hash(secret: bytes, text: str) -> str:
    """The audit log's hash of a raw input: HMAC-SHA256 under the service secret, so it identifies a text to
    someone who holds the text and the key, and to nobody else."""
    import hashlib
    import hmac

    return hmac.new(secret, text.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()


def subject_hash(secret: bytes, subject: str) -> str:
    """The audit log's name for a subject id: an HMAC under the service secret, domain-separated from the input
    hashes (a subject id that is also a whole input does not share its hash)."""
    return keyed_hash(secret, "steward-subject\x00" + subject)


def record_hash(prev: str, fields: dict[str, Any]) -> str:
    body = {k: fields.get(k) for k in FIELDS}
    if fields.get("subject") is not None:  # absent from records written before subjects were (same hashes)
        body["subject"] = fields["subject"]
    return sha256_bytes(prev.encode() + canonical_json(body))


def _wal(cur: Any, wait_s: float = 30.0) -> None:
    """Put an SQLite database in WAL mode, waiting for other openers.

    Switching the journal mode of a new file needs an exclusive lock and SQLite does not run the busy
    handler for it: replicas (or threads) opening a fresh database together got "database is locked"
    at once. Once the file is in WAL mode (it stays so) the check is a plain read.
    """
    import sqlite3
    import time

    deadline = time.monotonic() + wait_s
    delay = 0.005
    while True:
        try:
            if str(cur.execute("PRAGMA journal_mode").fetchone()[0]).lower() == "wal":
                return
            cur.execute("PRAGMA journal_mode=WAL")  # an in-memory database stays "memory": nothing to wait for
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 0.2)


def database_url(url: str | None, run_dir: Path) -> str:
    """The configured URL, or the embedded default ``sqlite:///RUN_DIR/serve/audit.db``."""
    if url:
        return url
    from steward.service.runfiles import sqlite_database

    return f"sqlite:///{sqlite_database(run_dir)}"


class AuditLog:
    """Append, read, verify and export hash-chained decision records through SQLAlchemy."""

    def __init__(self, url: str, cipher: RecordCipher | None = None) -> None:
        """``cipher``: seals each new record's text under its own data key (``steward.service.erasure``) and
        opens sealed records on reading. None: records are written plain, and sealed ones are opened with this
        machine's default data key if there is one (verification needs no key at all)."""
        self.url = url
        self.cipher = cipher
        self._reader: RecordCipher | None = cipher
        self._engine: Any = None

    # -- set-up -----------------------------------------------------------------------------------
    @property
    def engine(self) -> Any:
        if self._engine is None:
            self._engine = self._connect()
        return self._engine

    def _connect(self) -> Any:
        from sqlalchemy import create_engine, event

        from steward.service.tables import METADATA

        sqlite = self.url.startswith("sqlite")
        if sqlite:
            from sqlalchemy.engine import make_url

            from steward.service.runfiles import private_file

            db = make_url(self.url).database
            if db and db != ":memory:" and not db.startswith("file:") and Path(db).parent.is_dir():
                private_file(Path(db))  # before SQLite creates it (and its -wal, -shm) world-readable
        engine = create_engine(self.url, future=True, pool_pre_ping=not sqlite,
                               connect_args={"timeout": 30, "check_same_thread": False} if sqlite else {})
        if sqlite:
            @event.listens_for(engine, "connect")
            def _pragmas(dbapi_conn: Any, _record: Any) -> None:
                # WAL: readers never block the writer; synchronous=FULL: a commit survives power loss too.
                dbapi_conn.isolation_level = None  # we issue BEGIN ourselves (BEGIN IMMEDIATE for appends)
                cur = dbapi_conn.cursor()
                cur.execute("PRAGMA busy_timeout=30000")
                _wal(cur)
                cur.execute("PRAGMA synchronous=FULL")
                # An erased record's data key is overwritten with zeros when deleted, not left in a free page.
                cur.execute("PRAGMA secure_delete=ON")
                cur.close()

            @event.listens_for(engine, "begin")
            def _begin(conn: Any) -> None:
                # A writing transaction takes the write lock at once (no deadlock on upgrading a read); a
                # read (``reading``) takes none, so key checks and lookups never queue behind an fsync.
                conn.exec_driver_sql("BEGIN" if conn.get_execution_options().get(READ_ONLY) else "BEGIN IMMEDIATE")

        from sqlalchemy import text

        from steward.service.tables import add_missing_columns, audit_head, audit_log_id, audit_records

        # Replicas starting together would race to create the tables: serialise set-up (SQLite's
        # BEGIN IMMEDIATE already does; PostgreSQL takes a transaction-scoped advisory lock).
        with engine.begin() as conn:
            if engine.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(7242001)"))
            METADATA.create_all(conn)
            add_missing_columns(conn)
            for index in audit_records.indexes:  # an index added since an older database was created
                index.create(conn, checkfirst=True)
            if conn.execute(audit_head.select()).first() is None:
                conn.execute(audit_head.insert().values(id=1, seq=0, hash=GENESIS))
            if conn.execute(audit_log_id.select()).first() is None:
                import secrets

                conn.execute(audit_log_id.insert().values(id=1, log_id=secrets.token_hex(8)))
            backfill(conn)
        return engine

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    # -- writing ----------------------------------------------------------------------------------
    def append(self, *, decision_id: str, kind: str, key_id: str | None, model_version: str | None,
               model_hash: str | None, input_hash: str | None, redacted_input: str | None,
               findings: list[dict[str, Any]] | None, output: dict[str, Any] | None, latency_ms: float,
               ref: str | None = None) -> dict[str, Any]:
        """Append one record in its own transaction and return it (with ``seq`` and ``hash``)."""
        return self.append_many([{"decision_id": decision_id, "kind": kind, "key_id": key_id, "model_version": model_version,
                                      "model_hash": model_hash, "input_hash": input_hash, "redacted_input": redacted_input,
                                      "findings": findings, "output": output, "latency_ms": latency_ms, "ref": ref}])[0]

    def append_many(self, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Append several records in one transaction (one fsync for a whole batch of decisions). Returns them
        as stored (text fields sealed when the log has a cipher)."""
        with self.engine.begin() as conn:
            return self._append(conn, items)

    def _append(self, conn: Any, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        from sqlalchemy import select, update

        from steward.service.tables import audit_data_keys, audit_head, audit_records

        out, keys = [], []
        head = conn.execute(select(audit_head.c.seq, audit_head.c.hash).where(audit_head.c.id == 1)
                            .with_for_update()).one()
        seq, prev = int(head.seq), str(head.hash)
        for item in items:
            seq += 1
            row = {
                "seq": seq, "decision_id": item["decision_id"], "ts": now(), "kind": item["kind"],
                "key_id": item.get("key_id"), "model_version": item.get("model_version"),
                "model_hash": item.get("model_hash"), "input_hash": item.get("input_hash"),
                "redacted_input": item.get("redacted_input"),
                "findings": json.dumps(item.get("findings") or [], sort_keys=True, ensure_ascii=False),
                "output": json.dumps(item.get("output") or {}, sort_keys=True, ensure_ascii=False),
                "latency_ms": round(float(item.get("latency_ms") or 0.0), 3), "ref": item.get("ref"),
                "subject": item.get("subject"),
            }
            if self.cipher is not None and item["kind"] not in SYSTEM_KINDS:  # the hash then covers the ciphertext
                sealed = self.cipher.seal(seq, {f: row[f] for f in SEALED})
                row.update(sealed.fields)
                keys.append({"seq": seq, "wrapped": sealed.wrapped_key})
            row["prev_hash"] = prev
            row["hash"] = prev = record_hash(prev, row)
            out.append(row)
        conn.execute(audit_records.insert(), out)  # one statement, many rows (executemany)
        if keys:
            conn.execute(audit_data_keys.insert(), keys)
        DatabaseNodes(conn).add_leaves(int(head.seq), [record_leaf(r["hash"]) for r in out])
        conn.execute(update(audit_head).where(audit_head.c.id == 1).values(seq=seq, hash=prev))
        return out

    # -- reading ----------------------------------------------------------------------------------
    def get(self, decision_id: str) -> dict[str, Any] | None:
        from sqlalchemy import select

        from steward.service.tables import audit_records

        with reading(self.engine) as conn:
            row = conn.execute(select(audit_records).where(audit_records.c.decision_id == decision_id)
                               .order_by(audit_records.c.seq).limit(1)).mappings().first()
            return self._open(conn, [dict(row)])[0] if row else None

    def feedback_on(self, decision_id: str) -> list[dict[str, Any]]:
        """The feedback records about one decision, in chain order."""
        from sqlalchemy import select

        from steward.service.tables import audit_records

        with reading(self.engine) as conn:
            rows = conn.execute(select(audit_records).where(audit_records.c.ref == decision_id)
                                .where(audit_records.c.kind == "feedback").order_by(audit_records.c.seq)).mappings()
            return self._open(conn, [dict(r) for r in rows])

    def count(self, kind: str | None = None) -> int:
        from sqlalchemy import func, select

        from steward.service.tables import audit_records

        q = select(func.count()).select_from(audit_records)
        if kind:
            q = q.where(audit_records.c.kind == kind)
        with reading(self.engine) as conn:
            return int(conn.execute(q).scalar_one())

    def records(self, since: str | None = None, batch: int = 1000, *, raw: bool = False) -> Iterator[dict[str, Any]]:
        """Records in chain order (optionally those at or after the ISO time ``since``), streamed, their text
        opened (an erased record: ``erased`` true, no input, output ``{"erased": true}``). ``raw``: as stored,
        sealed text and all (what the chain hashes; needs no data key)."""
        from sqlalchemy import select

        from steward.service.tables import audit_records

        last = 0
        while True:
            q = select(audit_records).where(audit_records.c.seq > last).order_by(audit_records.c.seq).limit(batch)
            if since:
                q = q.where(audit_records.c.ts >= since)
            with reading(self.engine) as conn:
                rows = [dict(r) for r in conn.execute(q).mappings()]
                if rows and not raw:
                    rows = self._open(conn, rows)
            if not rows:
                return
            yield from rows
            last = rows[-1]["seq"]

    def _open(self, conn: Any, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """``rows`` with their sealed text opened by their data keys (read in the same snapshot)."""
        from sqlalchemy import select

        from steward.service.tables import audit_data_keys

        sealed = [r["seq"] for r in rows if any(is_sealed(r.get(f)) for f in SEALED)]
        if not sealed:
            return rows
        if self._reader is None:
            from steward.service.erasure import load_cipher

            self._reader = load_cipher(create=False)
        if self._reader is None:
            raise ConfigError("the audit records' text is sealed and this command was given no audit data key. Fix: "
                              f"set audit_encryption.key (or ${DATA_KEY_ENV}) to the service's key (verification "
                              "needs none)")
        wrapped = dict(conn.execute(select(audit_data_keys.c.seq, audit_data_keys.c.wrapped)
                                    .where(audit_data_keys.c.seq.in_(sealed))).all())
        out = []
        for r in rows:
            if r["seq"] in sealed and r["seq"] not in wrapped:
                out.append({**r, "redacted_input": None, "output": ERASED_OUTPUT, "erased": True})
            else:
                out.append({**r, **self._reader.open(r["seq"], {f: r[f] for f in SEALED}, wrapped.get(r["seq"]))})
        return out

    # -- erasure ----------------------------------------------------------------------------------
    def erase(self, decision_id: str, *, by: str, reason: str) -> dict[str, Any]:
        """Destroy the data keys of every record of ``decision_id`` and of the feedback on it, and log the
        erasure as a record of its own — one transaction. The records, their hashes and every receipt stay;
        their text can never be opened again. Returns what was erased and whether the SQLite write-ahead
        log was emptied (the old pages that held the keys)."""
        # a chat completion's id is "chatcmpl-" + its decision id (what an OpenAI client shows)
        decision_id = decision_id.removeprefix("chatcmpl-")
        with self.engine.begin() as conn:
            rows = self._erasable(conn, [decision_id])
            if not rows:
                raise ConfigError(f"--decision-id: got {decision_id!r}: no record has it. Fix: copy the id from the "
                                  "response (decisions[].decision_id, or the chat completion's id)")
            done = self._erase(conn, rows, ref=decision_id, by=by, reason=reason)
        return {"decision_id": decision_id, **done, "wal_cleared": self._clear_wal()}

    def erase_subject(self, subject: str, *, by: str, reason: str) -> dict[str, Any]:
        """Erase every decision made about one subject (``subject``: its HMAC, :func:`subject_hash`) and the
        feedback on them, as :meth:`erase` does one decision: one transaction, one erasure record."""
        from sqlalchemy import select

        from steward.service.tables import audit_records

        with self.engine.begin() as conn:
            ids = list(dict.fromkeys(conn.execute(
                select(audit_records.c.decision_id).where(audit_records.c.subject == subject)
                .where(audit_records.c.kind.notin_(SYSTEM_KINDS)).order_by(audit_records.c.seq)).scalars()))
            if not ids:
                raise ConfigError("--subject: no record was made for this subject id (ids are compared as given, "
                                  "case and spaces included; requests name it in their 'user' field). Nothing "
                                  "was erased")
            done = self._erase(conn, self._erasable(conn, ids), ref=None, subject=subject, by=by, reason=reason,
                               decisions=ids)
        return {"subject": subject, "decisions": ids, **done, "wal_cleared": self._clear_wal()}

    @staticmethod
    def _erasable(conn: Any, decision_ids: list[str]) -> list[dict[str, Any]]:
        """The records of these decisions and the feedback on them (not erasure records), in chain order."""
        from sqlalchemy import or_, select

        from steward.service.tables import audit_records

        return [dict(r) for r in conn.execute(
            select(audit_records.c.seq, audit_records.c.decision_id, audit_records.c.redacted_input,
                   audit_records.c.output)
            .where(or_(audit_records.c.decision_id.in_(decision_ids),
                       audit_records.c.ref.in_(decision_ids) & (audit_records.c.kind == "feedback")))
            .where(audit_records.c.kind.notin_(SYSTEM_KINDS)).order_by(audit_records.c.seq)).mappings()]

    def _erase(self, conn: Any, rows: list[dict[str, Any]], *, ref: str | None, by: str, reason: str,
               subject: str | None = None, **extra: Any) -> dict[str, Any]:
        """Delete the data keys of ``rows`` and append the erasure record (about the decision ``ref``, or the
        subject), in ``conn``'s transaction."""
        from sqlalchemy import delete

        from steward.service.tables import audit_data_keys

        plain = [r["seq"] for r in rows if not any(is_sealed(r[f]) for f in SEALED)]
        if plain:
            raise ConfigError(f"records {plain} were written before record text was sealed: their text is part "
                              "of their hash, so it cannot be erased without breaking the chain and every receipt "
                              "after it (nothing was erased)")
        seqs = [r["seq"] for r in rows]
        gone = conn.execute(delete(audit_data_keys).where(audit_data_keys.c.seq.in_(seqs))).rowcount
        record = self._append(conn, [{"decision_id": f"erasure-{secrets.token_hex(12)}", "kind": "erasure",
                                      "key_id": None, "ref": ref, "subject": subject, "latency_ms": 0.0,
                                      "output": {"erased_records": seqs, "already_erased": len(seqs) - gone,
                                                 "by": by, "reason": reason, **extra}}])[0]
        return {"erased_records": seqs, "erasure_record": record["seq"]}

    def _clear_wal(self) -> bool | None:
        """SQLite: copy the WAL back and truncate it, so no old page (with a deleted key) stays in it. False
        when a reader kept it busy (the pages are overwritten as the WAL is reused); None on PostgreSQL,
        whose deleted row is zeroed by no setting (VACUUM reclaims it; docs/audit.md says what that means)."""
        if not self.url.startswith("sqlite"):
            with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                from sqlalchemy import text

                conn.execute(text("VACUUM audit_data_keys"))
            return None
        raw = self.engine.raw_connection()
        try:
            busy, _, _ = raw.cursor().execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            return busy == 0
        finally:
            raw.close()

    def verify(self, leaves: list[bytes] | None = None) -> AuditReport:
        """Walk the chain: every hash recomputed, every link and sequence number checked, the head matched.
        ``leaves``: filled with each verified record's Merkle leaf on the way (one walk serves both checks).

        Safe on a live database: the head is read first and the walk stops at its record (appends after it
        are not this verification's business), then one statement reads the head and the newest record
        together — a record beyond the head that no append accounts for was inserted by hand. A walk and a
        head read at different moments used to report a live chain as broken ("ends at 3400, head 3405")."""
        from sqlalchemy import func, select

        from steward.service.tables import audit_head, audit_records

        with reading(self.engine) as conn:
            head = conn.execute(select(audit_head.c.seq, audit_head.c.hash).where(audit_head.c.id == 1)).one()
        top, top_hash = int(head.seq), str(head.hash)
        prev, expected, n = GENESIS, 1, 0
        for row in self.records(raw=True):
            if row["seq"] > top:
                break
            if row["seq"] != expected:
                return AuditReport(False, n, f"record {expected} is missing (next present is {row['seq']}): "
                                             f"deleted or reordered", expected)
            if row["prev_hash"] != prev:
                return AuditReport(False, n, f"record {row['seq']} does not link to the record before it",
                                   row["seq"])
            if record_hash(prev, row) != row["hash"]:
                return AuditReport(False, n, f"record {row['seq']} ({row['decision_id']}) was edited: its hash "
                                             f"does not match its content", row["seq"])
            prev, expected, n = row["hash"], expected + 1, n + 1
            if leaves is not None:
                leaves.append(record_leaf(prev))
        if n != top or prev != top_hash:
            return AuditReport(False, n, f"the chain ends at record {n} but the head says {top}: the newest "
                                         f"record(s) were deleted or replaced", n + 1)
        newest = select(func.max(audit_records.c.seq)).scalar_subquery()
        with reading(self.engine) as conn:  # one statement: one snapshot on SQLite and PostgreSQL alike
            now_head, now_max = conn.execute(select(audit_head.c.seq, newest).where(audit_head.c.id == 1)).one()
        if now_max is not None and int(now_max) > int(now_head):
            return AuditReport(False, n, f"record {int(now_head) + 1} and later are beyond the head "
                                         f"({now_head}): inserted outside the service", int(now_head) + 1)
        return AuditReport(True, n)

    # -- transparency -------------------------------------------------------------------------------
    @property
    def log_id(self) -> str:
        """This database's log id (random, made with it): part of the log's name in every checkpoint."""
        from sqlalchemy import select

        from steward.service.tables import audit_log_id

        with reading(self.engine) as conn:
            return str(conn.execute(select(audit_log_id.c.log_id).where(audit_log_id.c.id == 1)).scalar_one())

    def sign_checkpoint(self, signer: Signer, origin: str) -> Checkpoint | None:
        """Sign the tree of every committed record (None when that size is already signed, or the log empty).

        The head is read in a read-only snapshot of committed rows and signed outside any write transaction
        (a slow KMS never holds up appends); a replica that stored the same size first wins."""
        from sqlalchemy.exc import IntegrityError

        with reading(self.engine) as conn:
            cp = sign_head(conn, signer, origin, now())
        if cp is None:
            return None
        try:
            with self.engine.begin() as conn:
                store_checkpoint(conn, cp)
        except IntegrityError:
            return None  # another replica signed this size a moment ago
        return cp

    def receipt(self, decision_id: str) -> dict[str, Any] | None:
        """The receipt of a decision (its first record), with its inclusion proof once a checkpoint covers it."""
        record = self.get(decision_id)
        if record is None:
            return None
        with reading(self.engine) as conn:
            return build_receipt(conn, record)

    def latest_checkpoint(self) -> Checkpoint | None:
        from steward.service.transparency import latest_checkpoint

        with reading(self.engine) as conn:
            return latest_checkpoint(conn)

    def verify_against(self, checkpoints: list[Checkpoint], public_key: bytes) -> AuditReport:
        """``verify`` (the chain), then: is this log an extension of every checkpoint a witness holds?"""
        from steward.errors import LedgerIntegrityError

        leaves: list[bytes] = []
        report = self.verify(leaves)
        if not report.ok:
            return report
        try:
            check_against(leaves, checkpoints, self.key_history(public_key))
        except LedgerIntegrityError as exc:
            return AuditReport(False, report.records, str(exc))
        return report

    # -- key rotation -----------------------------------------------------------------------------
    def rotations(self) -> list[dict[str, Any]]:
        """The log's key-rotation records (their output, with ``seq``), in order."""
        from sqlalchemy import select

        from steward.service.tables import audit_records

        with reading(self.engine) as conn:
            rows = conn.execute(select(audit_records.c.seq, audit_records.c.output)
                                .where(audit_records.c.kind == ROTATION).order_by(audit_records.c.seq)).all()
        return [{**json.loads(out), "seq": int(seq)} for seq, out in rows]

    def key_history(self, trusted: bytes) -> KeyHistory:
        """The key in force at each size, from the rotation records, anchored on the key the caller trusts."""
        return KeyHistory(self.rotations(), trusted)

    def rotate_key(self, old: Signer, new: Signer, origin: str) -> dict[str, Any]:
        """Hand the log from ``old`` to ``new``, in the log: the head is signed with the old key, then a
        ``key_rotation`` record naming both keys and carrying the old key's signature of the handover, then
        the head again with the old key (covering the rotation). Every later checkpoint must be the new key's.
        Stop the service first: a service still signing with the old key would sign sizes it no longer owns."""
        from steward.errors import ConfigError

        if old.public_key == new.public_key:
            raise ConfigError("--new-key: it is the key in use; make another with `steward audit keygen --out PATH`")
        history = self.key_history(old.public_key)
        if history(10**12) != old.public_key:
            raise ConfigError(f"the log's current key is {history.describe()[-1]['key_id']}, not the key given")
        self.sign_checkpoint(old, origin)
        with self.engine.begin() as conn:
            seq = int(conn.execute(select_head_seq()).scalar_one()) + 1
            statement = rotation_statement(origin, seq, old.public_key, new.public_key)
            record = self._append(conn, [{"decision_id": f"rotation-{secrets.token_hex(12)}", "kind": ROTATION,
                                          "key_id": None, "latency_ms": 0.0,
                                          "output": {"origin": origin, "old_key_id": key_id(old.public_key),
                                                     "new_key_id": key_id(new.public_key),
                                                     "old_public_key": public_key_text(old.public_key),
                                                     "new_public_key": public_key_text(new.public_key),
                                                     "endorsement": base64.b64encode(old.sign(statement)).decode()}}])[0]
        covering = self.sign_checkpoint(old, origin)
        return {"seq": record["seq"], "old_key_id": key_id(old.public_key), "new_key_id": key_id(new.public_key),
                "checkpoint": covering.to_dict() if covering is not None else None}

    def export(self, path: Path, since: str | None = None) -> int:
        """Write records as JSON lines for auditors; returns how many."""
        from steward.atomic import atomic_path

        n = 0
        with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as fh:
            for row in self.records(since):
                row = {**row, "findings": json.loads(row["findings"]), "output": json.loads(row["output"])}
                fh.write(json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n")
                n += 1
        return n


def select_head_seq() -> Any:
    """The head's sequence number, locked for the transaction (the append that follows is the next record)."""
    from sqlalchemy import select

    from steward.service.tables import audit_head

    return select(audit_head.c.seq).where(audit_head.c.id == 1).with_for_update()


def safe_url(url: str) -> str:
    """A database URL fit for messages and logs: the password hidden."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 — an unparsable URL is shown by its scheme only
        return url.split(":", 1)[0] + ":…"


def check_at_start(log: AuditLog, on_broken: str) -> AuditReport:
    """Verify the chain a service is about to extend. ``on_broken="refuse"``: a broken chain raises
    :class:`AuditChainError` (the service does not start); ``"read_only"``: the report is returned and the
    service must take no decisions."""
    from steward.errors import AuditChainError

    report = log.verify()
    if not report.ok and on_broken == "refuse":
        raise AuditChainError(f"{safe_url(log.url)}: the audit log fails verification at record {report.seq} "
                              f"({report.error}); a service appending to it could not prove its decisions. Fix: "
                              f"investigate with `steward audit verify`; to answer health and model queries "
                              f"meanwhile, set audit_broken: read_only")
    return report


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")
