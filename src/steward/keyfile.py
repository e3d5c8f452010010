"""Symmetric keys kept in files outside every run folder: random, written whole and then linked (so two
processes starting together agree on one and a reader never sees half a key), mode 0600, never replaced.

Used for the key that seals the audit log's record text (``steward.service.erasure``) and the key that
encrypts a run's data files at rest (``steward.at_rest``). The signing key (Ed25519, PEM) has its own writer
in ``steward.ledger.checkpoint``.
"""

from __future__ import annotations

import base64
import os
import secrets
from pathlib import Path

from steward.errors import ConfigError

KEY_BYTES = 32


def steward_home() -> Path:
    """Where Steward keeps what must live outside any run folder (keys, witness copies)."""
    return Path(os.environ.get("STEWARD_HOME") or Path.home() / ".config" / "steward")


def refuse_inside(path: Path, run_dir: Path | None, what: str = "key") -> None:
    """A key beside the data it protects protects nothing: whoever can read or edit the data can use it."""
    if run_dir is not None and path.resolve().is_relative_to(Path(run_dir).resolve()):
        raise ConfigError(f"{what} {path} is inside the run folder {run_dir}: keep it apart from the data it "
                          f"protects (e.g. under $STEWARD_HOME, default ~/.config/steward)")


def write_random_key(path: Path, *, run_dir: Path | None = None) -> Path:
    """A new random 256-bit key (base64 text) in ``path``; an existing file is kept (another process won)."""
    refuse_inside(path, run_dir)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(base64.b64encode(secrets.token_bytes(KEY_BYTES)) + b"\n")
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
    finally:
        tmp.unlink(missing_ok=True)
    return path


def read_random_key(source: str, *, where: str, make_hint: str, run_dir: Path | None = None) -> bytes:
    """The key in ``source``: a file holding its base64 text, or the base64 text itself (an environment
    variable). ``where`` names the setting in errors; ``make_hint`` says how to make one."""
    candidate = Path(source).expanduser()
    try:
        is_file = candidate.is_file()
    except OSError:  # key text is not a usable path
        is_file = False
    text = source
    if is_file:
        refuse_inside(candidate, run_dir)
        text = candidate.read_text(encoding="utf-8")
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except ValueError as exc:
        raise ConfigError(f"{where}: neither a key file nor base64 key text. Fix: {make_hint}") from exc
    if len(key) != KEY_BYTES:
        raise ConfigError(f"{where}: the key is {len(key)} bytes, not {KEY_BYTES}. Fix: {make_hint}")
    return key
