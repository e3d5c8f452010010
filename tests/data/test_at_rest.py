"""Encryption at rest of a run's data files (opt-in): the splits and the quarantine are Parquet Modular
Encryption files under a key outside the run folder; a plain Parquet reader cannot open them, no text is
on disk in the clear, and the later stages (train, evaluate) and `steward data quarantine` read them
transparently; a wrong or missing key is a clear error."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from steward.at_rest import is_encrypted, read_parquet, write_parquet
from steward.config import parse_config
from steward.data import run as run_data
from steward.errors import ConfigError


@pytest.fixture
def data_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> bytes:
    key = b"d" * 32
    monkeypatch.setenv("STEWARD_DATA_KEY", base64.b64encode(key).decode())
    return key


def test_a_file_round_trips_and_a_plain_reader_sees_nothing(tmp_path: Path, data_key: bytes,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    frame = pd.DataFrame({"text": ["Jane Doe, card 4111 1111 1111 1111", "hello"], "label": ["billing", "other"]})
    path = tmp_path / "x.parquet"
    write_parquet(frame, path, data_key)
    assert is_encrypted(path) and b"Jane" not in path.read_bytes() and b"billing" not in path.read_bytes()
    pd.testing.assert_frame_equal(read_parquet(path), frame)
    assert list(read_parquet(path, columns=["label"]).columns) == ["label"]
    with pytest.raises(OSError, match="encrypted"):
        pd.read_parquet(path)
    monkeypatch.setenv("STEWARD_DATA_KEY", base64.b64encode(b"w" * 32).decode())
    with pytest.raises(ConfigError, match="encrypted under another data key"):
        read_parquet(path)
    monkeypatch.delenv("STEWARD_DATA_KEY")
    monkeypatch.setenv("STEWARD_HOME", str(tmp_path / "nohome"))
    with pytest.raises(ConfigError, match=r"no data key.*STEWARD_DATA_KEY"):
        read_parquet(path)
    monkeypatch.setenv("STEWARD_DATA_KEY", "not base64 !!")
    with pytest.raises(ConfigError, match=r"\$STEWARD_DATA_KEY: neither a key file nor base64"):
        read_parquet(path)
    plain = tmp_path / "plain.parquet"
    write_parquet(frame, plain, None)
    assert not is_encrypted(plain) and pd.read_parquet(plain).equals(frame)


def test_the_stages_read_an_encrypted_run_transparently(tmp_path: Path, tiny_model: Path, data_key: bytes) -> None:
    from steward.demo import PLANTED_LOSS_LIMITS, generate_support_dataset
    from steward.evaluate import run as run_eval
    from steward.ledger import Ledger
    from steward.train import run as run_train
    from tests.train.conftest import train_cfg

    run_dir = tmp_path / "run"
    generate_support_dataset(tmp_path / "raw.csv", n=300, seed=5)
    run_data(parse_config({"run_dir": str(run_dir), "data": {
        "input": {"path": str(tmp_path / "raw.csv"), "group_columns": ["gender"]},
        "loss": {"max_share_by_reason": PLANTED_LOSS_LIMITS}, "pii": {"ner": False},
        "split": {"validation": 0.15, "test": 0.15}, "encryption": {"enabled": True}}}))
    files = sorted((run_dir / "data").glob("*.parquet"))
    assert {f.name for f in files} == {"train.parquet", "validation.parquet", "test.parquet", "quarantine.parquet"}
    disk = b"".join(f.read_bytes() for f in files)
    assert all(is_encrypted(f) for f in files)
    texts = read_parquet(run_dir / "data" / "train.parquet")["text"].tolist()  # opened with the key
    words = {w for t in texts for w in t.split() if len(w) > 7 and w.isalpha()}
    assert len(words) > 20 and not [w for w in words if w.encode() in disk]  # no word of the text on disk
    labels = set(read_parquet(run_dir / "data" / "train.parquet")["label"])
    assert labels and not [lbl for lbl in labels if lbl.encode() in disk]
    # train and evaluate read the splits through the same key, with nothing configured
    run_train(train_cfg(run_dir, tiny_model, method="full", epochs=1, learning_rate=1e-3))
    card = run_eval(parse_config({"run_dir": str(run_dir), "evaluate": {
        "probes": ["performance"], "gates": {}, "bootstrap": 20, "max_rows": 60}}))
    assert card.scorecard["probes"]["performance"]["figures"]["accuracy"]["value"] is not None
    assert Ledger(run_dir).verify().ok  # the ledger hashes the encrypted files as written
    from steward.cli.app import app

    res = CliRunner().invoke(app, ["data", "quarantine", "--run-dir", str(run_dir), "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["total"] >= 1


def test_keygen_writes_a_key_once(tmp_path: Path) -> None:
    from steward.cli.app import app

    out = tmp_path / "keys" / "data.key"
    res = CliRunner().invoke(app, ["data", "keygen", "--out", str(out), "--json"])
    assert res.exit_code == 0, res.output
    assert len(base64.b64decode(out.read_text().strip())) == 32 and out.stat().st_mode & 0o777 == 0o600
    again = CliRunner().invoke(app, ["data", "keygen", "--out", str(out)])
    assert again.exit_code != 0 and "never overwritten" in again.output
