"""Signed checkpoints: a verifier holding only the public key catches any change to a signed tree head."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from steward.errors import ConfigError, LedgerIntegrityError
from steward.ledger import checkpoint as ck
from steward.ledger import merkle


def _signed(signer: ck.Ed25519Signer, size: int = 5) -> ck.Checkpoint:
    tree = merkle.MemoryNodes([merkle.leaf_hash(bytes([i])) for i in range(size)])
    return ck.sign_checkpoint(signer, "steward/audit/test", size, merkle.root(tree, size), "2026-12-03T12:00:00Z")


def test_a_checkpoint_round_trips_and_verifies_with_the_public_key_only() -> None:
    signer = ck.Ed25519Signer.generate()
    cp = ck.Checkpoint.from_dict(__import__("json").loads(_signed(signer).to_json()))
    published = ck.public_key_text(signer.public_key)
    ck.verify_checkpoint(cp, ck.parse_public_key(published), origin="steward/audit/test")
    assert cp.body.decode().splitlines()[:2] == ["steward/audit/test", "5"]  # C2SP tlog-checkpoint body


@pytest.mark.parametrize("field,value", [("size", 4), ("root", bytes(32)), ("time", "2026-12-04T12:00:00Z"),
                                         ("origin", "steward/audit/other")])
def test_any_edit_of_a_signed_head_fails(field: str, value: object) -> None:
    signer = ck.Ed25519Signer.generate()
    cp = _signed(signer)
    forged = ck.Checkpoint(**{**cp.__dict__, field: value})
    with pytest.raises(LedgerIntegrityError, match="bad signature"):
        ck.verify_checkpoint(forged, signer.public_key)


def test_another_key_is_named() -> None:
    cp = _signed(ck.Ed25519Signer.generate())
    with pytest.raises(LedgerIntegrityError, match="signed by key"):
        ck.verify_checkpoint(cp, ck.Ed25519Signer.generate().public_key)


def test_key_file_is_private_and_never_inside_the_run_folder(tmp_path: Path) -> None:
    signer = ck.Ed25519Signer.generate()
    run = tmp_path / "run"
    run.mkdir()
    with pytest.raises(ConfigError, match="inside the run folder"):
        ck.write_key(signer, run / "audit" / "key.pem", run_dir=run)
    path = ck.write_key(signer, tmp_path / "keys" / "signing.pem", run_dir=run)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert ck.load_signer(path, run_dir=run).public_key == signer.public_key
    with pytest.raises(ConfigError, match="already exists"):
        ck.write_key(signer, path)


def test_key_from_the_environment_and_clear_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    signer = ck.Ed25519Signer.generate()
    monkeypatch.setenv(ck.KEY_ENV, signer.private_pem().decode())
    assert ck.load_signer().public_key == signer.public_key
    monkeypatch.delenv(ck.KEY_ENV)
    with pytest.raises(ConfigError, match="steward audit keygen"):
        ck.load_signer()
    bad = tmp_path / "bad.pem"
    bad.write_text("not a key")
    with pytest.raises(ConfigError, match="not a PEM private key"):
        ck.load_signer(bad)
    with pytest.raises(ConfigError, match="cannot be read"):
        ck.load_signer(tmp_path / "missing.pem")
    with pytest.raises(ConfigError, match="not an Ed25519 key"):
        ck.parse_public_key("AAAA")
