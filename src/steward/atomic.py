"""Atomic file writes: a reader (or a crash) sees the old file or the new one, never half of one."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; on success fsync it and rename it over ``target``.

    The temp file lives in the same directory so ``os.replace`` is a same-filesystem rename, which
    POSIX makes atomic. On any exception the temp file is removed and ``target`` is untouched.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp_path, target)
        _fsync_dir(target.parent)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def _fsync_dir(directory: Path) -> None:
    # Make the rename itself durable; not every filesystem allows opening a directory.
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def write_text(target: str | os.PathLike[str], text: str) -> Path:
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(target)


def write_json(target: str | os.PathLike[str], obj: Any) -> Path:
    return write_text(target, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def write_with(target: str | os.PathLike[str], writer: Callable[[Path], None]) -> Path:
    """Atomically write ``target`` through ``writer(tmp_path)`` (e.g. ``df.to_parquet``)."""
    with atomic_path(target) as tmp:
        writer(tmp)
    return Path(target)


@contextlib.contextmanager
def atomic_dir(target: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a fresh directory; on success make ``target`` point at it in one atomic step.

    ``target`` is a symlink to a generation directory (``.<name>.<stamp>``). Swapping it is a rename of a
    new symlink over the old one, which is atomic, so readers and a crash see the old set of files or the
    new set, never a mix. The previous generation is removed afterwards.
    """
    import shutil
    import time

    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    gen = Path(tempfile.mkdtemp(prefix=f".{target.name}.{time.strftime('%Y%m%dT%H%M%S')}.", dir=target.parent))
    try:
        yield gen
    except BaseException:
        shutil.rmtree(gen, ignore_errors=True)
        raise
    old: Path | None = None
    if target.is_symlink():
        old = target.parent / os.readlink(target)
    elif target.exists():
        # A plain directory left by something else: move it aside as a generation so the swap stays atomic.
        old = target.parent / f".{target.name}.previous"
        shutil.rmtree(old, ignore_errors=True)
        os.replace(target, old)
    link_tmp = target.parent / f".{target.name}.link.tmp"
    if link_tmp.is_symlink() or link_tmp.exists():
        link_tmp.unlink()
    os.symlink(gen.name, link_tmp)
    os.replace(link_tmp, target)
    _fsync_dir(target.parent)
    if old is not None and old.resolve() != gen.resolve():
        shutil.rmtree(old, ignore_errors=True)
