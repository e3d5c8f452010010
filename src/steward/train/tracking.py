"""MLflow tracking to a local store under the run folder (``mlflow ui --backend-store-uri RUN_DIR/mlruns``)."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


class Tracker:
    """A thin MLflow wrapper that is a no-op when disabled; tracking never fails a training run."""

    def __init__(self, run_dir: Path, enabled: bool) -> None:
        self.run_dir = run_dir
        self.enabled = enabled
        self._mlflow: Any = None
        self.run_id: str | None = None

    @contextlib.contextmanager
    def start(self, name: str, params: dict[str, Any]) -> Iterator[Tracker]:
        if not self.enabled:
            yield self
            return
        # mlflow-skinny has no database store; its file store is in maintenance mode and refuses to
        # start unless this is set. A folder store is what a run folder wants (copyable, `mlflow ui`).
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        import mlflow

        self._mlflow = mlflow
        mlflow.set_tracking_uri((self.run_dir / "mlruns").resolve().as_uri())
        mlflow.set_experiment("steward")
        with mlflow.start_run(run_name=name) as run:
            self.run_id = run.info.run_id
            mlflow.log_params({k: str(v)[:500] for k, v in params.items()})
            yield self

    def metrics(self, values: dict[str, float], step: int) -> None:
        if self._mlflow is not None:
            self._mlflow.log_metrics({k: float(v) for k, v in values.items()}, step=step)

    def artifact(self, path: Path) -> None:
        if self._mlflow is not None:
            self._mlflow.log_artifact(str(path))


def flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten(v, key + "."))
        else:
            out[key] = v
    return out
