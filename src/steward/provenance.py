"""Provenance stamped on every artifact and ledger event: who made it, from what, with which code."""

from __future__ import annotations

import functools
import platform
import subprocess
from pathlib import Path

from steward import __version__


@functools.lru_cache(maxsize=1)
def git_commit() -> str | None:
    """The commit of the Steward source tree, if it runs from a git checkout."""
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    commit = out.stdout.strip()
    return commit if out.returncode == 0 and len(commit) == 40 else None


def stamp() -> dict[str, str | None]:
    return {
        "steward_version": __version__,
        "git_commit": git_commit(),
        "python": platform.python_version(),
    }
