"""The run ledger as a signed transparency log: each event is a Merkle leaf, and every append signs the new
tree head, keeps it beside the ledger (``ledger.checkpoints.jsonl``) and hands it to the witness folder.

The hash chain alone lets whoever holds the run folder edit a scorecard, recompute its sha256 and every later
hash, and verify again. A signed head pins the events: rewriting them needs the private key (kept outside
the run folder), and even its holder cannot rewrite what a witness has already seen.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from steward.errors import LedgerIntegrityError
from steward.ledger import merkle, witness
from steward.ledger.checkpoint import (
    Checkpoint,
    Signer,
    default_signer,
    key_id,
    sign_checkpoint,
    steward_home,
)
from steward.ledger.rotation import KeyHistory

CHECKPOINTS_NAME = "ledger.checkpoints.jsonl"


def origin_for(run_dir: Path, event_hashes: Sequence[str]) -> str:
    """The ledger's log name: where it lives and its first event. A copy elsewhere, or a ledger started over in
    the same folder, is another log (no false fork); the witness still links logs of one folder (``place``)."""
    place = hashlib.sha256(str(Path(run_dir).resolve()).encode()).hexdigest()[:16]
    return f"steward/ledger/{place}/{event_hashes[0][:16]}"


def event_leaf(event_hash: str) -> bytes:
    return merkle.leaf_hash(bytes.fromhex(event_hash))


def tree_of(event_hashes: Sequence[str]) -> merkle.MemoryNodes:
    return merkle.MemoryNodes([event_leaf(h) for h in event_hashes])


def default_witness() -> Path:
    return steward_home() / "witness"


def sign(run_dir: Path, event_hashes: Sequence[str], time: str, *, signer: Signer | None = None,
         witness_dir: Path | None = None) -> Checkpoint:
    """Sign the ledger's head after an append; keep it beside the ledger and in the witness folder."""
    signer = signer or default_signer(run_dir)
    tree = tree_of(event_hashes)
    cp = sign_checkpoint(signer, origin_for(run_dir, event_hashes), tree.size, merkle.root(tree, tree.size), time)
    witness.record(cp, witness_dir or default_witness())  # first: a head the witness refuses is not kept
    with (Path(run_dir) / CHECKPOINTS_NAME).open("a", encoding="utf-8") as fh:
        fh.write(cp.to_json() + "\n")
    return cp


def stored(run_dir: Path) -> list[Checkpoint]:
    path = Path(run_dir) / CHECKPOINTS_NAME
    if not path.exists():
        return []
    out = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            try:
                out.append(Checkpoint.from_dict(json.loads(line)))
            except json.JSONDecodeError as exc:
                raise LedgerIntegrityError(f"{path} line {n} is not JSON ({exc.msg}): the file was damaged") from exc
    return out


def witness_copies(witness_dir: Path, origin: str, size: int) -> list[Checkpoint]:
    """What a witness holds of this ledger: every checkpoint signed in this folder, and those signed where the
    ledger lived before it was copied or moved here, up to the copy (this folder's first checkpoint less one;
    a copy that never appended: its own length). A copy taken earlier cannot be told from a truncated one,
    so a copy is held to its own history from the moment it has one."""
    if not witness_dir.is_dir():
        return []
    log_id = origin.rsplit("/", 1)[-1]
    same_log = [cp for cp in witness.load(witness_dir)
                if cp.origin.startswith("steward/ledger/") and cp.origin.rsplit("/", 1)[-1] == log_id]
    here = [cp for cp in same_log if cp.origin == origin]
    copied_at = min((cp.size for cp in here), default=size + 1) - 1
    return here + [cp for cp in same_log if cp.origin != origin and cp.size <= copied_at]


def check(run_dir: Path, event_hashes: Sequence[str], public_key: bytes,
          witness_dir: Path | None = None, rotations: Sequence[dict[str, Any]] = ()) -> dict[str, Any]:
    """Raise ``LedgerIntegrityError`` unless every checkpoint (beside the ledger and in the witness folder) is
    signed by the key in force at its size — ``public_key``, or the keys the ledger's ``rotations`` handed it
    to and from (``public_key`` must be one of them) — and the ledger extends it; what was checked, how many
    events are signed, and by which key the newest of them."""
    if not event_hashes:
        return {"signed_events": 0, "checkpoints": 0, "witness_checkpoints": 0, "key_id": None}
    keys = KeyHistory(list(rotations), public_key)
    origin = origin_for(run_dir, event_hashes)
    log_id = origin.rsplit("/", 1)[1]
    # checkpoints kept beside the ledger: this log's, and those it carried when the folder was copied or moved
    held = [cp for cp in stored(run_dir) if cp.origin.rsplit("/", 1)[-1] == log_id]
    seen = witness_copies(witness_dir, origin, len(event_hashes)) if witness_dir is not None else []
    if witness_dir is not None:
        others = witness.other_logs(witness_dir, origin)
        if others:
            name, size = max(others.items(), key=lambda kv: kv[1])
            raise LedgerIntegrityError(f"the witness holds another ledger for this run folder ({name}, {size} "
                                       "events): it was replaced or started over since that one was signed")
    witness.check_forks([*held, *seen], keys)
    signed = witness.check_extends([event_leaf(h) for h in event_hashes], [*held, *seen], keys, "ledger events")
    return {"signed_events": signed, "checkpoints": len(held), "witness_checkpoints": len(seen),
            "key_id": key_id(keys(signed)) if signed else None, "keys": keys.describe() if rotations else None}
