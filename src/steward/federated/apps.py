"""The Flower apps: the ClientApp every site runs around ``Site``, and the ServerApp around a Flower strategy.

Flower's legacy route (``NumPyClient``, ``flwr.server.strategy``, ``DefaultWorkflow`` on a ``LegacyContext``)
is used on purpose: in flwr 1.42 it is the route on which secure aggregation (``SecAggPlusWorkflow`` and
``secaggplus_mod``) runs, and Flower's central-DP wrappers compose with it, so every option of the federation
runs on one path. The strategy is Flower's own (FedAvg, FedProx, FedAdam, the DP wrappers);
``recorded_strategy`` only adds what a federation must check and keep: each reply checked before it is
averaged, and each round on the record.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from steward.errors import SiteError
from steward.federated.config import FederationRun
from steward.federated.params import ParamSpec, update_hash
from steward.federated.site import Site

LOG = logging.getLogger("steward.federated")
_SITES: dict[tuple[str, str], Site] = {}  # per process (a Ray worker serves several sites): loaded once


def site_for(cfg: FederationRun, node_config: dict[str, Any], run_token: str) -> Site:
    """The site a Flower node plays, loaded once per process: the one its SuperNode names (``--node-config
    'site="north" run-dir="/data/steward"'``: the site, and its own folder on its machine), else the one at its
    ``partition-id`` (the simulation engine numbers its nodes)."""
    if "site" in node_config:
        name = str(node_config["site"])
        matches = [s for s in cfg.federated.sites if s.name == name]
        if not matches:
            raise SiteError(name, f"this SuperNode's --node-config names a site the federation does not have; "
                                  f"its sites are {[s.name for s in cfg.federated.sites]}")
        site_cfg = matches[0]
    else:
        site_cfg = cfg.federated.sites[int(node_config["partition-id"])]
    key = (run_token, site_cfg.name)
    if key not in _SITES:
        folder = node_config.get("run-dir")
        _SITES[key] = Site(cfg, site_cfg, run_token, folder=Path(str(folder)) if folder else None)
    return _SITES[key]


def client_app(cfg: FederationRun, run_token: str | None) -> Any:
    """The ClientApp: each node plays one site (``site_for``); ``run_token`` None: Flower's run id names the
    run (a deployment, where server and sites share nothing else). A site's own failure (its data stage, its labels)
    is answered as a reply naming it, not a crash: the server leaves it out of the round and records why.
    Under secure aggregation the failure is raised instead (Flower's error reply): a masked sum has no room
    for an empty update, and SecAgg+ treats the site as dropped. ``secaggplus_mod`` is the mod when secure
    aggregation is on. Client-side DP clipping happens in ``Site.fit`` (Flower's own clipping function), not in
    ``fixedclipping_mod``, so that the update a site records in its ledger is the one it sends."""
    from flwr.client import ClientApp, NumPyClient
    from flwr.client.mod import secaggplus_mod

    fed = cfg.federated
    secure = fed.secure_aggregation.enabled

    class SiteClient(NumPyClient):  # type: ignore[misc]
        def __init__(self, site: Site) -> None:
            self.site = site

        def fit(self, parameters: list[np.ndarray], config: dict[str, Any]) -> tuple[list[np.ndarray], int, dict]:
            try:
                if secure and fed.weighted():
                    _fits_max_weight(self.site, fed.secure_aggregation.max_weight)
                up = self.site.fit(parameters, int(config["server_round"]),
                                   local_epochs=int(config["local_epochs"]),
                                   proximal_mu=float(config.get("proximal_mu", 0.0)),
                                   clipping_norm=float(config["clipping_norm"]) if "clipping_norm" in config else None)
            except SiteError as exc:
                LOG.error("%s", exc)
                if secure:
                    raise
                return [], 0, {"site": self.site.name, "error": str(exc)}
            # the weight goes into SecAgg+'s masked sum as sent: sites alike (1) unless the mean weighs rows
            weight = up.rows if fed.weighted() else 1
            return up.arrays, weight, {"site": self.site.name, "update_sha256": up.update_sha256, "rows": up.rows,
                                        "data_card_sha256": self.site.card_sha256() or "", **up.metrics}

        def evaluate(self, parameters: list[np.ndarray], config: dict[str, Any]) -> tuple[float, int, dict]:
            try:
                score = self.site.evaluate(parameters)
            except SiteError as exc:
                LOG.error("%s", exc)
                return 0.0, 0, {"site": self.site.name, "error": str(exc)}
            return score.loss, score.rows, {"site": self.site.name, **score.metrics}

    def client_fn(context: Any) -> Any:
        _threads(cfg)
        site = site_for(cfg, dict(context.node_config), run_token or f"flwr-run-{context.run_id}")
        return SiteClient(site).to_client()

    return ClientApp(client_fn=client_fn, mods=[secaggplus_mod] if secure else [])


def _fits_max_weight(site: Site, max_weight: float) -> None:
    """SecAgg+ scales a site's tensors by rows / max_weight before quantising them: above 1 they pass the
    clipping range and are cut, silently corrupting the sum. Refuse before training."""
    rows = len(site.prepare()["train_ex"])
    if rows > max_weight:
        raise SiteError(site.name, f"it trains on {rows} rows, above secure_aggregation.max_weight {max_weight:g}: "
                                   f"its share of the sum would be clipped. Fix: raise max_weight to at least {rows}")


def _threads(cfg: FederationRun) -> None:
    """One site per Ray worker, each with its share of the cores (more threads would oversubscribe them)."""
    import torch

    torch.set_num_threads(max(1, int(cfg.train.threads or cfg.federated.cpus_per_site)))


def server_app(strategy: Any, cfg: FederationRun) -> Any:
    """The ServerApp: Flower's default workflow (fit, then evaluate on every site, each round) on ``strategy``;
    its fit step is SecAgg+'s when secure aggregation is on."""
    from flwr.server import ServerApp

    app = ServerApp()

    @app.main()
    def main(grid: Any, context: Any) -> None:
        run_rounds(grid, context, strategy, cfg)

    return app


def run_rounds(grid: Any, context: Any, strategy: Any, cfg: FederationRun) -> None:
    """Flower's default workflow for ``federated.rounds`` rounds (SecAgg+'s fit step when it is on)."""
    from flwr.server import LegacyContext, ServerConfig
    from flwr.server.workflow import DefaultWorkflow, SecAggPlusWorkflow

    fed = cfg.federated
    sa = fed.secure_aggregation
    legacy = LegacyContext(context=context, strategy=strategy, config=ServerConfig(num_rounds=fed.rounds))
    fit = (SecAggPlusWorkflow(num_shares=sa.num_shares, reconstruction_threshold=sa.reconstruction_threshold,
                              max_weight=sa.max_weight if fed.weighted() else 1.0,
                              clipping_range=sa.clipping_range, quantization_range=sa.quantization_range,
                              timeout=sa.timeout_s) if sa.enabled else None)
    DefaultWorkflow(fit_workflow=fit)(grid, legacy)


def strategy_for(cfg: FederationRun, initial: list[np.ndarray], spec: ParamSpec, recorder: Any) -> Any:
    """Flower's strategy for ``federated.strategy`` on the initial global weights, inside Flower's central-DP
    wrapper when that is on, inside ``recorded_strategy`` (the checks and the record) — outermost, so what it
    records is the global model the sites receive (noise included)."""
    from flwr.common import ndarrays_to_parameters
    from flwr.server import strategy as fl

    fed = cfg.federated
    s, dp = fed.strategy, fed.central_dp
    n = len(fed.sites)

    def fit_config(server_round: int) -> dict[str, Any]:
        out: dict[str, Any] = {"server_round": server_round, "local_epochs": fed.local_epochs}
        if s.name == "fedprox":
            out["proximal_mu"] = s.proximal_mu
        return out

    common: dict[str, Any] = {
        "fraction_fit": 1.0, "fraction_evaluate": 1.0, "min_fit_clients": n, "min_evaluate_clients": n,
        "min_available_clients": n, "on_fit_config_fn": fit_config, "accept_failures": True,
        "initial_parameters": ndarrays_to_parameters(initial),
        "fit_metrics_aggregation_fn": _no_metrics, "evaluate_metrics_aggregation_fn": _no_metrics,
    }
    if s.name == "fedprox":
        inner = fl.FedProx(**common, proximal_mu=s.proximal_mu)
    elif s.name == "fedadam":
        inner = fl.FedAdam(**common, eta=s.server_learning_rate, eta_l=cfg.train.lr(), tau=1e-9)
    else:
        inner = fl.FedAvg(**common)
    if dp.enabled:
        wrapper = (fl.DifferentialPrivacyClientSideFixedClipping if dp.clipping == "client"
                   else fl.DifferentialPrivacyServerSideFixedClipping)
        # Flower's σ is noise_multiplier·C/num_sampled_clients; one site moves a mean of k ≥ min_sites equals
        # by up to 2C/k, so 2z here gives σ = z·2C/min_sites: z times the largest move (privacy.py accounts z)
        inner = wrapper(inner, noise_multiplier=2 * dp.noise_multiplier, clipping_norm=dp.clipping_norm,
                        num_sampled_clients=fed.min_sites)
    clip = dp.clipping_norm if dp.enabled and dp.clipping == "client" else None
    return recorded_strategy(inner, spec, fed.min_sites, fed.weighted(), recorder,
                             secure=fed.secure_aggregation.enabled, noised=dp.enabled, client_clip=clip)


def _no_metrics(results: list[tuple[int, dict[str, Any]]]) -> dict[str, Any]:
    return {}  # per-site metrics go to the recorder; Flower's log of averages would hide the worst site


def recorded_strategy(inner: Any, spec: ParamSpec, min_sites: int, weighted: bool, recorder: Any, *,
                      secure: bool = False, noised: bool = False, client_clip: float | None = None) -> Any:
    """``inner`` (a Flower strategy) behind a check of every site's reply before it is averaged (shape, dtype,
    finite values, the hash the site reports, and — with client-side DP clipping — the update's norm),
    leaving out a site that failed or sent a malformed update, keeping the previous global model when fewer
    than ``min_sites`` remain, and handing every round to ``recorder`` — a round whose fit never reached the
    strategy (SecAgg+ could not recover the sum) included. Under secure aggregation the server holds only the
    sum: the check is on it, and each site's update is named by the hash it reports. ``noised``: numpy's
    global generator, which Flower's DP wrappers draw their noise from, is reseeded from the OS before each
    aggregation (a seeded one — the train stage seeds it — would let anyone with the config subtract it)."""
    from flwr.common import parameters_to_ndarrays
    from flwr.server.strategy import Strategy

    class Recorded(Strategy):  # type: ignore[misc]
        def __init__(self) -> None:
            self.global_arrays: list[np.ndarray] = []
            self.pending: int | None = None  # a round configured for fit and not yet recorded

        def initialize_parameters(self, client_manager: Any) -> Any:
            return inner.initialize_parameters(client_manager)

        def configure_fit(self, server_round: int, parameters: Any, client_manager: Any) -> Any:
            self.global_arrays, self.pending = parameters_to_ndarrays(parameters), server_round
            return inner.configure_fit(server_round, parameters, client_manager)

        def configure_evaluate(self, server_round: int, parameters: Any, client_manager: Any) -> Any:
            if self.pending is not None:  # the fit step ended without handing us its replies
                recorder.round(self.pending, None, [], {"(round)": "secure aggregation could not recover the sum: "
                               "too few sites completed the protocol"}, secure=secure)
                self.pending = None
            return inner.configure_evaluate(server_round, parameters, client_manager)

        def evaluate(self, server_round: int, parameters: Any) -> Any:
            return inner.evaluate(server_round, parameters)

        def aggregate_fit(self, server_round: int, results: list, failures: list) -> tuple[Any, dict]:
            self.pending = None
            kept, left_out = _checked(results, spec, weighted, secure, self.global_arrays, client_clip)
            left_out = {**_failures(failures), **left_out}
            aggregate = None
            params, metrics = None, {}
            if len(kept) >= min_sites:
                if noised:
                    np.random.seed(np.frombuffer(os.urandom(32), dtype=np.uint32))
                params, metrics = inner.aggregate_fit(server_round, [(p, r) for p, r, _, _ in kept], [])
                if params is not None:
                    aggregate = parameters_to_ndarrays(params)
            recorder.round(server_round, aggregate, kept, left_out, secure=secure)
            return params, metrics

        def aggregate_evaluate(self, server_round: int, results: list, failures: list) -> tuple[Any, dict]:
            scores = {str(r.metrics.get("site")): {"rows": r.num_examples, "loss": r.loss, **r.metrics}
                      for _, r in results if not r.metrics.get("error") and r.num_examples}
            errors = {str(r.metrics.get("site")): str(r.metrics["error"]) for _, r in results if r.metrics.get("error")}
            recorder.evaluation(server_round, scores, {**_failures(failures), **errors})
            return inner.aggregate_evaluate(server_round, [(p, r) for p, r in results if r.num_examples], [])

    return Recorded()


def _checked(results: list, spec: ParamSpec, weighted: bool, secure: bool, global_arrays: list[np.ndarray],
             client_clip: float | None) -> tuple[list[tuple[Any, Any, str, list[np.ndarray]]], dict[str, str]]:
    """The replies that may be averaged (proxy, reply, site, tensors) and the sites left out with why."""
    from flwr.common import parameters_to_ndarrays

    kept, left_out = [], {}
    if secure and results:
        _only_the_sum(results)
    for proxy, res in results:
        site = str(res.metrics.get("site", f"node {proxy.cid}"))
        arrays = parameters_to_ndarrays(res.parameters)
        claimed = None if secure else res.metrics.get("update_sha256")  # secure: the tensors are the sum
        problem = res.metrics.get("error") or _problem(spec, arrays, claimed)
        if not problem and client_clip is not None and not secure and global_arrays:
            problem = _over_norm(arrays, global_arrays, client_clip)
        if problem:
            left_out[site] = str(problem)
            continue
        if not weighted:
            res.num_examples = 1
        kept.append((proxy, res, site, arrays))
    return kept, left_out


def _over_norm(arrays: list[np.ndarray], global_arrays: list[np.ndarray], clip: float) -> str | None:
    """A site's change to the global weights beyond the clipping norm voids the DP guarantee for everyone."""
    norm = float(np.sqrt(sum(float(((a.astype(np.float64) - g) ** 2).sum())
                             for a, g in zip(arrays, global_arrays, strict=True))))
    if norm > clip * (1 + 1e-4) + 1e-6:
        return f"its update's norm {norm:.6g} exceeds central_dp.clipping_norm {clip:g}: not clipped as agreed"
    return None


def _only_the_sum(results: list) -> None:
    """Under secure aggregation SecAgg+ hands the strategy the unmasked sum in every reply; a reply holding
    anything else means the server saw a site's own update, which the federation promised it would not."""
    import hashlib

    if len({hashlib.sha256(b"".join(res.parameters.tensors)).digest() for _, res in results}) > 1:
        from steward.errors import FederatedError

        raise FederatedError("secure aggregation is on, but the server received individual site updates: "
                             "SecAgg+ did not run. Stopped before anything was averaged. Fix: run the sites' "
                             "ClientApp from steward.federated (it carries secaggplus_mod), or turn "
                             "secure_aggregation off knowingly")


def _problem(spec: ParamSpec, arrays: list[np.ndarray], claimed: Any) -> str | None:
    """Why a site's update cannot be averaged, or None."""
    problems = spec.problems(arrays)
    if problems:
        return "malformed update: " + "; ".join(problems[:3])
    if claimed and update_hash(arrays) != claimed:
        return "the update received is not the one the site recorded (hash mismatch)"
    return None


def _failures(failures: list) -> dict[str, str]:
    """Flower's failures (a node that crashed, timed out or dropped) by the name we can give them."""
    out: dict[str, str] = {}
    for i, f in enumerate(failures):
        if isinstance(f, BaseException):
            out[f"failure {i + 1}"] = f"{type(f).__name__}: {f}"
        else:
            proxy, res = f
            out[str(getattr(res, "metrics", {}).get("site", f"node {proxy.cid}"))] = str(getattr(res, "status", f))
    return out
