"""`steward gateway --run-dir DIR` serves the model the run fine-tuned: hash-checked against its train manifest
at start-up, named with its training facts in /v1/models, and in every audit record by its hash — so the ledger
(data -> model) and the audit log (model -> answer) prove together which data produced each answer."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import openai
import pytest
from safetensors.torch import load_file, save_file

from steward.config import parse_config
from steward.errors import ConfigError, LedgerIntegrityError
from steward.gateway.backends import BACKENDS
from steward.hashing import digest
from steward.ledger import verify
from steward.records import TrainManifest
from steward.service.audit import AuditLog, database_url
from steward.service.keys import KeyStore
from steward.service.loopback import wait_ready
from tests.serve.conftest import _free_port
from tests.train.conftest import copy_run


def test_the_gateway_command_serves_the_runs_own_model_and_audits_its_hash(trained_chat_run: Path,
                                                                           tmp_path: Path) -> None:
    from steward.service.guards.detector import ensure

    ensure()  # the default guards load the built-in detector: build it first, not inside the readiness wait
    run_dir = copy_run(trained_chat_run, tmp_path / "run")
    manifest = TrainManifest.read(run_dir / "train" / "manifest.json")
    log = AuditLog(database_url(None, run_dir))
    key = KeyStore(log.engine).create("chat", "run-model test")[1]
    port = _free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS": ""}
    proc = subprocess.Popen([sys.executable, "-m", "steward.cli.app", "gateway", "--run-dir", str(run_dir),
                             "--port", str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        assert wait_ready(url, 240, lambda: proc.poll() is None), proc.stderr.read().decode()[-3000:] \
            if proc.poll() is not None and proc.stderr else "not ready"
        client = openai.OpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0)
        (listed,) = client.models.list().data
        facts = listed.model_extra["steward"]
        served_hash = digest(manifest.model_weights_sha256)
        assert facts["backend"] == "auto" and facts["model_hash"] == served_hash
        model = facts["model"]
        assert model["source"] == "run" and model["method"] == "lora"
        assert model["base_model"] == manifest.base_model["id"]
        assert model["data_sha256"] == {k: v["sha256"] for k, v in manifest.data_inputs.items()}
        assert model["train_manifest"]["path"] == "train/manifest.json"
        assert listed.id.endswith(f"-lora-{served_hash[:8]}")
        answer = client.chat.completions.create(model=listed.id, max_tokens=4,
                                                messages=[{"role": "user", "content": "Where is my parcel?"}])
        assert answer.choices[0].finish_reason in ("stop", "length")
    finally:
        proc.terminate()
        proc.wait(30)
    (rec,) = [r for r in log.records() if r["kind"] == "chat"]
    # the chain: the answer's record names the model's hash; the train manifest gives the same hash for its
    # weights and the data splits they were trained on; the ledger holds both, unbroken
    assert rec["model_hash"] == digest(manifest.model_weights_sha256)
    assert log.verify().ok and verify(run_dir).ok
    log.close()


def test_a_changed_weight_file_stops_the_gateway_at_start_up(trained_chat_run: Path, tmp_path: Path) -> None:
    run_dir = copy_run(trained_chat_run, tmp_path / "run")
    weights = run_dir / "train" / "model" / "model.safetensors"
    tensors = load_file(weights)
    name = next(iter(tensors))
    tensors[name] = tensors[name] + 0.01
    save_file(tensors, str(weights), metadata={"format": "pt"})
    gcfg = parse_config({"run_dir": str(run_dir)}).gateway
    for backend in ("auto", "run"):  # the signed ledger's record of train/model refuses it first
        with pytest.raises(LedgerIntegrityError, match=r"train/model differs from what ledger event \d+ \(train\)"):
            BACKENDS.create(backend, gcfg, run_dir=run_dir)
    # an unsigned ledger allowed (unsigned_ledger: allow), its hash chain still holds train/model to its record
    (run_dir / "ledger.checkpoints.jsonl").unlink()
    lax = parse_config({"run_dir": str(run_dir), "gateway": {"transparency": {"unsigned_ledger": "allow"}}}).gateway
    with pytest.raises(LedgerIntegrityError, match="train/model differs"):
        BACKENDS.create("run", lax, run_dir=run_dir)


def test_backend_run_without_a_chat_model_says_what_to_do(demo_data_run: Path, tmp_path: Path) -> None:
    gcfg = parse_config({"run_dir": str(tmp_path)}).gateway
    with pytest.raises(ConfigError, match=r"gateway.backend: 'run' .* holds none.*input.task: chat"):
        BACKENDS.create("run", gcfg, run_dir=tmp_path)
