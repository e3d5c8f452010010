"""Sites for the federation tests: the demo's generated support messages dealt out to several sites' own CSV
files, and a federation config over them (the tiny BERT from tests/conftest.py, regex-only PII)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from steward.config import parse_federation


@pytest.fixture(scope="session")
def site_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Three sites' input files (every third line of one generated file each) and the label set they share."""
    from steward.demo import generate_support_dataset

    root = tmp_path_factory.mktemp("sites")
    generate_support_dataset(root / "raw.csv", n=600, seed=3)
    lines = (root / "raw.csv").read_text(encoding="utf-8").splitlines(keepends=True)
    files = []
    for i in range(3):
        path = root / f"site{i}.csv"
        path.write_text(lines[0] + "".join(lines[1 + i::3]), encoding="utf-8")
        files.append(path)
    labels = sorted(str(x) for x in pd.read_csv(root / "raw.csv", on_bad_lines="skip")["label"].dropna().unique())
    return {"root": root, "files": files, "labels": labels}


def federation(run_dir: Path, sites: list[dict[str, Any]], model: Path, labels: list[str],
               **federated: Any):  # type: ignore[no-untyped-def]
    from steward.demo import PLANTED_LOSS_LIMITS

    return parse_federation({
        "run_dir": str(run_dir),
        "data": {"loss": {"max_share_by_reason": PLANTED_LOSS_LIMITS}, "pii": {"ner": False},
                 "split": {"validation": 0.15, "test": 0.15}},
        "federated": {"sites": sites, "rounds": 2, **federated},
        "train": {"model": str(model), "labels": labels, "batch_size": 16, "max_length": 32, "mlflow": False}})


def site(name: str, path: Path, **data: Any) -> dict[str, Any]:
    return {"name": name, "data": {"input": {"path": str(path), "group_columns": ["gender"]}, **data}}
