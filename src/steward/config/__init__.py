"""Pydantic configuration, one model per stage, composed by :class:`RunConfig` and loaded from YAML."""

from steward.config.loader import (
    config_digest,
    load_config,
    parse_config,
    template_text,
)
from steward.config.models import (
    BalanceConfig,
    CanaryConfig,
    DataConfig,
    DedupConfig,
    EvaluateConfig,
    GateSettings,
    InputConfig,
    NormaliseConfig,
    PIIConfig,
    QualityConfig,
    RunConfig,
    ScreenConfig,
    SplitConfig,
    TrainConfig,
)

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
