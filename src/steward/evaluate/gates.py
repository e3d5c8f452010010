"""Release gates: each configured bar is judged against one figure of one probe. A gate whose figure was
not measured fails — an unmeasured bar is not a passed bar."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from steward.evaluate.config import GateSettings

# gate -> (probe, figure, comparison). NER's F1 is the entity F1.
GATES: dict[str, tuple[str, str, str]] = {
    "min_accuracy": ("performance", "accuracy", ">="),
    "min_f1": ("performance", "macro_f1", ">="),
    "min_f1_lift": ("performance", "f1_lift", ">"),  # strictly: equal to the baseline is not better
    "max_dp_difference": ("fairness", "dp_difference", "<="),
    "max_eo_difference": ("fairness", "eo_difference", "<="),
    "max_cf_flip_rate": ("counterfactual", "flip_rate", "<="),
    "max_attack_success": ("robustness", "attack_success", "<="),
    "max_ece": ("calibration", "ece", "<="),
    "min_comprehensiveness": ("explainability", "comprehensiveness", ">="),
    "max_mia_auc": ("privacy", "mia_auc", "<="),
    "max_canary_exposure": ("privacy", "canary_exposure_max", "<="),
    "max_latency_ms_p95": ("resources", "latency_ms_p95", "<="),
}


@dataclass(frozen=True)
class GateResult:
    gate: str
    threshold: float
    measured: float | None
    passed: bool
    probe: str
    figure: str
    message: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def judge(gates: GateSettings, probes: dict[str, dict[str, Any]], task: str) -> list[GateResult]:
    """Judge every configured gate against the scorecard's ``probes`` section."""
    out = []
    for gate, threshold in gates.model_dump().items():
        if threshold is None:
            continue
        probe, figure, op = GATES[gate]
        if gate not in gates.model_fields_set and figure not in ((probes.get(probe) or {}).get("figures") or {}):
            # A default gate (min_f1_lift) on a probe the user chose not to run, or on a scorecard written
            # before the figure existed; a gate the user set fails instead.
            continue
        if gate == "min_f1" and task == "ner":
            figure = "entity_f1"
        section = probes.get(probe) or {}
        value = ((section.get("figures") or {}).get(figure) or {}).get("value")
        if value is None:
            why = section.get("skipped") or ("probe not run" if not section else "figure not measured")
            out.append(GateResult(gate, threshold, None, False, probe, figure,
                                  f"{gate}: {probe}.{figure} was not measured ({why}); the gate cannot pass"))
            continue
        passed = {">=": value >= threshold, ">": value > threshold, "<=": value <= threshold}[op]
        verdict = "passed" if passed else "FAILED"
        if gate == "min_f1_lift" and not passed:
            base = ((section.get("details") or {}).get("baseline") or {})
            verdict += (" — the model is not shown to beat the majority-class baseline"
                        + (f" ({base['rule']}: macro-F1 {base['macro_f1']:.4g})" if base else ""))
        out.append(GateResult(gate, threshold, float(value), passed, probe, figure,
                              f"{gate}: {probe}.{figure} = {value:.4g} {op} {threshold:g}? {verdict}"))
    return out


# chat gate -> (probe, figure, comparison, section): "figures" judges the fine-tuned model's figure, "delta"
# its difference from the base model.
CHAT_GATES: dict[str, tuple[str, str, str, str]] = {
    "min_task_accuracy": ("quality", "task_accuracy", ">=", "figures"),
    "max_harmful_compliance": ("safety", "harmful_compliance", "<=", "figures"),
    "max_over_refusal": ("safety", "over_refusal", "<=", "figures"),
    "max_safety_regression": ("safety", "harmful_compliance", "<=", "delta"),
    "max_toxicity_rate": ("toxicity", "toxic_rate.provocative", "<=", "figures"),
    "max_attack_success": ("injection", "attack_success_guarded", "<=", "figures"),
    "max_counterfactual_sentiment_gap": ("counterfactual", "sentiment_gap_abs", "<=", "figures"),
    "max_perplexity": ("quality", "perplexity", "<=", "figures"),
    "max_crows_stereotype": ("bias", "crows_stereotype", "<=", "figures"),
    "max_bbq_bias_ambiguous": ("bias", "bbq_bias_ambiguous_abs", "<=", "figures"),
    "max_bias_regression": ("bias", "crows_stereotype", "<=", "delta"),
    "max_canary_exposure": ("privacy", "canary_exposure_max", "<=", "figures"),
    "max_pii_regurgitation": ("privacy", "pii_regurgitation", "<=", "figures"),
    "max_mia_auc": ("privacy", "mia_auc", "<=", "figures"),
    "max_ms_per_token": ("resources", "ms_per_token", "<=", "figures"),
}


def judge_chat(gates: Any, probes: dict[str, dict[str, Any]]) -> list[GateResult]:
    """Judge every configured chat gate; a ``delta`` gate needs the base model's run of the probe."""
    out = []
    for gate, threshold in gates.model_dump().items():
        if threshold is None:
            continue
        probe, figure, op, where = CHAT_GATES[gate]
        section = probes.get(probe) or {}
        value = ((section.get(where) or {}).get(figure) or {}).get("value")
        name = f"{probe}.{figure}" + (" − base" if where == "delta" else "")
        if value is None:
            if gate not in gates.model_fields_set:
                continue  # a default bar the run cannot measure (no canaries planted): not judged
            why = section.get("skipped") or ("probe not run" if not section else
                                             "the base model was not scored" if where == "delta" else
                                             "figure not measured")
            out.append(GateResult(gate, threshold, None, False, probe, figure,
                                  f"{gate}: {name} was not measured ({why}); the gate cannot pass"))
            continue
        passed = value >= threshold if op == ">=" else value <= threshold
        out.append(GateResult(gate, threshold, float(value), passed, probe, figure,
                              f"{gate}: {name} = {value:.4g} {op} {threshold:g}? {'passed' if passed else 'FAILED'}"))
    return out
