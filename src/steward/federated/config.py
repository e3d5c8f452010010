"""A federation's config: its sites (each with its own data config), the one training recipe every site runs,
and the server's strategy. ``steward.config.load_federation`` reads it from YAML; this module only defines it."""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Protocol

from pydantic import Field, field_validator, model_validator

from steward.config_base import StageConfig
from steward.data.config import DataConfig
from steward.train.config import TrainConfig

SITE_NAME = r"^[a-z0-9][a-z0-9_-]{0,63}$"  # a folder name under RUN_DIR/sites/ and a ledger field


class SiteConfig(StageConfig):
    """One organisation's share: its name and its own data config (its input file stays on its side)."""

    name: str = Field(pattern=SITE_NAME)
    data: DataConfig = Field(default_factory=DataConfig)


class StrategySettings(StageConfig):
    """The server's aggregation (Flower's strategies). FedProx's ``proximal_mu`` pulls each site's local
    weights toward the round's global ones (non-IID sites drift apart otherwise); FedAdam applies the averaged
    update with a server-side Adam step of ``server_learning_rate``."""

    name: Literal["fedavg", "fedprox", "fedadam"] = "fedavg"
    proximal_mu: float = Field(0.01, ge=0.0)  # fedprox only
    server_learning_rate: float = Field(0.01, gt=0.0)  # fedadam only (eta)
    # weight each site's update by its training rows (FedAvg); false: every site alike; unset: by rows, except
    # under central DP (every site alike: the noise is calibrated to a mean of equals)
    weighted: bool | None = None


class SecureAggregationSettings(StageConfig):
    """Flower's SecAgg+: the server learns only the sum of the sites' updates, never one site's. Each update is
    clipped to ±``clipping_range`` per value and quantised to ``quantization_range`` levels; a site's weight
    (its rows, when the mean weighs rows) is scaled by ``max_weight`` before its tensors are quantised: keep it
    near the largest site's rows (far larger loses precision, smaller overflows). ``num_shares`` and
    ``reconstruction_threshold`` as fractions of the round's sites: a round survives the loss of sites as long
    as the threshold of shares remains (with two sites, none may drop)."""

    enabled: bool = False
    num_shares: float = Field(1.0, gt=0.0, le=1.0)
    reconstruction_threshold: float = Field(0.67, gt=0.0, le=1.0)
    max_weight: float = Field(10_000.0, gt=0.0)
    clipping_range: float = Field(8.0, gt=0.0)
    # levels over ±clipping_range; the masked sum of every site must stay below Flower's 2**32 modulus
    quantization_range: int = Field(2**26, ge=2**10, le=2**28)
    timeout_s: float = Field(600.0, gt=0.0)


class CentralDPSettings(StageConfig):
    """Central differential privacy at the level of a site (Flower's DP strategy wrappers): every site's
    update (its change to the global weights) is clipped to L2 norm C = ``clipping_norm`` and the mean of the
    round's k ≥ ``min_sites`` updates (every site alike) gets Gaussian noise of σ = z · 2C / ``min_sites``,
    z = ``noise_multiplier``. 2C/k is how far one site's update can move that mean when the others stay (the
    federation's sites are public, so neighbouring federations differ in one site's data), and k ≥ min_sites:
    the noise covers it z times over in every round. ε after all rounds is accounted (RDP, Opacus) at ``delta``
    and written to the manifest and the ledger. Clipping ``client`` (at each site, checked by the server when
    it sees the updates; the one that works with secure aggregation) or ``server``."""

    enabled: bool = False
    noise_multiplier: float = Field(1.0, gt=0.0)
    clipping_norm: float = Field(1.0, gt=0.0)
    clipping: Literal["client", "server"] = "client"
    delta: float = Field(1e-5, gt=0.0, lt=1.0)
    target_epsilon: float | None = Field(None, gt=0.0)  # refuse a federation whose rounds would spend more


