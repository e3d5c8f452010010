"""Where Steward keeps what it builds once per machine (the built-in injection detector and names model, the
chat model's unpacked weights): ``$STEWARD_CACHE``, default ``~/.cache/steward``. Everything under it is keyed by the hash of
what it was made from and checked when read, so a stale or edited entry is never used."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")


def cache_root() -> Path:
    return Path(os.environ.get("STEWARD_CACHE") or Path.home() / ".cache" / "steward")


def build_once(target: Path, record: str, make: Callable[[Path], None], *, force: bool = False) -> None:
    """Make ``target`` (a folder holding ``record``) once per machine: under a file lock, in a hidden temporary
    folder beside it, renamed into place only when ``make(tmp)`` has finished. Several processes may start at
    once: one builds, the others wait for the lock and then find the record. A failed build leaves nothing."""
    from filelock import FileLock

    root = target.parent
    root.mkdir(parents=True, exist_ok=True)
    with FileLock(str(root / f".{target.name}.lock")):
        if not force and (target / record).is_file():
            return
        # Only the lock holder builds this target: a temporary folder of it that is still here was left by a
        # build killed outright (SIGKILL, power loss), which no exception handler saw.
        for stale in root.glob(f".build-{target.name}-*"):
            shutil.rmtree(stale, ignore_errors=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".build-{target.name}-", dir=root))
        try:
            make(tmp)
            if target.exists():
                # Renamed aside, not deleted in place: a process reading the old entry keeps its open files,
                # and the entry's path is missing only between two renames.
                old = Path(tempfile.mkdtemp(prefix=f".old-{target.name}-", dir=root))
                target.rename(old / "entry")
                tmp.rename(target)
                shutil.rmtree(old, ignore_errors=True)
            else:
                tmp.rename(target)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise


def read_or_build(folder: Path, record: str, read: Callable[[Path], T], build: Callable[[], T]) -> T:
    """The cached entry in ``folder`` (read, which checks it) if its record is there, else ``build()``."""
    return read(folder) if (folder / record).is_file() else build()
