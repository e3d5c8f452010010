"""One site of a federation, on its own side: its data stage (run here, on its own rows), a round of local
training from the global weights, and the global model scored on its own held-out split.

Nothing in this module sends text anywhere: what leaves is the trainable tensors, the row counts and the
metrics (``SiteUpdate``, ``SiteScore``). Each site keeps its own run folder and ledger: the data stage's event,
and one event per round naming the update it sent by its hash (``params.update_hash``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from steward.at_rest import read_parquet
from steward.config_base import config_digest
from steward.data.config import DataConfig
from steward.errors import SiteError, StewardError
from steward.federated.config import FederationRun, SiteConfig
from steward.federated.params import get_arrays, set_arrays, spec_of, update_hash
from steward.hashing import sha256_file
from steward.ledger.store import Ledger, artifact, now_iso
from steward.records import DataManifest

FEDERATED_DIR = "federated"  # inside a site's run folder: updates sent, the local work folder
SITE_ROUND = "federated_update"  # a site's ledger event for each update it sent


@dataclass(frozen=True)
class SiteRun:
    """What the data stage reads of a site's config: the site's own run folder and data config."""

    run_dir: Path
    data: DataConfig


@dataclass(frozen=True)
class SiteUpdate:
    """What a site sends after a round: its trainable tensors, the rows it trained on, and what it measured."""

    arrays: list[np.ndarray]
    rows: int
    metrics: dict[str, float]
    update_sha256: str


@dataclass(frozen=True)
class SiteScore:
    """The global model on a site's own held-out split: metrics only."""

    rows: int
    loss: float
    metrics: dict[str, float]


def site_dir(cfg: FederationRun, name: str) -> Path:
    """A site's run folder. In a simulation every site's folder is under the federation's; in a deployment it
    is on the site's own machine."""
    return Path(cfg.run_dir) / "sites" / name


