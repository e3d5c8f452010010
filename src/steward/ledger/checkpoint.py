"""Signed checkpoints: a log's tree head (size, root hash, time), signed with Ed25519.

The signed body is a C2SP ``tlog-checkpoint`` note body (origin line, decimal size, base64 root, then one
extension line with the time), so a checkpoint reads the same to Steward's verifier and to the witnesses
of the transparency-dev ecosystem. A verifier needs only the public key: it never reads the database.
The private key lives outside the run folder (a key file or ``STEWARD_SIGNING_KEY``), or behind any
``Signer`` — a KMS or an HSM signs the same bytes.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from steward import keyfile
from steward.errors import ConfigError, LedgerIntegrityError
from steward.ledger.merkle import HASH_SIZE

KEY_ENV = "STEWARD_SIGNING_KEY"  # a PEM key itself, or the path of a PEM key file


class Signer(Protocol):
    """Anything that signs bytes with an Ed25519 key it may never show (a file, a KMS, an HSM)."""

    @property
    def public_key(self) -> bytes: ...  # raw 32 bytes

    def sign(self, message: bytes) -> bytes: ...


def key_id(public_key: bytes) -> str:
    """A short, stable name for a public key: the first 8 bytes of its SHA-256, in hex."""
    return hashlib.sha256(public_key).hexdigest()[:16]


class Ed25519Signer:
    """A signer holding its private key in memory, loaded from PEM (``load_signer``) or freshly made."""

    def __init__(self, key: Ed25519PrivateKey) -> None:
        self._key = key
        self.public_key = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)

    @classmethod
    def generate(cls) -> Ed25519Signer:
        return cls(Ed25519PrivateKey.generate())

    def sign(self, message: bytes) -> bytes:
        return self._key.sign(message)

    def private_pem(self) -> bytes:
        return self._key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption())


def write_key(signer: Ed25519Signer, path: Path, *, run_dir: Path | None = None) -> Path:
    """Write a new private key file, readable by its owner only; never inside the run folder it signs for."""
    path = path.expanduser().resolve()
    refuse_inside(path, run_dir)
    if path.exists():
        raise ConfigError(f"signing key {path} already exists: keep it (its public key is published) or pick "
                          "another path")
    path.parent.mkdir(parents=True, exist_ok=True)
    # Written whole to a private temporary file, then linked to its name: a process starting at the same moment
    # never reads a half-written key, and a crash never leaves an empty one.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(signer.private_pem())
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError as exc:
            raise ConfigError(f"signing key {path} already exists: keep it (its public key is published) or "
                              "pick another path") from exc
    finally:
        tmp.unlink(missing_ok=True)
    return path


def refuse_inside(path: Path, run_dir: Path | None) -> None:
    """A key beside the log it signs proves nothing: whoever can edit the log can re-sign it."""
    keyfile.refuse_inside(path, run_dir, "signing key")


steward_home = keyfile.steward_home


def default_signer(run_dir: Path | None = None) -> Ed25519Signer:
    """``$STEWARD_SIGNING_KEY``, else ``$STEWARD_HOME/signing-key.pem``, created on first use (0600; processes
    starting together agree on one)."""
    if os.environ.get(KEY_ENV):
        return load_signer(run_dir=run_dir)
    path = steward_home() / "signing-key.pem"
    if not path.exists():
        try:
            write_key(Ed25519Signer.generate(), path, run_dir=run_dir)
        except ConfigError:
            if not path.exists():  # not the race with another process: a real problem
                raise
    return load_signer(path, run_dir=run_dir)


def existing_signer(run_dir: Path | None = None) -> Ed25519Signer | None:
    """This machine's signing key if one exists (``$STEWARD_SIGNING_KEY`` or the home key); never makes one
    (a verifier must not mint a key of its own)."""
    if os.environ.get(KEY_ENV):
        return load_signer(run_dir=run_dir)
    path = steward_home() / "signing-key.pem"
    return load_signer(path, run_dir=run_dir) if path.exists() else None


def load_signer(path: str | os.PathLike[str] | None = None, *, run_dir: Path | None = None) -> Ed25519Signer:
    """The signer from ``path``, else from ``$STEWARD_SIGNING_KEY`` (PEM text or a path)."""
    source = str(path) if path is not None else os.environ.get(KEY_ENV, "")
    if not source:
        raise ConfigError(f"no signing key: pass a key file or set ${KEY_ENV} (create one with "
                          "`steward audit keygen --out PATH`, outside the run folder)")
    if source.lstrip().startswith("-----BEGIN"):
        pem = source.encode()
    else:
        key_path = Path(source).expanduser()
        refuse_inside(key_path, run_dir)
        try:
            pem = key_path.read_bytes()
        except OSError as exc:
            raise ConfigError(f"signing key {key_path} cannot be read ({exc.strerror}): check the path") from exc
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except ValueError as exc:
        raise ConfigError(f"signing key from {'$' + KEY_ENV if path is None else source} is not a PEM private "
                          f"key ({exc})") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigError(f"signing key from {source if path else '$' + KEY_ENV} is a {type(key).__name__}, "
                          "not Ed25519: create one with `steward audit keygen`")
    return Ed25519Signer(key)


@dataclass(frozen=True)
class Checkpoint:
    """One signed tree head. ``body`` is exactly what was signed."""

    origin: str  # the log's name, e.g. "steward/audit/<run id>"
    size: int
    root: bytes
    time: str  # ISO 8601, UTC
    key_id: str
    signature: bytes

    @staticmethod
    def body_for(origin: str, size: int, root: bytes, time: str) -> bytes:
        if "\n" in origin or not origin:
            raise ConfigError(f"checkpoint origin {origin!r} must be one non-empty line")
        return f"{origin}\n{size}\n{base64.b64encode(root).decode()}\ntime {time}\n".encode()

    @property
    def body(self) -> bytes:
        return self.body_for(self.origin, self.size, self.root, self.time)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["root"] = self.root.hex()
        d["signature"] = base64.b64encode(self.signature).decode()
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Checkpoint:
        try:
            return cls(origin=str(d["origin"]), size=int(d["size"]), root=bytes.fromhex(d["root"]),
                       time=str(d["time"]), key_id=str(d["key_id"]), signature=base64.b64decode(d["signature"]))
        except (KeyError, ValueError, TypeError) as exc:
            raise LedgerIntegrityError(f"malformed checkpoint ({exc!r}): it needs origin, size, root (hex), "
                                       "time, key_id and signature (base64)") from exc


def sign_checkpoint(signer: Signer, origin: str, size: int, root: bytes, time: str) -> Checkpoint:
    if len(root) != HASH_SIZE:
        raise ValueError(f"a root hash is {HASH_SIZE} bytes, got {len(root)}")
    body = Checkpoint.body_for(origin, size, root, time)
    return Checkpoint(origin, size, root, time, key_id(signer.public_key), signer.sign(body))


def public_key_text(public_key: bytes) -> str:
    """How a public key is published (``/v1/models``, the model card, ``steward audit public-key``)."""
    return base64.b64encode(public_key).decode()


def read_public_key(value: str) -> bytes:
    """A public key given as a user gives one: its text (base64 or PEM), or a file holding it."""
    path = Path(value).expanduser()
    try:
        is_file = path.is_file()
    except OSError:  # PEM text is not a usable path (too long, or contains NUL)
        is_file = False
    return parse_public_key(path.read_text(encoding="utf-8") if is_file else value)


def parse_public_key(text: str | bytes) -> bytes:
    """A published public key back to its 32 raw bytes (base64 text, or a PEM public key)."""
    raw = text.encode() if isinstance(text, str) else text
    if raw.lstrip().startswith(b"-----BEGIN"):
        key = serialization.load_pem_public_key(raw)
        if not isinstance(key, Ed25519PublicKey):
            raise ConfigError(f"public key is a {type(key).__name__}, not Ed25519")
        return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    try:
        decoded = base64.b64decode(raw.strip(), validate=True)
    except ValueError as exc:
        raise ConfigError("public key is neither base64 nor PEM: copy it from `steward audit public-key`") from exc
    if len(decoded) != 32:
        raise ConfigError(f"public key is {len(decoded)} bytes, not an Ed25519 key (32)")
    return decoded


def verify_checkpoint(cp: Checkpoint, public_key: bytes, *, origin: str | None = None) -> None:
    """Raise ``LedgerIntegrityError`` unless ``cp`` was signed by ``public_key`` (and names ``origin``)."""
    if cp.key_id != key_id(public_key):
        raise LedgerIntegrityError(f"checkpoint of size {cp.size} was signed by key {cp.key_id}, not by the key "
                                   f"given ({key_id(public_key)})")
    if origin is not None and cp.origin != origin:
        raise LedgerIntegrityError(f"checkpoint is for log {cp.origin!r}, not {origin!r}")
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(cp.signature, cp.body)
    except InvalidSignature as exc:
        raise LedgerIntegrityError(f"checkpoint of size {cp.size} has a bad signature: its size, root or time "
                                   "was changed after signing") from exc
