"""The audit log's Merkle tree and signed checkpoints, kept in the audit database beside the records.

Every record is a leaf (the RFC 9162 leaf hash of its chain hash); appending it writes the complete subtrees
it finishes in the same transaction, so the tree never holds a record that was not committed, and a
checkpoint — signed over a root read in one snapshot of committed rows — never signs one either. Proofs read
O(log n) stored nodes. What the operator cannot fake is checked elsewhere, against the public key and the
checkpoints that witnesses hold (``steward.service.audit.AuditLog.verify_against``).
"""

from __future__ import annotations

from typing import Any

from steward.errors import LedgerIntegrityError, ProofError
from steward.ledger import merkle, witness
from steward.ledger.checkpoint import Checkpoint, Signer, sign_checkpoint, verify_checkpoint


def record_leaf(record_hash: str) -> bytes:
    """A record's leaf: its chain hash (which covers every field) under the RFC 9162 leaf prefix."""
    return merkle.leaf_hash(bytes.fromhex(record_hash))


class DatabaseNodes:
    """A ``merkle.NodeStore`` over ``audit_nodes`` on one connection, with the nodes of this transaction."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn
        self.pending: dict[tuple[int, int], bytes] = {}

    def node(self, level: int, index: int) -> bytes:
        hit = self.pending.get((level, index))
        if hit is not None:
            return hit
        from sqlalchemy import select

        from steward.service.tables import audit_nodes

        value = self.conn.execute(select(audit_nodes.c.hash).where(audit_nodes.c.level == level)
                                  .where(audit_nodes.c.idx == index)).scalar_one_or_none()
        if value is None:
            raise ProofError(f"the audit tree has no node ({level}, {index}): the nodes table was edited "
                                    "or is behind its records")
        return bytes.fromhex(value)

    def add_leaves(self, first_index: int, leaves: list[bytes]) -> None:
        """Append leaves ``first_index``, ``first_index + 1``, …: their nodes are written with one statement."""
        from steward.service.tables import audit_nodes

        rows = []
        for offset, leaf in enumerate(leaves):
            for level, index, h in merkle.completed_nodes(self, first_index + offset, leaf):
                self.pending[(level, index)] = h
                rows.append({"level": level, "idx": index, "hash": h.hex()})
        if rows:
            self.conn.execute(audit_nodes.insert(), rows)


def committed_size(conn: Any) -> int:
    from sqlalchemy import select

    from steward.service.tables import audit_head

    return int(conn.execute(select(audit_head.c.seq).where(audit_head.c.id == 1)).scalar_one())


def sign_head(conn: Any, signer: Signer, origin: str, time: str) -> Checkpoint | None:
    """Sign the tree of every committed record as ``conn`` sees it, unless that size is already signed."""
    from sqlalchemy import select

    from steward.service.tables import audit_checkpoints

    size = committed_size(conn)
    if size == 0 or conn.execute(select(audit_checkpoints.c.size).where(audit_checkpoints.c.size == size)).first():
        return None
    return sign_checkpoint(signer, origin, size, merkle.root(DatabaseNodes(conn), size), time)


def store_checkpoint(conn: Any, cp: Checkpoint) -> None:
    from steward.service.tables import audit_checkpoints

    conn.execute(audit_checkpoints.insert().values(size=cp.size, origin=cp.origin, root=cp.root.hex(),
                                                   time=cp.time, key_id=cp.key_id,
                                                   signature=cp.to_dict()["signature"]))


def checkpoint_covering(conn: Any, index: int) -> Checkpoint | None:
    """The oldest signed checkpoint that includes leaf ``index`` (a receipt's), or None if none does yet."""
    from sqlalchemy import select

    from steward.service.tables import audit_checkpoints

    row = conn.execute(select(audit_checkpoints).where(audit_checkpoints.c.size > index)
                       .order_by(audit_checkpoints.c.size).limit(1)).mappings().first()
    return Checkpoint.from_dict(dict(row)) if row else None


def latest_checkpoint(conn: Any) -> Checkpoint | None:
    from sqlalchemy import select

    from steward.service.tables import audit_checkpoints

    row = conn.execute(select(audit_checkpoints).order_by(audit_checkpoints.c.size.desc()).limit(1)).mappings().first()
    return Checkpoint.from_dict(dict(row)) if row else None


def backfill(conn: Any) -> int:
    """Give an audit database written before the tree existed its nodes (in record order); how many leaves."""
    from sqlalchemy import func, select

    from steward.service.tables import audit_head, audit_nodes, audit_records

    # hold the head as an append does: no append commits between counting the nodes and reading the records
    conn.execute(select(audit_head.c.seq).where(audit_head.c.id == 1).with_for_update()).one()
    have = int(conn.execute(select(func.count()).select_from(audit_nodes).where(audit_nodes.c.level == 0))
               .scalar_one())
    rows = conn.execute(select(audit_records.c.hash).where(audit_records.c.seq > have)
                        .order_by(audit_records.c.seq)).scalars().all()
    DatabaseNodes(conn).add_leaves(have, [record_leaf(h) for h in rows])
    return len(rows)


def receipt(conn: Any, record: dict[str, Any]) -> dict[str, Any]:
    """What proves a decision to its client: the record's leaf, and — once a checkpoint covers it — that signed
    checkpoint and the inclusion proof into it. Verifiable offline with the public key alone."""
    index = int(record["seq"]) - 1
    out: dict[str, Any] = {"decision_id": record["decision_id"], "key_id": record.get("key_id"),
                           "seq": record["seq"], "record_hash": record["hash"],
                           "leaf_index": index, "leaf_hash": record_leaf(record["hash"]).hex(),
                           "checkpoint": None, "inclusion_proof": None}
    cp = checkpoint_covering(conn, index)
    if cp is not None:
        out["checkpoint"] = cp.to_dict()
        out["inclusion_proof"] = [h.hex() for h in merkle.inclusion_proof(DatabaseNodes(conn), index, cp.size)]
    return out


def verify_receipt(receipt_doc: dict[str, Any], public_key: bytes, *, record_hash: str | None = None,
                   origin: str | None = None) -> Checkpoint:
    """Check a receipt with nothing but the public key: the checkpoint's signature (on an audit log's
    checkpoint, or on ``origin``'s), then the leaf's inclusion in it. ``record_hash``: the one the service's
    response gave for the decision — without it a receipt proves that *some* record is in the log, not which.
    Raises ``LedgerIntegrityError`` (``ProofError``) naming what fails; returns the checkpoint."""
    if not receipt_doc.get("checkpoint"):
        raise LedgerIntegrityError(f"receipt for {receipt_doc.get('decision_id')} has no signed checkpoint yet: "
                                   "fetch it again from GET /v1/receipts/{decision_id} after the next signing")
    cp = Checkpoint.from_dict(receipt_doc["checkpoint"])
    verify_checkpoint(cp, public_key, origin=origin)
    if origin is None and not cp.origin.startswith("steward/audit/"):
        raise LedgerIntegrityError(f"the receipt's checkpoint is for log {cp.origin!r}, not an audit log: pass the "
                                   "service's log name (/v1/models transparency.origin) to accept it")
    if record_hash is not None and receipt_doc.get("record_hash") != record_hash:
        raise ProofError(f"the receipt is for record {str(receipt_doc.get('record_hash'))[:16]}…, not the decision's "
                         f"{record_hash[:16]}…: it proves another record")
    try:
        leaf, proof = bytes.fromhex(receipt_doc["leaf_hash"]), [bytes.fromhex(h) for h in receipt_doc["inclusion_proof"]]
        index = int(receipt_doc["leaf_index"])
    except (KeyError, TypeError, ValueError) as exc:
        raise LedgerIntegrityError(f"malformed receipt ({exc!r}): it needs leaf_index, leaf_hash and "
                                   "inclusion_proof (hex)") from exc
    if record_leaf(receipt_doc["record_hash"]) != leaf:
        raise ProofError("the receipt's leaf hash is not its record hash's leaf: the receipt was edited")
    merkle.verify_inclusion(index, cp.size, leaf, proof, cp.root)
    return cp


def check_against(leaves: list[bytes], checkpoints: list[Checkpoint], public_key: witness.Keys) -> None:
    """Raise unless the log whose leaves these are extends every checkpoint: a log truncated, emptied,
    rewritten and re-hashed, or forked shows a root that no signed checkpoint has. ``public_key``: one key,
    or a ``KeyHistory`` (the key in force at each size of a log whose key was rotated)."""
    witness.check_extends(leaves, checkpoints, public_key, "records")


# -- key rotation, recorded in the log itself ------------------------------------------------------------------
ROTATION = "key_rotation"  # the record kind; its output names both keys and carries the old key's endorsement
