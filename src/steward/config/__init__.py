"""The run's configuration: each stage's model lives beside its stage (``steward.<stage>.config``); this
package composes them into :class:`RunConfig` and loads it from YAML."""

from steward.config.loader import (
    config_digest,
    load_config,
    load_federation,
    parse_config,
    parse_federation,
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
from steward.federated.config import FederatedConfig, FederationConfig, SiteConfig
from steward.train.config import TrainConfig

__all__ = [
    "BalanceConfig",
    "CanaryConfig",
    "DataConfig",
    "DedupConfig",
    "EvaluateConfig",
    "FederatedConfig",
    "FederationConfig",
    "GateSettings",
    "InputConfig",
    "NormaliseConfig",
    "PIIConfig",
    "QualityConfig",
    "RunConfig",
    "ScreenConfig",
    "SiteConfig",
    "SplitConfig",
    "TrainConfig",
    "config_digest",
    "load_config",
    "load_federation",
    "parse_config",
    "parse_federation",
    "template_text",
]
