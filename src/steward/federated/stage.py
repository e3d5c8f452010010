"""The federated stage: N sites train one model on Flower, each on its own rows; the federation keeps the
global model, a ledger event per round and a final model folder in the train stage's format.

``run(cfg)``: the global model is built from the federation's train config (seeded: every site builds the
same one), Flower's simulation engine runs the ServerApp in this process and each site's ClientApp in a Ray
worker, and each site runs its data stage on its first round in its own folder (``sites/<name>/``).
"""

from __future__ import annotations

import importlib.util
import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from steward.atomic import write_json
from steward.config_base import config_digest
from steward.errors import DependencyMissingError, FederatedError
from steward.federated.apps import client_app, server_app, strategy_for
from steward.federated.config import FederationRun
from steward.federated.params import get_arrays, set_arrays, spec_of
from steward.federated.privacy import check_budget, privacy_record
from steward.federated.recorder import Recorder
from steward.ledger.store import Ledger, artifact, now_iso

STAGE = "federated"


@dataclass(frozen=True)
class FederatedResult:
    manifest: dict[str, Any]
    out_dir: Path  # RUN_DIR/train: the global model, as the train stage writes it


@dataclass
class Federation:
    """One federation run on the server's side: the global model, its record and the strategy (``begin``),
    then, once Flower's rounds are over, the model written and the run closed (``finish``)."""

    cfg: FederationRun
    token: str
    prepared: Any
    agreed: Any
    recorder: Recorder
    strategy: Any
    started: str
    t0: float


def run(cfg: FederationRun, *, progress: bool = False) -> FederatedResult:
    """Run the federation in ``cfg`` to its last round on Flower's simulation engine (the ServerApp in this
    process, every site's ClientApp in a Ray worker); write ``RUN_DIR/train/`` and ``RUN_DIR/federated/``."""
    _check_dependencies()
    fed = begin(cfg, uuid.uuid4().hex)
    _simulate(cfg, server_app(fed.strategy, cfg), client_app(cfg, fed.token), progress=progress)
    return finish(fed)


def begin(cfg: FederationRun, token: str) -> Federation:
    """Check the privacy budget, start a fresh record, and build the global model (from the federation's
    train config, seeded: every site builds the same one) and the strategy around it."""
    from steward.train.data import TrainData
    from steward.train.stage import prepare_model

    check_budget(cfg.federated.central_dp, cfg.federated.rounds)
    _fresh_record(Path(cfg.run_dir))
    started, t0 = now_iso(), time.perf_counter()
    empty = pd.DataFrame({"text": [], "label": []})
    agreed = TrainData("classification", False, list(cfg.train.labels or []), empty, empty, {})
    prepared = prepare_model(cfg.train, agreed)
    recorder = Recorder(cfg, token)
    strategy = strategy_for(cfg, get_arrays(prepared.model), spec_of(prepared.model), recorder)
    return Federation(cfg, token, prepared, agreed, recorder, strategy, started, t0)


