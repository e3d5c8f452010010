"""Witness copies of signed checkpoints: a folder outside the run folder (or a third party's) that keeps
every checkpoint a log ever showed it. A log that is no extension of them was rewritten, truncated or
forked; two validly signed checkpoints of one size with different roots prove a fork on their own.

Layout: ``DIR/<origin, with / as __>/<size>.json``, one checkpoint each, never overwritten.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from pathlib import Path

from steward.atomic import write_text
from steward.errors import LedgerIntegrityError
from steward.ledger import merkle
from steward.ledger.checkpoint import Checkpoint, verify_checkpoint

# One public key, or the key in force for a checkpoint of a given size (a log whose key was rotated:
# steward.ledger.rotation.KeyHistory).
Keys = bytes | Callable[[int], bytes]


def key_for(keys: Keys, size: int) -> bytes:
    return keys(size) if callable(keys) else keys


def origin_folder(directory: Path, origin: str) -> Path:
    return directory / origin.replace("/", "__")


def record(cp: Checkpoint, directory: Path) -> Path:
    """Keep ``cp``; a different checkpoint of the same size already kept is a fork, and is refused loudly."""
    path = origin_folder(directory, cp.origin) / f"{cp.size}.json"
    if path.exists():
        kept = Checkpoint.from_dict(json.loads(path.read_text(encoding="utf-8")))
        if kept.root != cp.root:
            raise LedgerIntegrityError(f"log {cp.origin!r} forked: this witness holds a checkpoint of size {cp.size} "
                                       f"with root {kept.root.hex()[:16]}…, now shown {cp.root.hex()[:16]}…")
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text(path, cp.to_json() + "\n")
    return path


def load(directory: Path, origin: str | None = None) -> list[Checkpoint]:
    """Every checkpoint a witness folder holds (for one log, or all), by size."""
    folders = [origin_folder(directory, origin)] if origin else [p for p in directory.iterdir() if p.is_dir()]
    out = []
    for folder in folders:
        for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
            try:
                out.append(Checkpoint.from_dict(json.loads(path.read_text(encoding="utf-8"))))
            except json.JSONDecodeError as exc:
                raise LedgerIntegrityError(f"witness file {path} is not JSON ({exc.msg}): it was damaged") from exc
    return sorted(out, key=lambda c: (c.origin, c.size))


def check_forks(checkpoints: Iterable[Checkpoint], public_key: Keys) -> None:
    """Raise if two validly signed checkpoints of one log and one size disagree (from one witness or several)."""
    seen: dict[tuple[str, int], Checkpoint] = {}
    for cp in checkpoints:
        verify_checkpoint(cp, key_for(public_key, cp.size))
        other = seen.setdefault((cp.origin, cp.size), cp)
        if other.root != cp.root:
            raise LedgerIntegrityError(f"log {cp.origin!r} forked at size {cp.size}: two signed checkpoints with "
                                       f"different roots ({other.time} and {cp.time}) — two parties were shown "
                                       "different logs")


def other_logs(directory: Path, origin: str) -> dict[str, int]:
    """Logs the witness holds under the same location as ``origin`` (``<kind>/<place>/<log id>``) but with
    another log id, with the largest size seen: a log started over, replaced or deleted there."""
    prefix = origin.rsplit("/", 1)[0] + "/"
    if not directory.is_dir():
        return {}
    out: dict[str, int] = {}
    for cp in load(directory):
        if cp.origin.startswith(prefix) and cp.origin != origin:
            out[cp.origin] = max(out.get(cp.origin, 0), cp.size)
    return out


def check_extends(leaves: list[bytes], checkpoints: Iterable[Checkpoint], public_key: Keys, unit: str) -> int:
    """Raise unless the log with these leaf hashes (recomputed from its entries, never read from a store the
    operator keeps) extends every checkpoint, each signature checked first; the largest size signed.
    ``unit`` names the entries in messages ("records", "ledger events")."""
    tree = merkle.MemoryNodes(leaves)
    signed = 0
    for cp in sorted(checkpoints, key=lambda c: c.size):
        verify_checkpoint(cp, key_for(public_key, cp.size))
        if cp.size > tree.size:
            raise LedgerIntegrityError(f"the log holds {tree.size} {unit} but a checkpoint of {cp.size} was signed "
                                       f"at {cp.time}: {unit} were deleted")
        if merkle.root(tree, cp.size) != cp.root:
            raise LedgerIntegrityError(f"the first {cp.size} {unit} do not hash to the root signed at {cp.time}: the "
                                       "log was rewritten after that checkpoint (or a different log was shown to "
                                       "that witness)")
        signed = max(signed, cp.size)
    return signed