class FederatedConfig(StageConfig):
    """The federation: ``sites`` (at least two), ``rounds`` of ``local_epochs`` each, and the strategy.

    A round goes on without a site that fails or sends a malformed update as long as ``min_sites`` remain;
    below that, the round keeps the previous global model (recorded, with every site's reason) and the next
    round starts from it; the run fails only when no round aggregated."""

    sites: list[SiteConfig] = Field(min_length=2)
    rounds: int = Field(3, ge=1, le=1000)
    local_epochs: int = Field(1, ge=1)
    min_sites: int = Field(2, ge=1)
    strategy: StrategySettings = Field(default_factory=StrategySettings)
    secure_aggregation: SecureAggregationSettings = Field(default_factory=SecureAggregationSettings)
    central_dp: CentralDPSettings = Field(default_factory=CentralDPSettings)
    engine: Literal["simulation"] = "simulation"  # Flower's simulation engine on this machine (Ray)
    cpus_per_site: float = Field(1.0, gt=0.0)  # Ray's share of a core for each simulated site

    @field_validator("sites")
    @classmethod
    def _unique_names(cls, sites: list[SiteConfig]) -> list[SiteConfig]:
        names = [s.name for s in sites]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"site names must be unique; {dupes} appear more than once. Fix: rename them")
        return sites

    @model_validator(mode="after")
    def _consistent(self) -> FederatedConfig:
        if self.min_sites > len(self.sites):
            raise ValueError(f"min_sites is {self.min_sites} but the federation has {len(self.sites)} sites. "
                             f"Fix: lower federated.min_sites or add sites")
        dp, sa = self.central_dp, self.secure_aggregation
        if dp.enabled and sa.enabled and dp.clipping == "server":
            raise ValueError("central_dp.clipping 'server' with secure_aggregation: the server never sees one "
                             "site's update to clip it. Fix: set central_dp.clipping to client")
        if dp.enabled and self.strategy.weighted is True:
            raise ValueError("strategy.weighted true with central_dp: the noise covers one site's clipped update in "
                             "a mean of equals; weighting by rows would let a large site count for more. Fix: "
                             "leave strategy.weighted unset (sites count alike under DP)")
        if dp.enabled and self.strategy.name == "fedadam":
            raise ValueError("central_dp with strategy fedadam: the noise is added after the server's Adam step, "
                             "whose change does not have the clipped updates' sensitivity, so no (ε, δ) would hold. "
                             "Fix: use fedavg or fedprox with central_dp")
        if sa.enabled and sa.quantization_range * len(self.sites) >= 2**32:
            raise ValueError(f"secure_aggregation.quantization_range {sa.quantization_range} × {len(self.sites)} "
                             f"sites reaches SecAgg+'s 2**32 modulus: the masked sum would wrap around into a "
                             f"corrupt aggregate. Fix: lower quantization_range below {2**32 // len(self.sites)}")
        if sa.enabled and self.min_sites < 2:
            raise ValueError("secure_aggregation needs at least two sites in a round. Fix: set min_sites to 2 or more")
        return self

    def weighted(self) -> bool:
        """Whether the mean weighs sites by their rows: yes unless set, or under central DP (sites alike)."""
        return self.strategy.weighted if self.strategy.weighted is not None else not self.central_dp.enabled


class FederationConfig(StageConfig):
    """A federated run: one folder (the federation's ledger and final model; each site's own folder under
    ``sites/`` in a simulation), the federation, and the training recipe every site runs. ``train.labels`` is
    the label set the sites agreed on: the global model's head, fixed before any site's data is read."""

    run_dir: Path = Path("runs/federation")
    federated: FederatedConfig
    train: TrainConfig = Field(default_factory=TrainConfig)

    @model_validator(mode="after")
    def _agreed_labels(self) -> FederationConfig:
        if not self.train.labels or len(self.train.labels) < 2:
            raise ValueError("train.labels: a federation needs the label set its sites agreed on (at least two), "
                             "e.g. labels: [negative, positive]: the global model is built before any site's data "
                             "is read. Fix: add train.labels")
        if self.train.privacy.enabled:
            raise ValueError("train.privacy.enabled: DP-SGD at the sites is not supported in a federation yet (each "
                             "round would start a fresh accountant, so the ε reported would cover one round, not the "
                             "federation). Fix: set train.privacy.enabled to false")
        if self.train.method == "prompt":
            raise ValueError("train.method 'prompt' is not supported in a federation yet. Fix: use lora, head or full")
        return self


class FederationRun(Protocol):
    """What the federated stage reads of a config (``FederationConfig`` has it)."""

    @property
    def run_dir(self) -> Path: ...

    @property
    def federated(self) -> FederatedConfig: ...

    @property
    def train(self) -> TrainConfig: ...
