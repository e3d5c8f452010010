"""Encryption at rest of a run's text-bearing Parquet files (opt-in: ``data.encryption.enabled``).

Parquet Modular Encryption (the Parquet format's own, through pyarrow): each file gets random data keys
(AES-GCM), the footer and every column are encrypted, and the data keys are kept in the file wrapped under a
master key that lives outside the run folder (``$STEWARD_DATA_KEY`` — base64 text or a key file — else
``$STEWARD_HOME/data-at-rest.key``). Any PME reader with the master key can open the files; a copy of the run
folder alone reveals nothing but file sizes. Every stage reads through ``read_parquet`` here, which opens plain
and encrypted files alike, so encryption changes nothing downstream.

The wrapping is what pyarrow asks a KMS client to do; ``LocalKms`` does it with AES-GCM under the master key
(a cloud KMS would plug in the same way).
"""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any

from steward.errors import ConfigError
from steward.keyfile import read_random_key, steward_home, write_random_key

KEY_ENV = "STEWARD_DATA_KEY"
MASTER_ID = "steward-data-v1"
MAKE_HINT = "make one with `steward data keygen --out PATH` (outside the run folder) and set $STEWARD_DATA_KEY to it"
_ENCRYPTED_FOOTER = b"PARE"  # a Parquet file with an encrypted footer ends in these magic bytes (PAR1 if plain)


def default_key_path() -> Path:
    return steward_home() / "data-at-rest.key"


def master_key(*, run_dir: Path | None = None, create: bool = False) -> bytes | None:
    """The master key: ``$STEWARD_DATA_KEY`` (base64 text or a key file), else ``$STEWARD_HOME/data-at-rest.key``
    (made when ``create``: the data stage with encryption on; a reader never makes one). One place for every
    stage and service, so a run written under a key is read under the same one."""
    if os.environ.get(KEY_ENV):
        return read_random_key(os.environ[KEY_ENV], where=f"${KEY_ENV}", make_hint=MAKE_HINT, run_dir=run_dir)
    default = default_key_path()
    if not default.exists():
        if not create:
            return None
        write_random_key(default, run_dir=run_dir)
    return read_random_key(str(default), where=str(default), make_hint=MAKE_HINT, run_dir=run_dir)


def _factory(key: bytes) -> Any:
    import pyarrow.parquet.encryption as pe
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    class LocalKms(pe.KmsClient):
        """Wraps pyarrow's data keys under the master key (AES-GCM, the key id as associated data)."""

        def __init__(self, _config: Any) -> None:
            super().__init__()
            self._box = AESGCM(key)

        def wrap_key(self, key_bytes: bytes, master_key_identifier: str) -> bytes:
            nonce = os.urandom(12)
            return base64.b64encode(nonce + self._box.encrypt(nonce, key_bytes, master_key_identifier.encode()))

        def unwrap_key(self, wrapped_key: bytes, master_key_identifier: str) -> bytes:
            raw = base64.b64decode(wrapped_key)
            try:
                return self._box.decrypt(raw[:12], raw[12:], master_key_identifier.encode())
            except InvalidTag as exc:
                raise ConfigError(f"this file was encrypted under another data key. Fix: set ${KEY_ENV} to the "
                                  "key the data stage used") from exc

    return pe.CryptoFactory(lambda config: LocalKms(config)), pe.KmsConnectionConfig()


def is_encrypted(path: Path) -> bool:
    with open(path, "rb") as fh:
        fh.seek(-4, os.SEEK_END)
        return fh.read(4) == _ENCRYPTED_FOOTER


def write_parquet(frame: Any, path: Path, key: bytes | None) -> None:
    """``frame`` (pandas) to ``path``: plain Parquet when ``key`` is None, else every column and the footer
    encrypted under fresh data keys wrapped by ``key``."""
    if key is None:
        frame.to_parquet(path, index=False)
        return
    import pyarrow as pa
    import pyarrow.parquet as pq
    import pyarrow.parquet.encryption as pe

    table = pa.Table.from_pandas(frame, preserve_index=False)
    factory, kms = _factory(key)
    config = pe.EncryptionConfiguration(footer_key=MASTER_ID, uniform_encryption=True, plaintext_footer=False,
                                        double_wrapping=False)
    props = factory.file_encryption_properties(kms, config)
    with pq.ParquetWriter(str(path), table.schema, encryption_properties=props) as writer:
        writer.write_table(table)


def read_parquet(path: str | os.PathLike[str], columns: list[str] | None = None) -> Any:
    """A Parquet file as a pandas frame, plain or encrypted (opened with the master key from ``$STEWARD_DATA_KEY``
    or ``$STEWARD_HOME/data-at-rest.key``)."""
    import pandas as pd

    path = Path(path)
    if not is_encrypted(path):
        return pd.read_parquet(path, columns=columns)
    import pyarrow.parquet as pq

    key = master_key()
    if key is None:
        raise ConfigError(f"{path} is encrypted at rest and this machine has no data key. Fix: set ${KEY_ENV} to "
                          f"the key the data stage used (or copy it to {default_key_path()})")
    factory, kms = _factory(key)
    props = factory.file_decryption_properties(kms)
    try:
        return pq.ParquetFile(str(path), decryption_properties=props).read(columns=columns).to_pandas()
    except OSError as exc:  # pyarrow reports a failed unwrap as an IOError with the KMS client's message
        raise ConfigError(f"{path}: cannot be decrypted with this machine's data key ({exc}). Fix: set "
                          f"${KEY_ENV} to the key the data stage used") from exc
