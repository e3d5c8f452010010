"""The same loop under `accelerate launch` with two CPU processes (DDP over gloo)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

from steward.ledger import verify
from tests.train.conftest import copy_run


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_process_ddp_training(demo_data_run: Path, tiny_model: Path, tmp_path: Path) -> None:
    run_dir = copy_run(demo_data_run, tmp_path / "run")
    # --multi_gpu selects accelerate's torchrun launcher; with no GPU the processes run DDP on CPU (gloo).
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
           "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", str(_free_port()),
           "-m", "steward.cli.app", "train", "--run-dir", str(run_dir), "--model", str(tiny_model),
           "--method", "full", "--epochs", "1", "--batch-size", "16", "--no-mlflow", "--json"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    start = r.stdout.index("{")
    manifest = json.loads(r.stdout[start:])  # printed once, by rank 0
    train_rows = manifest["train_rows"]
    batches = -(-train_rows // 16)
    # two processes share each epoch's batches: each takes about half the steps of a single process
    assert manifest["global_steps"] in (batches // 2, -(-batches // 2))
    assert (run_dir / "train" / "model" / "model.safetensors").is_file()
    assert verify(run_dir).ok
