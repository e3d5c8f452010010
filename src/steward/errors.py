"""One exception tree for Steward.

Every error Steward raises on purpose derives from :class:`StewardError`, so a caller can catch the
whole family, and mixes in the builtin it resembles so ordinary ``except ValueError`` code still works::

    StewardError
    ├── ConfigError(ValueError)          a config field has a bad value; names field, value and fix
    ├── InputDataError(ValueError)       the input file cannot be read as declared (columns, format)
    ├── LedgerError                      the ledger cannot be written
    │   └── LedgerIntegrityError         verification found an edited, missing or reordered event/artifact
    │       └── ProofError(ValueError)   a Merkle inclusion or consistency proof does not hold (or is malformed)
    ├── RegistryError(KeyError)          unknown plugin name; lists the valid ones
    ├── DependencyMissingError(ImportError)  an optional extra is not installed; names the install command
    ├── DataStageError                   the data stage could not finish (e.g. nothing left to split)
    │   └── DataLossError                one reason would drop too many rows, or a whole label
    ├── TrainStageError                  the train stage could not run (inputs, model, checkpoint)
    │   └── PrivacyBudgetExceeded        the next step would spend more ε than the configured budget
    ├── FederatedError                   a federation cannot run (too few sites left, no round aggregated)
    │   └── SiteError                    one site cannot take part (its data stage, labels, model or update);
    │                                    names the site; the round goes on without it when enough remain
    ├── EvaluateStageError               the evaluate stage could not run (no model, changed inputs)
    │   └── GateFailed                   the scorecard was written, and one or more release gates failed
    ├── DetectorError                    the built-in injection detector cannot be built, or its cached copy
    │                                    fails its checks (key, weight hashes)
    ├── AuditChainError                  a service's audit log fails verification at start-up
    ├── ModelIntegrityError              a shipped model file's hash differs from its pin; it is not loaded
    ├── RunFolderError                   a stage's record in the run folder (manifest, scorecard, choice) is
    │                                    not what it should be (steward.records); names file, field and fix
    └── ServiceError                     a refused HTTP request (steward.service.errors), in either service's shape
"""

from __future__ import annotations


class StewardError(Exception):
    """Root of every error Steward raises deliberately."""


class ConfigError(StewardError, ValueError):
    """A configuration value is invalid. The message names the field, the value and the fix."""


class InputDataError(StewardError, ValueError):
    """The input data cannot be loaded as declared (missing columns, unknown format, bad encoding)."""


class LedgerError(StewardError):
    """The run ledger cannot be read or written."""


class LedgerIntegrityError(LedgerError):
    """Verification found a ledger event or artifact that was edited, deleted, reordered or forged."""

    def __init__(self, message: str, *, event_index: int | None = None) -> None:
        super().__init__(message)
        self.event_index = event_index


class ProofError(LedgerIntegrityError, ValueError):
    """A transparency-log proof fails: the entry is not in the tree, or the newer tree does not extend the
    older one. The message says which sizes and what that means (rewritten, truncated, forked)."""


class RegistryError(StewardError, KeyError):
    """A plugin name is not registered. The message lists the valid names."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0]) if self.args else ""


class DependencyMissingError(StewardError, ImportError):
    """An optional dependency is missing. The message names the command that installs it."""


class DataStageError(StewardError):
    """The data stage cannot produce valid outputs from what is left after cleaning."""


class DataLossError(DataStageError):
    """The data stage would lose more than the loss guard allows; nothing was written to ``data/``."""


class TrainStageError(StewardError):
    """The train stage cannot run: missing data-stage outputs, an unusable model or checkpoint."""


class PrivacyBudgetExceeded(TrainStageError):
    """Training stopped: one more step would spend more privacy (ε) than the configured budget."""

    def __init__(self, message: str, *, epsilon_spent: float, target_epsilon: float) -> None:
        super().__init__(message)
        self.epsilon_spent = epsilon_spent
        self.target_epsilon = target_epsilon


class FederatedError(StewardError):
    """A federation cannot run or finish: fewer sites than ``federated.min_sites``, no round aggregated."""


class SiteError(FederatedError):
    """One site cannot take part: its data stage failed, its labels or model differ from the federation's, or
    its update is malformed. The message names the site."""

    def __init__(self, site: str, message: str) -> None:
        super().__init__(f"site {site!r}: {message}")
        self.site = site


class EvaluateStageError(StewardError):
    """The evaluate stage cannot run: no trained model, data that changed since training, bad columns."""


class CompressStageError(StewardError):
    """The compress stage cannot run (no scorecard to judge against, an unsupported model)."""


class GateFailed(EvaluateStageError):
    """One or more release gates failed. The scorecard and report are written; ``failed`` names the gates."""

    def __init__(self, message: str, *, failed: list[str] | None = None) -> None:
        super().__init__(message)
        self.failed = failed or []


class DetectorError(StewardError):
    """The built-in injection detector could not be built, or its cached copy fails its checks."""


class AuditChainError(StewardError):
    """The audit log a service would append to fails verification: its decisions could not be proven."""


class RunFolderError(StewardError, ValueError):
    """A record a stage wrote (train manifest, scorecard, chosen artifact) cannot be read as one. The
    message names the file, the field and the command that writes it again."""


class ModelIntegrityError(StewardError):
    """A model file Steward loads from a dependency does not have the pinned hash, so it is not loaded."""
