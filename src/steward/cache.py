"""Where Steward keeps what it builds once per machine (the built-in injection detector, the chat model's
unpacked weights): ``$STEWARD_CACHE``, default ``~/.cache/steward``. Everything under it is keyed by the hash of
what it was made from and checked when read, so a stale or edited entry is never used."""

from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    return Path(os.environ.get("STEWARD_CACHE") or Path.home() / ".cache" / "steward")
