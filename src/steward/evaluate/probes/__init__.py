"""The probes, one module per dimension, all registered in :data:`PROBES` (importing this package registers them)."""

from steward.evaluate.probes import (  # noqa: F401  (imported to register)
    calibration,
    counterfactual,
    explainability,
    fairness,
    performance,
    privacy,
    resources,
    robustness,
)
from steward.evaluate.probes.base import PROBES, EvalContext, Figure, ProbeResult

__all__ = ["PROBES", "EvalContext", "Figure", "ProbeResult"]
