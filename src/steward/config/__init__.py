"""The run's configuration: each stage's model lives beside its stage (``steward.<stage>.config``); this
package composes them into :class:`RunConfig` and loads it from YAML."""

from steward.config.loader import (
    config_digest,
    load_config,
    parse_config,
    template_text,
)
from steward.config.models import RunConfig
from steward.data.config import (
    BalanceConfig,
    CanaryConfig,
    DataConfig,
    DedupConfig,
    InputConfig,
    NormaliseConfig,
    PIIConfig,
    QualityConfig,
    ScreenConfig,
    SplitConfig,
)
from steward.evaluate.config import EvaluateConfig, GateSettings
from steward.train.config import TrainConfig

__all__ = [
    "BalanceConfig",
    "CanaryConfig",
    "DataConfig",
    "DedupConfig",
    "EvaluateConfig",
    "GateSettings",
    "InputConfig",
    "NormaliseConfig",
    "PIIConfig",
    "QualityConfig",
    "RunConfig",
    "ScreenConfig",
    "SplitConfig",
    "TrainConfig",
    "config_digest",
    "load_config",
    "parse_config",
    "template_text",
]
