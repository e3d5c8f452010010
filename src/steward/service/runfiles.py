"""The service's files in a run folder — its audit database and HMAC secret — private to the service's user.

``serve/`` is created 0700 and the files in it 0600: the audit log holds redacted inputs and the secret keys
its input hashes; neither is for other local users. SQLite creates a database's ``-wal`` and ``-shm`` files
with the database file's own mode, so creating the database file 0600 first covers all three.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

SECRET_ENV = "STEWARD_AUDIT_KEY"


def private_dir(path: Path) -> Path:
    """``path`` as a folder only its owner can enter (created, or narrowed if it exists and we own it)."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    _narrow(path, 0o700)
    return path


def private_file(path: Path) -> Path:
    """``path`` exists (empty if new) and is readable by its owner only. An existing file is only narrowed,
    and only when that is possible: a reader (``steward audit verify`` by an auditor, a read-only mount)
    must still open a database it does not own."""
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.close(fd)
    _narrow(path, 0o600)
    return path


def _narrow(path: Path, mode: int) -> None:
    try:
        if path.stat().st_mode & 0o777 != mode and path.stat().st_uid == os.geteuid():
            os.chmod(path, mode)
    except OSError:  # read-only file system, or not ours: leave it as it is
        pass


def sqlite_database(run_dir: Path) -> Path:
    """``RUN_DIR/serve/audit.db``, created private before SQLite opens it (and its -wal/-shm files after it)."""
    path = private_dir(Path(run_dir) / "serve") / "audit.db"
    private_file(path)
    for suffix in ("-wal", "-shm"):  # left by an older version that created them world-readable
        side = path.with_name(path.name + suffix)
        if side.exists():
            _narrow(side, 0o600)
    return path


def service_secret(run_dir: Path) -> bytes:
    """The key for input hashes in the audit log: ``$STEWARD_AUDIT_KEY``, else ``serve/audit.key`` (0600).

    Created atomically: the random bytes are written to a private temporary file, which is then hard-linked to
    its name. A link never replaces an existing file, so replicas starting together agree on one secret, and no
    replica can read a half-written one."""
    env = os.environ.get(SECRET_ENV)
    if env:
        return env.encode()
    folder = private_dir(Path(run_dir) / "serve")
    path = folder / "audit.key"
    if not path.exists():
        tmp = folder / f".audit.key.{secrets.token_hex(8)}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(secrets.token_bytes(32))
                fh.flush()
                os.fsync(fh.fileno())
            try:
                os.link(tmp, path)
            except FileExistsError:  # another replica won: use its secret
                pass
            except OSError:  # no hard links on this file system (some FUSE, SMB, vfat): create-exclusive
                with contextlib.suppress(FileExistsError):
                    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                    with os.fdopen(fd, "wb") as fh:
                        fh.write(tmp.read_bytes())
                        fh.flush()
                        os.fsync(fh.fileno())
        finally:
            tmp.unlink(missing_ok=True)
    return path.read_bytes()
