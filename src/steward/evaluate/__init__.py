"""The evaluate stage: a responsibility scorecard (performance, fairness, counterfactual fairness,
robustness, calibration, explainability, privacy leakage, resources), release gates, report, model card."""

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from steward.evaluate.stage import EvaluateResult, run

__all__ = ["EvaluateResult", "run"]


def __getattr__(name: str) -> Any:
    # Loaded on first use (PEP 562): ``steward.evaluate.config`` is read by the config that composes every stage,
    # which must not pull in this stage's libraries just to validate a YAML file.
    if name in __all__:
        from steward.evaluate import stage

        return getattr(stage, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
