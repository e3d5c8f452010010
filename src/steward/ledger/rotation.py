"""Key rotation recorded in the log itself, for both transparency logs (the audit log and the run ledger).

The old key signs a statement handing the log over — this log, at this size, from this key to that one — and
the statement is a record (an event) of the log, so the handover is covered by the tree it changes. A
verifier who trusts either key rebuilds the chain of keys from the log's own records (:class:`KeyHistory`)
and checks each checkpoint against the key in force at its size: a forged handover, the old key signing after
it, or a key that never signed the log are all caught.
"""

from __future__ import annotations

import base64
from typing import Any

from steward.errors import LedgerIntegrityError
from steward.ledger.checkpoint import key_id


def rotation_statement(origin: str, seq: int, old_public: bytes, new_public: bytes) -> bytes:
    """What the old key signs to hand the log over: this log, at this record, from this key to that one."""
    return (f"steward key rotation\n{origin}\n{seq}\n{base64.b64encode(old_public).decode()}\n"
            f"{base64.b64encode(new_public).decode()}\n").encode()


class KeyHistory:
    """The key in force at each size of a log, from its rotation records: checkpoints up to and including a
    rotation record's size are the old key's, later ones the new key's. Built from records a verifier reads
    itself; each endorsement is checked against the key it replaces, and the key the verifier trusts must
    be one of the chain (the current key signs trees that contain every rotation record before it)."""

    def __init__(self, rotations: list[dict[str, Any]], trusted: bytes) -> None:
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

        self.ranges: list[tuple[int | None, bytes]] = []  # (last size signed by this key, key); None: open
        current: bytes | None = None
        for r in sorted(rotations, key=lambda x: x["seq"]):
            old, new = base64.b64decode(r["old_public_key"]), base64.b64decode(r["new_public_key"])
            if current is not None and old != current:
                raise LedgerIntegrityError(f"key rotation at record {r['seq']} hands over from {key_id(old)}, but "
                                           f"the key in force was {key_id(current)}: the chain of keys is broken")
            try:
                Ed25519PublicKey.from_public_bytes(old).verify(base64.b64decode(r["endorsement"]),
                                                               rotation_statement(r["origin"], r["seq"], old, new))
            except (InvalidSignature, ValueError, KeyError) as exc:
                raise LedgerIntegrityError(f"key rotation at record {r['seq']}: its endorsement is not the old key's "
                                           f"({key_id(old)}) signature: forged") from exc
            self.ranges.append((int(r["seq"]), old))
            current = new
        self.ranges.append((None, current if current is not None else trusted))
        if trusted not in {k for _, k in self.ranges}:
            raise LedgerIntegrityError(f"key {key_id(trusted)} never signed this log; its keys were "
                                       f"{', '.join(key_id(k) for _, k in self.ranges)}")

    def __call__(self, size: int) -> bytes:
        for last, key in self.ranges:
            if last is None or size <= last:
                return key
        return self.ranges[-1][1]

    def describe(self) -> list[dict[str, Any]]:
        out, first = [], 1
        for last, key in self.ranges:
            out.append({"key_id": key_id(key), "public_key": base64.b64encode(key).decode(),
                        "from_size": first, "to_size": last})
            first = (last or 0) + 1
        return out


# -- the run ledger's handovers: an event of its own ---------------------------------------------------------
LEDGER_ROTATION = "key_rotation"  # the event's stage


def ledger_rotations(events: Any) -> list[dict[str, Any]]:
    """The handovers recorded in a ledger's events, as :class:`KeyHistory` reads them (``seq``: the ledger's
    size once the rotation event is in it, the last size the old key signs)."""
    return [{**ev.summary, "seq": ev.index + 1} for ev in events if ev.stage == LEDGER_ROTATION]


def in_force(rotations: list[dict[str, Any]], key: bytes) -> None:
    """Raise unless ``key`` is the one that signs the next head of a log with these rotations."""
    current = KeyHistory(rotations, key).ranges[-1][1]
    if current != key:
        raise LedgerIntegrityError(f"this log was handed over to key {key_id(current)} (at record "
                                   f"{rotations[-1]['seq']}); key {key_id(key)} may not sign it any more. Fix: "
                                   "sign with the new key ($STEWARD_SIGNING_KEY, or replace "
                                   "$STEWARD_HOME/signing-key.pem)")
