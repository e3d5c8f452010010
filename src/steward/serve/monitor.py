"""Drift: the live window's input lengths, predicted-label mix and confidence histogram against the
evaluation set's, as population stability indices (PSI). Crossing ``psi_threshold`` logs one alert line (and another when
it recovers); ``GET /v1/monitor`` shows the figures."""

from __future__ import annotations

import logging
import threading
from collections import deque
from typing import Any

import numpy as np

from steward.config.models import DriftSettings

log = logging.getLogger("steward.serve.drift")
EPS = 1e-4


def psi(expected: np.ndarray, actual: np.ndarray) -> float:
    """Population stability index of two distributions over the same bins (smoothed so empty bins are finite)."""
    e = np.asarray(expected, float) + EPS
    a = np.asarray(actual, float) + EPS
    e, a = e / e.sum(), a / a.sum()
    return float(np.sum((a - e) * np.log(a / e)))


class DriftMonitor:
    def __init__(self, cfg: DriftSettings, labels: list[str], scorecard: dict[str, Any] | None,
                 reference_lengths: list[int] | None = None) -> None:
        self.cfg, self.labels = cfg, labels
        self.window: deque[tuple[int, float, int]] = deque(maxlen=cfg.window)
        self.lock = threading.Lock()
        self.alerting: set[str] = set()
        self.reference = self._reference(scorecard)
        self.length_edges: np.ndarray | None = None
        if reference_lengths:
            # Decile edges of the evaluation texts' word counts: each bin holds ~10 % of the reference.
            edges = np.unique(np.quantile(reference_lengths, np.linspace(0, 1, 11)))
            if len(edges) >= 3:
                edges[0], edges[-1] = -np.inf, np.inf
                self.length_edges = edges
                self.length_ref = np.histogram(reference_lengths, bins=edges)[0].astype(float)

    def _reference(self, sc: dict[str, Any] | None) -> dict[str, Any] | None:
        probes = (sc or {}).get("probes") or {}
        perf = (probes.get("performance") or {}).get("details") or {}
        cal = (probes.get("calibration") or {}).get("details") or {}
        if not perf.get("confusion_matrix") or not cal.get("bins"):
            return None
        cm = np.asarray(perf["confusion_matrix"], float)
        return {"labels": cm.sum(0), "edges": [b["lower"] for b in cal["bins"]] + [1.0],
                "confidence": np.asarray([b["n"] for b in cal["bins"]], float)}

    def observe(self, label_index: int, confidence: float, words: int = 0) -> None:
        with self.lock:
            self.window.append((label_index, confidence, words))

    def status(self) -> dict[str, Any]:
        with self.lock:
            items = list(self.window)
        out: dict[str, Any] = {"window": len(items), "window_size": self.cfg.window, "threshold": self.cfg.psi_threshold}
        if self.reference is None:
            return {**out, "enabled": False, "reason": "no evaluation scorecard to compare with (run steward evaluate)"}
        if len(items) < self.cfg.min_samples:
            return {**out, "enabled": True, "ready": False,
                    "reason": f"waiting for {self.cfg.min_samples} requests (have {len(items)})"}
        labels = np.bincount([i for i, _, _ in items], minlength=len(self.labels))
        conf, _ = np.histogram([c for _, c, _ in items], bins=self.reference["edges"])
        values = {"label_psi": psi(self.reference["labels"], labels),
                  "confidence_psi": psi(self.reference["confidence"], conf)}
        if self.length_edges is not None:
            lengths, _ = np.histogram([w for _, _, w in items], bins=self.length_edges)
            values["input_length_psi"] = psi(self.length_ref, lengths)
        alerts = sorted(k for k, v in values.items() if v >= self.cfg.psi_threshold)
        for k in set(alerts) - self.alerting:
            log.warning("drift alert: %s = %.3f >= %.3f over the last %d requests", k, values[k],
                        self.cfg.psi_threshold, len(items))
        for k in self.alerting - set(alerts):
            log.warning("drift recovered: %s = %.3f < %.3f", k, values[k], self.cfg.psi_threshold)
        self.alerting = set(alerts)
        live = {lbl: int(n) for lbl, n in zip(self.labels, labels, strict=True)}
        return {**out, "enabled": True, "ready": True, **{k: round(v, 4) for k, v in values.items()},
                "alerts": alerts, "live_label_counts": live}
