"""Erasure that keeps the proof: each audit record's free text is sealed under its own data key.

A record's text fields (the redacted input, the output) are stored as AES-GCM ciphertext under a random
256-bit key of that record alone; the key is kept wrapped (AES-GCM again) under a key-encryption key that
never enters the database (``$STEWARD_AUDIT_DATA_KEY``, or a key file outside the run folder). The record's
chain hash — and so its Merkle leaf, every checkpoint and every receipt — covers the ciphertext. Erasing a
record deletes its wrapped key: the text cannot be read again by anyone, and nothing that was ever signed
changes. This is "crypto-shredding", as in NIST SP 800-88's cryptographic erase.

Why not plain deletion: the leaf commits to the text; deleting or blanking it would break the chain and every
receipt issued for the record and every later one.
"""

from __future__ import annotations

import base64
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from steward.errors import ConfigError, StewardError
from steward.keyfile import read_random_key, steward_home, write_random_key

PREFIX = "enc1:"  # a sealed field's stored form: PREFIX + base64(nonce ‖ ciphertext ‖ tag)
SEALED = ("redacted_input", "output")  # the record fields that hold free text
KEY_ENV = "STEWARD_AUDIT_DATA_KEY"
ERASED_OUTPUT = '{"erased": true}'


class ErasedError(StewardError):
    """The record's data key was destroyed: its text is gone for good."""


def is_sealed(value: object) -> bool:
    return isinstance(value, str) and value.startswith(PREFIX)


@dataclass(frozen=True)
class Sealed:
    """One record's sealed fields and its wrapped data key."""

    fields: dict[str, str | None]
    wrapped_key: str


class RecordCipher:
    """Seals and opens audit record fields; one instance per key-encryption key (KEK)."""

    def __init__(self, kek: bytes) -> None:
        if len(kek) != 32:
            raise ConfigError(f"audit data key is {len(kek)} bytes; it must be 32 (make one with `steward audit "
                              "keygen --data-key --out PATH`)")
        self._kek = AESGCM(kek)
        self.key_id = hashlib.sha256(b"steward-audit-kek" + kek).hexdigest()[:16]

    def seal(self, seq: int, fields: dict[str, str | None]) -> Sealed:
        data_key = AESGCM.generate_key(bit_length=256)
        box = AESGCM(data_key)
        out: dict[str, str | None] = {}
        for name, value in fields.items():
            if value is None:
                out[name] = None
                continue
            nonce = os.urandom(12)
            blob = nonce + box.encrypt(nonce, value.encode("utf-8", "surrogatepass"), name.encode())
            out[name] = PREFIX + base64.b64encode(blob).decode()
        nonce = os.urandom(12)
        wrapped = nonce + self._kek.encrypt(nonce, data_key, f"steward-audit-data-key:{seq}".encode())
        return Sealed(out, base64.b64encode(wrapped).decode())

    def open(self, seq: int, fields: dict[str, str | None], wrapped_key: str | None) -> dict[str, str | None]:
        """The plain fields; a field that was never sealed (a record written before sealing) as it is."""
        if not any(is_sealed(v) for v in fields.values()):
            return dict(fields)
        if wrapped_key is None:
            raise ErasedError(f"record {seq} was erased: its data key is destroyed")
        raw = base64.b64decode(wrapped_key)
        try:
            data_key = self._kek.decrypt(raw[:12], raw[12:], f"steward-audit-data-key:{seq}".encode())
        except InvalidTag as exc:
            raise ConfigError(f"record {seq}: its data key does not open with this audit data key (key id "
                              f"{self.key_id}): the service wrote it under another. Fix: set audit_encryption.key "
                              f"(or ${KEY_ENV}) to the key the service used") from exc
        box = AESGCM(data_key)
        out: dict[str, str | None] = {}
        for name, value in fields.items():
            if not is_sealed(value):
                out[name] = value
                continue
            blob = base64.b64decode(str(value)[len(PREFIX):])
            try:
                out[name] = box.decrypt(blob[:12], blob[12:], name.encode()).decode("utf-8", "surrogatepass")
            except InvalidTag as exc:
                raise ErasedError(f"record {seq}: field {name} does not open with its data key (edited)") from exc
        return out


MAKE_HINT = "make one with `steward audit keygen --data-key --out PATH` (outside the run folder)"


def write_data_key(path: Path, *, run_dir: Path | None = None) -> Path:
    """A new random KEK in ``path`` (0600; written whole, then linked: never replaces an existing key)."""
    return write_random_key(path, run_dir=run_dir)


def load_cipher(path: Path | None = None, *, run_dir: Path | None = None, create: bool = True) -> RecordCipher | None:
    """The KEK from ``path``, else ``$STEWARD_AUDIT_DATA_KEY`` (base64 text or a path), else
    ``$STEWARD_HOME/audit-data.key`` — made on first use when ``create`` (a service), never by a reader, which
    gets None when there is none."""
    if path is not None:
        if not Path(path).expanduser().is_file():
            raise ConfigError(f"audit_encryption.key: {path} does not exist. Fix: `steward audit keygen --data-key "
                              f"--out {path}`, or leave it unset to use $STEWARD_HOME/audit-data.key")
        return RecordCipher(read_random_key(str(path), where="audit_encryption.key", make_hint=MAKE_HINT,
                                            run_dir=run_dir))
    if os.environ.get(KEY_ENV):
        return RecordCipher(read_random_key(os.environ[KEY_ENV], where=f"${KEY_ENV}", make_hint=MAKE_HINT,
                                            run_dir=run_dir))
    default = steward_home() / "audit-data.key"
    if not default.exists():
        if not create:
            return None
        write_data_key(default, run_dir=run_dir)
    return RecordCipher(read_random_key(str(default), where=str(default), make_hint=MAKE_HINT, run_dir=run_dir))
