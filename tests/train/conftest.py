"""Helpers for the train stage tests (the tiny BERT and the prepared data run live in tests/conftest.py)."""

from __future__ import annotations

from pathlib import Path

from steward.config import parse_config


def copy_run(src: Path, dst: Path) -> Path:
    """A private copy of a prepared run (tests write train outputs into it)."""
    import shutil

    shutil.copytree(src, dst, symlinks=True)
    return dst


def train_cfg(run_dir: Path, model: Path | str, **train: object):  # type: ignore[no-untyped-def]
    base = {"model": str(model), "epochs": 2, "batch_size": 16, "max_length": 32, "mlflow": False, "threads": 1}
    base.update(train)
    return parse_config({"run_dir": str(run_dir), "train": base})
