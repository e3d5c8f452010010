"""The evaluate stage: a responsibility scorecard (performance, fairness, counterfactual fairness,
robustness, calibration, explainability, privacy leakage, resources), release gates, report, model card."""

from steward.evaluate.stage import EvaluateResult, run

__all__ = ["EvaluateResult", "run"]
