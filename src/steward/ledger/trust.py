"""What a service may trust in a run folder: an artifact is trusted when a signed ledger event produced it.

A hash written beside the artifact it describes (``compress/chosen.json``, ``train/manifest.json``) proves
nothing to whoever can write the folder: they change both. The ledger's events are signed (``signed.py``),
so the hash a service checks at start-up is taken from the newest signed event that names the artifact as an
output, and the file must still have it. A ledger with no checkpoints at all (written before Steward signed
ledgers, or with its checkpoints deleted) is refused unless the caller allows it: the two cannot be told
apart from the folder alone.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from steward.errors import LedgerIntegrityError
from steward.hashing import sha256_tree
from steward.ledger import signed
from steward.ledger.checkpoint import existing_signer, key_id
from steward.ledger.rotation import ledger_rotations
from steward.ledger.store import Ledger, LedgerEvent
from steward.types import ArtifactRef


@dataclass(frozen=True)
class Attested:
    """One artifact as the signed ledger records it."""

    path: str  # run-relative
    sha256: str
    event_index: int
    stage: str
    signed_by: str | None  # key id of the checkpoint covering the event; None: unsigned ledger, allowed

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _producer(events: Sequence[LedgerEvent], rel: str) -> tuple[LedgerEvent, ArtifactRef] | None:
    for ev in reversed(events):
        for ref in ev.outputs:
            if ref.path == rel:
                return ev, ref
    return None


def attest(run_dir: str | os.PathLike[str], paths: Sequence[str], *, optional: Sequence[str] = (),
           public_key: bytes | None = None, allow_unsigned: bool = False) -> dict[str, Attested]:
    """Each of ``paths`` (run-relative, as the ledger names them) as the newest signed ledger event that
    produced it records it; raises ``LedgerIntegrityError`` naming the artifact and the fix when the ledger is
    broken or unsigned, an event is not covered by a checkpoint signed by ``public_key`` (default: this
    machine's signing key), no event produced the artifact, or the file no longer has that hash. An
    ``optional`` path is skipped only when neither an event nor the file exists (deleting a produced file
    is caught; a file no stage produced is refused)."""
    run_dir = Path(run_dir)
    ledger = Ledger(run_dir)
    report = ledger.check_chain()
    if not report.ok:
        raise LedgerIntegrityError(f"{ledger.path}: {report.error}. Nothing in {run_dir} can be trusted; "
                                   "re-run the stages, or restore the run folder from a copy",
                                   event_index=report.broken_index)
    events = ledger.events()
    hashes = [e.hash for e in events]
    signed_upto, kid = 0, None
    if signed.stored(run_dir) or not allow_unsigned:
        key = public_key
        if key is None:
            signer = existing_signer(run_dir)
            if signer is None:
                raise LedgerIntegrityError(
                    f"no public key to check {ledger.path}'s signatures with. Fix: set transparency."
                    "ledger_public_key to the key that signed the run (`steward audit public-key` on the machine "
                    "that ran the stages)")
            key = signer.public_key
        if not signed.stored(run_dir):
            raise LedgerIntegrityError(
                f"{ledger.path} is not signed (no {signed.CHECKPOINTS_NAME}): written before Steward signed "
                "ledgers, or its checkpoints were deleted. Fix: re-run the stages (or `steward ledger sign` "
                "after `steward ledger verify --witness` shows nothing was changed), or set "
                "transparency.unsigned_ledger: allow to serve it on the chain alone")
        facts = signed.check(run_dir, hashes, key, rotations=ledger_rotations(events))
        signed_upto, kid = facts["signed_events"], facts["key_id"] or key_id(key)
    out: dict[str, Attested] = {}
    for rel in (*paths, *optional):
        found = _producer(events, rel)
        if found is None and rel in optional and not (run_dir / rel).exists():
            continue
        if found is None:
            raise LedgerIntegrityError(f"{rel}: no ledger event produced it, so nothing vouches for it. Fix: "
                                       "produce it with its stage (`steward train`, `evaluate`, `compress`)")
        ev, ref = found
        if kid is not None and ev.index >= signed_upto:
            raise LedgerIntegrityError(f"{rel}: ledger event {ev.index} ({ev.stage}) that produced it is covered by "
                                       "no signed checkpoint (appended without the signing key)",
                                       event_index=ev.index)
        full = run_dir / rel
        if not full.exists():
            raise LedgerIntegrityError(f"{rel}: missing, but ledger event {ev.index} ({ev.stage}) produced it "
                                       f"(deleted)", event_index=ev.index)
        if sha256_tree(full) != ref.sha256:
            raise LedgerIntegrityError(f"{rel} differs from what ledger event {ev.index} ({ev.stage}) recorded "
                                       f"(sha256 mismatch): it was modified afterwards. Fix: re-run `steward "
                                       f"{ev.stage}`, or restore the file", event_index=ev.index)
        out[rel] = Attested(rel, ref.sha256, ev.index, ev.stage, kid)
    return out


def summary(attested: dict[str, Attested]) -> dict[str, Any]:
    """What a service publishes of it (``/v1/models``): the signing key's id and each artifact's event."""
    keys = sorted({a.signed_by or "unsigned" for a in attested.values()})
    return {"signed_by": keys[0] if len(keys) == 1 else keys,
            "artifacts": {path: {"sha256": a.sha256, "event": a.event_index, "stage": a.stage}
                          for path, a in attested.items()}}
