"""The federation's record: each round's aggregate as a file and an event in the federation's ledger (which
sites took part, the hash of each update, the aggregate's hash, who was left out and why), and each round's
scores on every site's own held-out split (the worst site and the spread beside the weighted mean)."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from steward.config_base import config_digest
from steward.federated.config import FederationRun
from steward.federated.params import update_hash
from steward.federated.privacy import privacy_record
from steward.ledger.store import Ledger, artifact, now_iso

ROUND_STAGE = "federated_round"
ROUNDS_DIR = "federated/rounds"


@dataclass
class RoundRecord:
    round: int
    aggregated: bool
    sites: list[str]
    update_sha256: dict[str, str]
    rows: dict[str, int]
    left_out: dict[str, str]
    aggregate_sha256: str | None = None
    bytes_per_site: int = 0
    seconds: float = 0.0  # since the previous round's aggregation (the run's start for the first)
    scores: dict[str, dict[str, float]] = field(default_factory=dict)
    score_errors: dict[str, str] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """The weighted mean, the worst site and the spread of the global model's accuracy across sites."""
        acc = {s: v["accuracy"] for s, v in self.scores.items() if "accuracy" in v}
        if not acc:
            return {}
        rows = {s: self.scores[s]["rows"] for s in acc}
        worst = min(acc, key=lambda s: acc[s])
        return {"accuracy_weighted": round(sum(acc[s] * rows[s] for s in acc) / max(1, sum(rows.values())), 6),
                "accuracy_worst_site": worst, "accuracy_worst": round(acc[worst], 6),
                "accuracy_spread": round(max(acc.values()) - min(acc.values()), 6)}

    def to_dict(self) -> dict[str, Any]:
        return {"round": self.round, "aggregated": self.aggregated, "sites": self.sites,
                "update_sha256": self.update_sha256, "rows": self.rows, "left_out": self.left_out,
                "aggregate_sha256": self.aggregate_sha256, "bytes_per_site": self.bytes_per_site,
                "seconds": self.seconds,
                "scores": self.scores, "score_errors": self.score_errors, **self.summary()}


class Recorder:
    """Called by the strategy (in the ServerApp's thread) after each aggregation and each evaluation."""

    def __init__(self, cfg: FederationRun, run_token: str) -> None:
        self.cfg, self.run_token = cfg, run_token
        self.run_dir = Path(cfg.run_dir)
        self.rounds: dict[int, RoundRecord] = {}
        self.latest: list[np.ndarray] | None = None
        self.cards: dict[str, str] = {}  # site -> the sha256 of its data card, as it reported it
        self._clock = time.perf_counter()
        self._lock = threading.Lock()

    def round(self, server_round: int, aggregate: list[np.ndarray] | None, kept: list[Any],
              left_out: dict[str, str], *, secure: bool = False) -> None:
        """One round's aggregation (``aggregate`` None: too few sites, the global model stays as it was).
        Under secure aggregation the server never holds one site's update: each is named by the hash the
        site reports (and records in its own ledger)."""
        started = now_iso()
        hashes = {site: (str(res.metrics.get("update_sha256", "")) if secure else update_hash(arrays))
                  for _, res, site, arrays in kept}
        rec = RoundRecord(server_round, aggregate is not None, sorted(site for *_, site, _ in kept),
                          dict(sorted(hashes.items())),
                          {site: int(res.metrics.get("rows", res.num_examples)) for _, res, site, _ in kept},
                          dict(sorted(left_out.items())),
                          bytes_per_site=4 * sum(int(a.size) for a in kept[0][3]) if kept else 0,  # as float32
                          seconds=round(time.perf_counter() - self._clock, 3))
        self._clock = time.perf_counter()
        for _, res, site, _ in kept:
            if res.metrics.get("data_card_sha256"):
                self.cards[site] = str(res.metrics["data_card_sha256"])
        outputs = []
        if aggregate is not None:
            rec.aggregate_sha256 = update_hash(aggregate)
            path = self.rounds_dir / f"round-{server_round:04d}.npz"
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path, "wb") as fh:
                np.savez(fh, *aggregate)
            outputs.append(artifact(path, self.run_dir, "aggregate"))
            self.latest = [np.asarray(a, dtype=np.float32) for a in aggregate]
        with self._lock:
            self.rounds[server_round] = rec
        fed = self.cfg.federated
        privacy = privacy_record(fed.central_dp, sum(r.aggregated for r in self.rounds.values()), fed.min_sites)
        Ledger(self.run_dir).append(
            stage=ROUND_STAGE, started_at=started, config_digest=config_digest(self.cfg.federated),
            inputs=[], outputs=outputs,
            summary={"run": self.run_token, "round": server_round, "aggregated": rec.aggregated, "sites": rec.sites,
                     "update_sha256": rec.update_sha256, "rows": rec.rows, "aggregate_sha256": rec.aggregate_sha256,
                     "left_out": rec.left_out, "strategy": fed.strategy.name, "secure_aggregation": secure,
                     "epsilon_spent": privacy.get("epsilon")})

    def evaluation(self, server_round: int, scores: dict[str, dict[str, float]], errors: dict[str, str]) -> None:
        with self._lock:
            rec = self.rounds.get(server_round)
            if rec is None:
                return
            rec.scores = {k: {m: float(v) for m, v in d.items() if m != "site"} for k, d in sorted(scores.items())}
            rec.score_errors = dict(sorted(errors.items()))
        path = self.run_dir / "federated" / "rounds.jsonl"
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(rec.to_dict(), sort_keys=True) + "\n")

    @property
    def rounds_dir(self) -> Path:
        """This run's aggregates (a folder per run: an earlier run's files stay, as its ledger events name them)."""
        return self.run_dir / ROUNDS_DIR / self.run_token

    def rows_last(self) -> dict[str, int]:
        """Each site's training rows in the last round that aggregated."""
        done = [r for r in self.rounds.values() if r.aggregated]
        return dict(max(done, key=lambda r: r.round).rows) if done else {}

    def history(self) -> list[dict[str, Any]]:
        return [self.rounds[r].to_dict() for r in sorted(self.rounds)]
