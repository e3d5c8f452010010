"""The service's database schema (SQLAlchemy Core): the same tables on SQLite and PostgreSQL."""

from __future__ import annotations

from sqlalchemy import Boolean, Column, Float, Integer, MetaData, String, Table, Text

METADATA = MetaData()

# One row per decision (and per feedback), hash-chained in ``seq`` order.
audit_records = Table(
    "audit_records", METADATA,
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("decision_id", String(64), nullable=False, index=True),
    Column("ts", String(40), nullable=False, index=True),
    Column("kind", String(16), nullable=False),  # predict | explain | blocked | error | feedback | chat | …
    Column("key_id", String(32)),
    Column("model_version", String(128)),
    Column("model_hash", String(64)),
    Column("input_hash", String(64)),  # HMAC-SHA256 of the raw input under the service key
    Column("redacted_input", Text),
    Column("findings", Text, nullable=False),  # JSON
    Column("output", Text, nullable=False),  # JSON
    Column("latency_ms", Float, nullable=False),
    Column("ref", String(64), index=True),  # feedback: the decision it is about
    # The caller's subject id (OpenAI's ``user``) as an HMAC under the service secret: every decision about one
    # person can be found and erased (``steward audit erase --subject``) without the id being stored. Hashed
    # into the record only when set, so records written before the column existed keep their hashes.
    Column("subject", String(64), index=True),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False, unique=True),
)

# The chain's newest (seq, hash): locked for every append, so concurrent writers build one chain.
audit_head = Table(
    "audit_head", METADATA,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("seq", Integer, nullable=False),
    Column("hash", String(64), nullable=False),
)

# The audit log as a Merkle tree (RFC 9162, steward.ledger.merkle): the hash of every complete subtree, written
# in the same transaction as the record that completes it and never changed. Leaf i is record seq i + 1.
audit_nodes = Table(
    "audit_nodes", METADATA,
    Column("level", Integer, primary_key=True, autoincrement=False),
    Column("idx", Integer, primary_key=True, autoincrement=False),
    Column("hash", String(64), nullable=False),
)

# The log's own random id, made when the database is: a log started over (or a replaced database) is another
# log, which a witness tells apart from this one (steward.ledger.witness.other_logs).
audit_log_id = Table(
    "audit_log_id", METADATA,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("log_id", String(32), nullable=False),
)

# Each record's data key, wrapped under the audit data key (steward.service.erasure). Erasing a record deletes
# its row: the record's sealed text can never be opened again, and its hash, leaf and receipts stay valid.
audit_data_keys = Table(
    "audit_data_keys", METADATA,
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("wrapped", Text, nullable=False),
)

# Signed tree heads (steward.ledger.checkpoint), one per signed size. The copies that prove anything are the
# ones exported to witnesses; these let the service hand out receipts.
audit_checkpoints = Table(
    "audit_checkpoints", METADATA,
    Column("size", Integer, primary_key=True, autoincrement=False),
    Column("origin", String(200), nullable=False),
    Column("root", String(64), nullable=False),
    Column("time", String(40), nullable=False),
    Column("key_id", String(32), nullable=False),
    Column("signature", Text, nullable=False),
)

# API keys: only a hash of the secret is stored; the key itself is shown once, at creation.
api_keys = Table(
    "api_keys", METADATA,
    Column("key_id", String(32), primary_key=True),
    Column("secret_sha256", String(64), nullable=False),
    Column("role", String(16), nullable=False),
    Column("name", String(128)),
    Column("created", String(40), nullable=False),
    Column("revoked", Boolean, nullable=False, default=False),
)


def add_missing_columns(conn: object) -> list[str]:
    """Add the columns a database created by an older version lacks (nullable ones only), before the indexes on
    them are made. SQLAlchemy's ``create_all`` creates missing tables, never missing columns; a migration tool
    (Alembic) would be one more dependency for what is, so far, one nullable column."""
    from sqlalchemy import inspect, text

    added = []
    for table in METADATA.sorted_tables:
        have = {c["name"] for c in inspect(conn).get_columns(table.name)}
        for col in table.columns:
            if col.name not in have and col.nullable:
                kind = col.type.compile(dialect=conn.dialect)  # type: ignore[attr-defined]
                conn.execute(text(f'ALTER TABLE {table.name} ADD COLUMN "{col.name}" {kind}'))  # type: ignore[attr-defined]
                added.append(f"{table.name}.{col.name}")
    return added
