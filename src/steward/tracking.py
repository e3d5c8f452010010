"""MLflow tracking to a local store under the run folder (``mlflow ui --backend-store-uri RUN_DIR/mlruns``).

The train stage opens the run; the evaluate stage logs its scorecard to that same run, so one MLflow run
holds a model's training curve and its responsibility figures side by side.
"""

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

    @contextlib.contextmanager
    def resume(self, run_id: str | None) -> Iterator[Tracker]:
        """Log into an existing run (the one training opened); a no-op if there is none or MLflow fails."""
        store = self.run_dir / "mlruns"
        if not self.enabled or not run_id or not store.is_dir():
            yield self
            return
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        try:
            import mlflow

            mlflow.set_tracking_uri(store.resolve().as_uri())
            active = mlflow.start_run(run_id=run_id)
        except Exception as exc:  # noqa: BLE001 — tracking never fails a stage; say why and go on
            log.warning("MLflow: could not reopen run %s (%s); evaluate metrics not tracked", run_id, exc)
            yield self
            return
        self._mlflow, self.run_id = mlflow, run_id
        with active:
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
