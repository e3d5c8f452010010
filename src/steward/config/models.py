"""The whole run's config: one section per stage, each defined beside its stage (``steward.<stage>.config``).
This module only composes them; it is the one place that knows every stage, so no stage imports it."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from steward.compress.config import CompressConfig
from steward.config_base import StageConfig
from steward.data.config import DataConfig
from steward.evaluate.config import EvaluateConfig
from steward.gateway.config import GatewayConfig, RedTeamConfig
from steward.serve.config import ServeConfig
from steward.train.config import TrainConfig


class RunConfig(StageConfig):
    """The whole run: one folder, one config per stage."""

    run_dir: Path = Path("runs/default")
    data: DataConfig = Field(default_factory=DataConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    evaluate: EvaluateConfig = Field(default_factory=EvaluateConfig)
    compress: CompressConfig = Field(default_factory=CompressConfig)
    serve: ServeConfig = Field(default_factory=ServeConfig)
    gateway: GatewayConfig = Field(default_factory=GatewayConfig)
    redteam: RedTeamConfig = Field(default_factory=RedTeamConfig)
