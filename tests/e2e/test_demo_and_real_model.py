"""The real default model (all-MiniLM-L6-v2 from PyPI) end to end: `steward demo` trains and verifies."""

import json
import os
import subprocess
import sys
from pathlib import Path


def test_demo_trains_the_real_model(tmp_path: Path) -> None:
    env = {**os.environ, "TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS": "", "HF_HUB_OFFLINE": "1"}
    r = subprocess.run([sys.executable, "-m", "steward.cli.app", "demo", "--run-dir", str(tmp_path / "demo"),
                        "--rows", "800", "--json"], capture_output=True, text=True, env=env, timeout=1200)
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads(r.stdout)
    m = out["train"]
    assert m["base_model"]["id"] == "sentence-transformers/all-MiniLM-L6-v2" and m["method"] == "lora"
    assert len(m["labels"]) == 8
    # 8 intents from ~600 messages in 2 epochs: far above the 1/8 chance level
    assert m["best_metric"]["value"] > 0.5, m["history"]
    assert out["ledger"]["ok"] and out["ledger"]["events"] == 2
    assert (tmp_path / "demo" / "train" / "model" / "model.safetensors").is_file()
