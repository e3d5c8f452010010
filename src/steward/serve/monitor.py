"""Drift: the live window against the evaluation set.

- input lengths, predicted-label mix and confidence histogram as population stability indices (PSI);
- the model's own embeddings of the texts (mean-pooled last hidden state) by a kernel two-sample test:
  maximum mean discrepancy with a Gaussian kernel (bandwidth by the median heuristic) and a permutation
  p-value (Gretton et al. 2012), the test alibi-detect's MMDDrift runs. Written here in numpy (some 25
  lines) rather than adding alibi-detect and its dependency tree for one function.

Crossing a threshold logs one alert line (and another when it recovers); ``GET /v1/monitor`` and the
background check show the figures."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import deque
from pathlib import Path
from typing import Any

import numpy as np

from steward.at_rest import read_parquet
from steward.records import Scorecard
from steward.serve.config import DriftSettings
from steward.service.worker import BackgroundTask

log = logging.getLogger("steward.serve.drift")
EPS = 1e-4


def mmd_test(reference: np.ndarray, live: np.ndarray, permutations: int, seed: int = 0) -> tuple[float, float]:
    """(MMD², permutation p-value) of two samples of embeddings; p is small when they differ.

    All permutations are scored by one matrix product (kernel × masks), so a check of 500 + 500 rows with 200
    permutations costs tens of milliseconds in BLAS, outside the GIL.
    """
    x = np.concatenate([reference, live]).astype(np.float64)
    sq = (x * x).sum(1)
    d2 = np.maximum(sq[:, None] + sq[None, :] - 2.0 * x @ x.T, 0.0)
    bandwidth = float(np.median(d2[np.triu_indices(len(x), k=1)])) or 1.0
    k = np.exp(-d2 / bandwidth)  # diagonal is 1
    n, m = len(reference), len(live)
    first = np.zeros((len(x), permutations + 1))
    first[:n, 0] = 1.0  # column 0: the observed split; the others: random relabellings
    rng = np.random.default_rng(seed)
    for j in range(1, permutations + 1):
        first[rng.permutation(len(x))[:n], j] = 1.0
    km = k @ first
    total, rows = k.sum(), k.sum(1)
    s_aa = (first * km).sum(0)  # sum of kernel values within the first sample, per split
    s_ab = first.T @ rows - s_aa
    s_bb = total - s_aa - 2.0 * s_ab
    stat = (s_aa - n) / (n * (n - 1)) + (s_bb - m) / (m * (m - 1)) - 2.0 * s_ab / (n * m)
    observed, null = float(stat[0]), stat[1:]
    return observed, float((1 + (null >= observed).sum()) / (1 + permutations))


def psi(expected: np.ndarray, actual: np.ndarray) -> float:
    """Population stability index of two distributions over the same bins (smoothed so empty bins are finite)."""
    e = np.asarray(expected, float) + EPS
    a = np.asarray(actual, float) + EPS
    e, a = e / e.sum(), a / a.sum()
    return float(np.sum((a - e) * np.log(a / e)))


class DriftMonitor:
    def __init__(self, cfg: DriftSettings, labels: list[str], scorecard: Scorecard | None,
                 reference_lengths: list[int] | None = None, reference_embeddings: np.ndarray | None = None) -> None:
        self.cfg, self.labels = cfg, labels
        self.window: deque[tuple[int, float, int]] = deque(maxlen=cfg.window)
        self.embeddings: deque[np.ndarray] = deque(maxlen=cfg.window)
        self.reference_embeddings = reference_embeddings if cfg.embedding else None
        self.lock = threading.Lock()
        self.check_lock = threading.Lock()
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

    def _reference(self, sc: Scorecard | None) -> dict[str, Any] | None:
        perf = sc.probe_details("performance") if sc is not None else {}
        cal = sc.probe_details("calibration") if sc is not None else {}
        if not perf.get("confusion_matrix") or not cal.get("bins"):
            return None
        cm = np.asarray(perf["confusion_matrix"], float)
        return {"labels": cm.sum(0), "edges": [b["lower"] for b in cal["bins"]] + [1.0],
                "confidence": np.asarray([b["n"] for b in cal["bins"]], float)}

    def observe(self, label_index: int, confidence: float, words: int = 0,
                embedding: np.ndarray | None = None) -> None:
        with self.lock:
            self.window.append((label_index, confidence, words))
            if embedding is not None:
                self.embeddings.append(embedding)

    def status(self) -> dict[str, Any]:
        """The drift figures now; logs an alert line for each signal that crossed its threshold since the last
        check (and a recovery line for each that came back). Safe to call from several threads."""
        with self.check_lock:
            return self._status()

    def _status(self) -> dict[str, Any]:
        with self.lock:
            items = list(self.window)
            embeddings = list(self.embeddings)
        out: dict[str, Any] = {"window": len(items), "window_size": self.cfg.window, "threshold": self.cfg.psi_threshold}
        if self.reference is None:
            return {**out, "enabled": False, "reason": "no evaluation scorecard to compare with (run steward evaluate)"}
        if len(items) < self.cfg.min_samples:
            return {**out, "enabled": True, "ready": False,
                    "reason": f"waiting for {self.cfg.min_samples} requests (have {len(items)})",
                    "embedding": self._embedding_state(len(embeddings))}
        labels = np.bincount([i for i, _, _ in items], minlength=len(self.labels))
        conf, _ = np.histogram([c for _, c, _ in items], bins=self.reference["edges"])
        values = {"label_psi": psi(self.reference["labels"], labels),
                  "confidence_psi": psi(self.reference["confidence"], conf)}
        if self.length_edges is not None:
            lengths, _ = np.histogram([w for _, _, w in items], bins=self.length_edges)
            values["input_length_psi"] = psi(self.length_ref, lengths)
        alerts = sorted(k for k, v in values.items() if v >= self.cfg.psi_threshold)
        embedding: dict[str, Any] | None = None
        if self.reference_embeddings is not None and len(embeddings) >= self.cfg.min_samples:
            mmd2, p = mmd_test(self.reference_embeddings, np.stack(embeddings), self.cfg.permutations)
            ref_c, live_c = self.reference_embeddings.mean(0), np.stack(embeddings).mean(0)
            cos = 1.0 - float(ref_c @ live_c / (np.linalg.norm(ref_c) * np.linalg.norm(live_c) + 1e-12))
            embedding = {"mmd2": round(mmd2, 6), "p_value": round(p, 4), "centroid_cosine_distance": round(cos, 5),
                         "reference_rows": len(self.reference_embeddings), "threshold_p": self.cfg.embedding_p_value}
            values["embedding_p_value"] = p
            if p < self.cfg.embedding_p_value:
                alerts.append("embedding_mmd")
        for k in sorted(set(alerts) - self.alerting):
            if k == "embedding_mmd":
                log.warning("drift alert: embedding MMD p = %.4f < %.4f over the last %d requests",
                            values["embedding_p_value"], self.cfg.embedding_p_value, len(embeddings))
            else:
                log.warning("drift alert: %s = %.3f >= %.3f over the last %d requests", k, values[k],
                            self.cfg.psi_threshold, len(items))
        for k in sorted(self.alerting - set(alerts)):
            log.warning("drift recovered: %s", k)
        self.alerting = set(alerts)
        live = {lbl: int(n) for lbl, n in zip(self.labels, labels, strict=True)}
        values.pop("embedding_p_value", None)
        return {**out, "enabled": True, "ready": True, **{k: round(v, 4) for k, v in values.items()},
                "embedding": embedding or self._embedding_state(len(embeddings)), "alerts": sorted(alerts),
                "live_label_counts": live}

    def _embedding_state(self, have: int) -> dict[str, Any]:
        if not self.cfg.embedding:
            return {"enabled": False, "reason": "drift.embedding is off"}
        if self.reference_embeddings is None:
            return {"enabled": False, "reason": "no evaluation split to embed as the reference"}
        return {"enabled": True, "ready": False, "reason": f"waiting for {self.cfg.min_samples} embeddings (have {have})"}


def reference_texts(run_dir: Path) -> list[str] | None:
    """The held-out texts the evaluate stage scored (its split): the reference for input drift."""

    sc = run_dir / "evaluate" / "scorecard.json"
    split = Scorecard.read(sc).split if sc.is_file() else "test"
    path = run_dir / "data" / f"{split}.parquet"
    if not path.is_file():
        return None
    texts = [str(t) for t in read_parquet(path, columns=["text"])["text"]]
    return texts or None


def reference_embeddings(run_dir: Path, served: Any, texts: list[str], cfg: DriftSettings) -> np.ndarray:
    """Embeddings of up to ``cfg.reference_rows`` reference texts (a seeded sample), cached per model and
    sample in RUN_DIR/serve so a restart does not pay for them again."""
    from steward.hashing import digest

    rng = np.random.default_rng(0)
    idx = np.sort(rng.choice(len(texts), size=min(cfg.reference_rows, len(texts)), replace=False))
    sample = [texts[i] for i in idx]
    key = digest({"model": served.hash, "texts": sample})[:16]
    cache = run_dir / "serve" / f"drift_reference_{key}.npy"
    if cache.is_file():
        return np.load(cache)
    _, emb = served.clf.predict_with_embeddings(sample)
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_suffix(".tmp.npy")
    np.save(tmp, emb)
    tmp.replace(cache)
    return emb


class DriftChecker(BackgroundTask):
    """Runs the drift check every ``seconds`` in a worker thread, so alerts are logged and the Prometheus
    gauges are fresh even when nobody calls ``GET /v1/monitor``."""

    def __init__(self, monitor: DriftMonitor, metrics: Any, seconds: float) -> None:
        self.monitor, self.metrics, self.seconds = monitor, metrics, seconds
        self.checks = 0

    def start(self) -> None:
        if self.seconds > 0:
            super().start()

    async def _run(self) -> None:
        from steward.serve.metrics import publish_drift

        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self.seconds)
            try:
                status = await loop.run_in_executor(None, self.monitor.status)
            except Exception:
                log.exception("drift check failed")
                continue
            publish_drift(self.metrics, status)
            self.checks += 1