class Site:
    """A site's side of the federation. Constructing one only stores; the data stage runs on first use."""

    def __init__(self, cfg: FederationRun, site: SiteConfig, run_token: str, *, folder: Path | None = None) -> None:
        self.cfg, self.site, self.run_token = cfg, site, run_token
        self.name = site.name
        self.dir = folder or site_dir(cfg, site.name)
        self._state: dict[str, Any] | None = None

    # --- the site's data stage, once per federation run --------------------------------------------------
    def prepare(self) -> dict[str, Any]:
        """The data stage on this site's rows (once per federation run), then the model and examples."""
        if self._state is not None:
            return self._state
        marker = self.dir / FEDERATED_DIR / "prepared.txt"
        if not (marker.is_file() and marker.read_text(encoding="utf-8") == self.run_token):
            self._data_stage()
            marker.parent.mkdir(parents=True, exist_ok=True)
            marker.write_text(self.run_token, encoding="utf-8")
        self._state = self._load()
        return self._state

    def _data_stage(self) -> None:
        from steward.data import run as run_data

        try:
            run_data(SiteRun(self.dir, self.site.data))
        except StewardError as exc:
            raise SiteError(self.name, f"its data stage failed: {exc}") from exc

    def _load(self) -> dict[str, Any]:
        """The site's splits as the train stage reads them, under the federation's label set; the model as the
        federation builds it (same seed, same initial weights); the encoded examples."""
        from steward.train.data import encode, load_data_stage
        from steward.train.stage import prepare_model

        tcfg = self.cfg.train
        agreed = list(tcfg.labels or [])
        try:  # one head, in one order, for every site; a site may hold a share of the labels (even one)
            data = load_data_stage(self.dir, tcfg.model_copy(update={"labels": None}), agreed_labels=agreed)
        except StewardError as exc:
            raise SiteError(self.name, f"its data stage's outputs cannot be used: {exc}") from exc
        if data.task != "classification" or data.multi_label:
            raise SiteError(self.name, f"its data is a {data.task!r} task; this federation trains a single-label "
                                       f"classifier. Fix: the site's data.input must give one label per text")
        prepared = prepare_model(tcfg, data)
        test = _read_test_split(self.dir)
        return {"data": data, "prepared": prepared, "spec": spec_of(prepared.model),
                "train_ex": encode(data.train, data, prepared.tokenizer, prepared.cfg),
                "val_ex": encode(data.validation, data, prepared.tokenizer, prepared.cfg),
                "test_ex": encode(test, data, prepared.tokenizer, prepared.cfg) if test is not None else None,
                "card_sha256": _card_sha256(self.dir)}

    # --- a round ------------------------------------------------------------------------------------------
    def fit(self, global_arrays: list[np.ndarray], server_round: int, *, local_epochs: int,
            proximal_mu: float = 0.0, clipping_norm: float | None = None) -> SiteUpdate:
        """Local training from the global weights for ``local_epochs``; the update, recorded in the site's
        ledger before it is sent. ``clipping_norm`` (central DP, client-side clipping): the change to the
        global weights is scaled to at most that L2 norm first, with Flower's own clipping function."""
        from steward.tracking import Tracker
        from steward.train.loop import run_loop

        state = self.prepare()
        prepared, data = state["prepared"], state["data"]
        started, t0 = now_iso(), time.perf_counter()
        try:
            set_arrays(prepared.model, global_arrays)
        except ValueError as exc:
            raise SiteError(self.name, f"the global model does not fit this site's model: {exc}. Fix: every site "
                                       f"must use the federation's train config (model, method, lora)") from exc
        tcfg = prepared.cfg.model_copy(update={"epochs": local_epochs, "mlflow": False})
        res = run_loop(prepared.model, prepared.tokenizer, data, state["train_ex"], state["val_ex"], tcfg,
                       self.dir / FEDERATED_DIR / "work", resume=False, tracker=Tracker(self.dir, False),
                       regulariser=proximal_term(prepared.model, proximal_mu), keep_best=False)
        arrays = get_arrays(res.model)
        if clipping_norm is not None and _changed(arrays, global_arrays):  # (Flower's clip divides by the norm)
            from flwr.supercore.differential_privacy import compute_clip_model_update

            compute_clip_model_update(arrays, [np.asarray(g, dtype=np.float32) for g in global_arrays],
                                      clipping_norm)
        digest = update_hash(arrays)
        last = res.history[-1] if res.history else {}
        metrics = {"train_seconds": round(time.perf_counter() - t0, 3),
                   **{f"val_{k}": float(v) for k, v in last.items() if k in ("accuracy", "macro_f1", "loss")}}
        self._record(server_round, arrays, digest, update_hash(global_arrays), len(state["train_ex"]), metrics,
                     started)
        return SiteUpdate(arrays, len(state["train_ex"]), metrics, digest)

    def _record(self, server_round: int, arrays: list[np.ndarray], digest: str, global_digest: str, rows: int,
                metrics: dict[str, float], started: str) -> None:
        """The update as a file in the site's folder and an event in the site's own ledger."""
        out = self.dir / FEDERATED_DIR / "updates" / f"round-{server_round:04d}.npz"
        out.parent.mkdir(parents=True, exist_ok=True)
        with open(out, "wb") as fh:
            np.savez(fh, *arrays)
        inputs = [artifact(self.dir / "data" / "manifest.json", self.dir, "data_manifest")]
        Ledger(self.dir).append(
            stage=SITE_ROUND, started_at=started, config_digest=config_digest(self.cfg.train),
            inputs=inputs, outputs=[artifact(out, self.dir, "update")],
            summary={"round": server_round, "run": self.run_token, "update_sha256": digest,
                     "global_sha256": global_digest, "rows": rows, **metrics})

    def evaluate(self, global_arrays: list[np.ndarray]) -> SiteScore:
        """The global model on this site's test split (its own held-out rows): metrics, never rows."""
        from steward.train.loop import evaluate

        state = self.prepare()
        prepared, data = state["prepared"], state["data"]
        examples = state["test_ex"] or state["val_ex"]
        try:
            set_arrays(prepared.model, global_arrays)
        except ValueError as exc:
            raise SiteError(self.name, f"the global model does not fit this site's model: {exc}. Fix: every site "
                                       f"must use the federation's train config (model, method, lora)") from exc
        out = evaluate(prepared.model, examples, data, prepared.tokenizer, prepared.cfg.eval_batch_size)
        return SiteScore(len(examples), float(out["loss"]),
                         {k: float(v) for k, v in out.items() if k in ("accuracy", "macro_f1", "loss")})

    def card_sha256(self) -> str | None:
        return self.prepare()["card_sha256"]


def _changed(arrays: list[np.ndarray], before: list[np.ndarray]) -> bool:
    return any(not np.array_equal(a, np.asarray(b, dtype=np.float32)) for a, b in zip(arrays, before, strict=True))


def proximal_term(model: Any, mu: float) -> Any:
    """FedProx's term μ/2·‖w − w_global‖² over the trainable tensors, against their values now (the global
    model just loaded); None when μ is 0 (FedAvg)."""
    if mu <= 0:
        return None
    anchors = [p.detach().clone() for p in model.parameters() if p.requires_grad]

    def term(m: Any) -> Any:
        params = [p for p in m.parameters() if p.requires_grad]
        return (mu / 2.0) * sum(((p - a) ** 2).sum() for p, a in zip(params, anchors, strict=True))

    return term


def _read_test_split(run_dir: Path) -> Any:
    """The site's test split, checked against its data manifest; None when the site kept none."""
    manifest = DataManifest.read(run_dir / "data" / "manifest.json")
    ref = manifest.split("test")
    if ref is None:
        return None
    path = run_dir / ref.path
    if sha256_file(path) != ref.sha256:
        raise SiteError(run_dir.name, f"{ref.path} changed since the data stage wrote it (sha256 mismatch)")
    frame = read_parquet(path)
    return frame if len(frame) else None


def _card_sha256(run_dir: Path) -> str | None:
    """The hash of the site's data card: what the final model's manifest names for each site."""
    cards = sorted((run_dir / "data").glob("data_card*"))
    return sha256_file(cards[0]) if cards else None