def finish(fed: Federation) -> FederatedResult:
    """The last aggregate into the global model, written as the train stage writes a model, with the
    federation's manifest and a closing ledger event; FederatedError when no round aggregated."""
    from steward.train.loop import LoopResult
    from steward.train.stage import train_manifest, write_output

    cfg, recorder, prepared = fed.cfg, fed.recorder, fed.prepared
    run_dir = Path(cfg.run_dir)
    if recorder.latest is None:
        why = {s: r for rec in recorder.rounds.values() for s, r in rec.left_out.items()}
        raise FederatedError(f"no round aggregated an update from at least {cfg.federated.min_sites} sites; "
                             f"left out: {why or 'every site (none answered)'}. Fix: the reason given for each "
                             f"site, or lower federated.min_sites; no model was written")
    set_arrays(prepared.model, recorder.latest)
    history = recorder.history()
    last = next((h for h in reversed(history) if "accuracy_weighted" in h), {})
    res = LoopResult(history=history, best_metric=last.get("accuracy_weighted"), best_epoch=last.get("round"),
                     metric_name="accuracy", epochs_run=len(history), seconds=time.perf_counter() - fed.t0,
                     model=prepared.model)
    manifest = train_manifest(fed.agreed, prepared.source, prepared.cfg, prepared.params,
                              sum(recorder.rows_last().values()), {}, res, run_dir, None)
    released = sum(r.aggregated for r in recorder.rounds.values())
    manifest["privacy"] = privacy_record(cfg.federated.central_dp, released, cfg.federated.min_sites)
    manifest["federation"] = _federation(cfg, recorder, fed.token)
    out_dir = write_output(run_dir, prepared.model, prepared.tokenizer, prepared.cfg.method, manifest, [])
    write_json(run_dir / STAGE / "manifest.json", manifest["federation"])
    rounds = sorted(recorder.rounds_dir.glob("round-*.npz"))
    Ledger(run_dir).append(
        stage=STAGE, started_at=fed.started, config_digest=config_digest(cfg.federated),
        inputs=[artifact(p, run_dir, "aggregate") for p in rounds[-1:]],
        outputs=[*(artifact(p, run_dir, p.name) for p in sorted(out_dir.iterdir())),
                 artifact(run_dir / STAGE / "manifest.json", run_dir, "federation_manifest")],
        summary={"run": fed.token, "rounds": len(history), "strategy": cfg.federated.strategy.name,
                 "sites": [s.name for s in cfg.federated.sites], **{k: last[k] for k in (
                     "accuracy_weighted", "accuracy_worst", "accuracy_worst_site", "accuracy_spread") if k in last},
                 "seconds": round(time.perf_counter() - fed.t0, 2)})
    return FederatedResult(manifest, out_dir)


def _check_dependencies() -> None:
    missing = [m for m in ("flwr", "ray") if importlib.util.find_spec(m) is None]
    if missing:
        raise DependencyMissingError(f"the federated stage needs {' and '.join(missing)}: pip install -e "
                                     f"'.[ml,federated]' (flwr[simulation]: Flower and its Ray simulation engine)")


def _fresh_record(run_dir: Path) -> None:
    """A federation run starts a fresh log of round scores; earlier runs' aggregates stay (their ledger
    events name them, so ``steward ledger verify`` still checks them)."""
    (run_dir / STAGE).mkdir(parents=True, exist_ok=True)
    (run_dir / STAGE / "rounds.jsonl").unlink(missing_ok=True)


def _simulate(cfg: FederationRun, server: Any, client: Any, *, progress: bool) -> None:
    """Flower's simulation engine: the ServerApp in a thread here, every site's ClientApp in a Ray worker."""
    os.environ.setdefault("FLWR_TELEMETRY_ENABLED", "0")
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    from flwr.simulation import run_simulation

    fed = cfg.federated
    cores = os.cpu_count() or 1
    run_simulation(server_app=server, client_app=client, num_supernodes=len(fed.sites),
                   backend_config={"client_resources": {"num_cpus": fed.cpus_per_site, "num_gpus": 0.0},
                                   "init_args": {"num_cpus": cores, "include_dashboard": False,
                                                 "log_to_driver": progress}})


def _federation(cfg: FederationRun, recorder: Recorder, token: str) -> dict[str, Any]:
    """What the final model's manifest says about the federation: every site and its data card's hash, the
    strategy, and each round's record."""
    fed = cfg.federated
    cards = recorder.cards
    released = sum(r.aggregated for r in recorder.rounds.values())
    return {"run": token, "strategy": {**fed.strategy.model_dump(), "weighted": fed.weighted()},
            "rounds": fed.rounds, "secure_aggregation": fed.secure_aggregation.model_dump(),
            "central_dp": privacy_record(fed.central_dp, released, fed.min_sites),
            "local_epochs": fed.local_epochs, "min_sites": fed.min_sites,
            "sites": [{"name": s.name, "data_card_sha256": cards.get(s.name),
                       "rows_last_round": recorder.rows_last().get(s.name)} for s in fed.sites],
            "history": recorder.history()}
