"""Steward: from raw text data to a guarded, audited fine-tuned model, with evidence at every step.

The public API is listed in ``__all__``; everything else is an implementation detail.
"""

from __future__ import annotations

__version__ = "0.1.0"

from steward.errors import (
    ConfigError,
    DataStageError,
    DependencyMissingError,
    EvaluateStageError,
    GateFailed,
    InputDataError,
    LedgerError,
    LedgerIntegrityError,
    PrivacyBudgetExceeded,
    RegistryError,
    StewardError,
    TrainStageError,
)
from steward.types import ArtifactRef, DatasetManifest, Finding, QuarantineRecord

__all__ = [
    "ArtifactRef",
    "ConfigError",
    "DataStageError",
    "DatasetManifest",
    "DependencyMissingError",
    "EvaluateStageError",
    "Finding",
    "GateFailed",
    "InputDataError",
    "LedgerError",
    "LedgerIntegrityError",
    "PrivacyBudgetExceeded",
    "QuarantineRecord",
    "RegistryError",
    "StewardError",
    "TrainStageError",
    "__version__",
]
