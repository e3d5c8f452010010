"""The same loop under `accelerate launch` with two CPU processes (DDP over gloo)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd

from steward.ledger import verify
from tests.train.conftest import copy_run


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _launch(run_dir: Path, model: Path, *args: str) -> dict[str, Any]:
    """`accelerate launch` of `steward train` in two processes; the manifest rank 0 prints."""
    # --multi_gpu selects accelerate's torchrun launcher; with no GPU the processes run DDP on CPU (gloo).
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
           "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", str(_free_port()),
           "-m", "steward.cli.app", "train", "--run-dir", str(run_dir), "--model", str(model), *args,
           "--no-mlflow", "--json"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(r.stdout[r.stdout.index("{"):])  # printed once, by rank 0


def test_two_process_ddp_training(demo_data_run: Path, tiny_model: Path, tmp_path: Path) -> None:
    run_dir = copy_run(demo_data_run, tmp_path / "run")
    manifest = _launch(run_dir, tiny_model, "--method", "full", "--epochs", "1", "--batch-size", "16")
    train_rows = manifest["train_rows"]
    batches = -(-train_rows // 16)
    # two processes share each epoch's batches: each takes about half the steps of a single process
    assert manifest["global_steps"] in (batches // 2, -(-batches // 2))
    assert (run_dir / "train" / "model" / "model.safetensors").is_file()
    assert verify(run_dir).ok


def test_two_process_ddp_chat_fine_tuning(chat_data_run: Path, tiny_chat_dir: Path, tmp_path: Path) -> None:
    """A causal LM under `accelerate launch`: the same loop, answer-only loss, every process's tokens counted."""
    from transformers import AutoTokenizer

    from steward.inference import check_weights
    from steward.train.chat import encode_chat

    run_dir = copy_run(chat_data_run, tmp_path / "run")
    manifest = _launch(run_dir, tiny_chat_dir, "--method", "lora", "--epochs", "2", "--batch-size", "8",
                       "--learning-rate", "0.005")
    assert manifest["task"] == "chat" and manifest["method"] == "lora" and manifest["epochs_run"] == 2
    batches = -(-manifest["train_rows"] // 8)
    assert manifest["global_steps"] in (2 * (batches // 2), 2 * -(-batches // 2))
    losses = [h["loss"] for h in manifest["history"]]
    assert len(losses) == 2 and losses[1] < losses[0]  # it learns: the validation answer loss falls
    # tokens/s counts both processes' batches: about the split's tokens per epoch over the run's seconds
    tok = AutoTokenizer.from_pretrained(tiny_chat_dir)
    frame = pd.read_parquet(run_dir / "data" / "train.parquet")
    tokens = sum(len(encode_chat(tok, json.loads(m)).input_ids) for m in frame["messages"]) * 2
    measured = manifest["tokens_per_second"] * manifest["seconds"]
    assert 0.9 * tokens <= measured <= 1.25 * tokens, (measured, tokens)  # accelerate pads the last batch pair
    out = run_dir / "train"
    assert (out / "adapter" / "adapter_model.safetensors").is_file()
    assert check_weights(out / "model", manifest["model_weights_sha256"]) == manifest["model_weights_sha256"]
    assert verify(run_dir).ok
