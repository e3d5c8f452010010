"""Re-audit on feedback: performance and group fairness of the served model on the cases people labelled.

Reads the audit log's feedback records (each names its decision and may carry the case's sensitive
attributes), recomputes accuracy and macro F1 with bootstrap intervals and the group gaps, and judges the
evaluate stage's performance and fairness gates against them.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from steward.records import TrainManifest
from steward.serve.config import ServeRun


def collect(log: Any) -> list[dict[str, Any]]:
    """The accepted label of each decision that has feedback; re-audit and retraining use only these.

    Accepted: the first label each key gave a decision (the service refuses a second; a replica racing it
    cannot make a later one count). A reviewer's label outranks the label of the key that asked; when the
    labels of the outranking kind disagree, the case is disputed and left out (``disputed`` counts them)."""
    return resolve(log)[0]


def resolve(log: Any) -> tuple[list[dict[str, Any]], int]:
    """(accepted cases, number of disputed decisions) from the audit log's feedback records."""
    first: dict[str, dict[str, dict[str, Any]]] = {}  # decision -> key -> its first feedback
    for rec in log.records():
        if rec["kind"] == "feedback" and rec["ref"] and not rec.get("erased"):  # an erased label is gone
            out = json.loads(rec["output"])
            # Records written before feedback was scoped came from keys that could label anything: reviewers.
            case = {"decision_id": rec["ref"], "label": out["label"], "predicted": out["predicted"],
                    "groups": out.get("groups") or {}, "ts": rec["ts"], "basis": out.get("basis", "reviewer")}
            first.setdefault(rec["ref"], {}).setdefault(rec["key_id"] or "", case)
    cases, disputed = [], 0
    for by_key in first.values():
        labels = list(by_key.values())
        reviewed = [c for c in labels if c["basis"] == "reviewer"]
        chosen = reviewed or labels
        if len({c["label"] for c in chosen}) > 1:
            disputed += 1
            continue
        cases.append({k: v for k, v in chosen[-1].items() if k != "basis"})
    return cases, disputed


def reaudit(cfg: ServeRun) -> dict[str, Any]:
    from steward.atomic import write_json
    from steward.config_base import config_digest
    from steward.evaluate.gates import judge
    from steward.evaluate.metrics import (
        accuracy,
        bootstrap_ci,
        group_fairness,
        macro_f1,
    )
    from steward.ledger.store import Ledger, artifact, now_iso
    from steward.service.audit import AuditLog, database_url
    from steward.service.core import record_cipher

    run_dir = Path(cfg.run_dir)
    started, t0 = now_iso(), time.perf_counter()
    log = AuditLog(database_url(cfg.serve.database_url, run_dir), record_cipher(cfg.serve, run_dir, create=False))
    cases, disputed = resolve(log)
    labels = TrainManifest.read(run_dir / "train" / "manifest.json").labels
    index = {lbl: i for i, lbl in enumerate(labels)}
    cases = [c for c in cases if c["label"] in index and c["predicted"] in index]
    ecfg = cfg.evaluate
    out: dict[str, Any] = {"feedback_cases": len(cases), "disputed_cases": disputed, "labels": labels}
    probes: dict[str, Any] = {}
    if cases:
        y = np.array([index[c["label"]] for c in cases])
        p = np.array([index[c["predicted"]] for c in cases])
        ci = {"n": ecfg.bootstrap, "confidence": ecfg.confidence, "random_state": ecfg.seed}

        def f1(a: np.ndarray, b: np.ndarray) -> float:
            return macro_f1(a, b, len(labels))

        probes["performance"] = {"figures": {
            "accuracy": {"value": accuracy(y, p), "unit": "fraction", "ci": bootstrap_ci(accuracy, y, p, **ci)},
            "macro_f1": {"value": f1(y, p), "unit": "fraction", "ci": bootstrap_ci(f1, y, p, **ci)}}}
        columns = sorted({k for c in cases for k in c["groups"]})
        fair: dict[str, Any] = {}
        worst: dict[str, float] = {}
        positives = [labels.index(n) for n in ("1", "positive") if n in labels][:1] or list(range(len(labels)))
        for col in columns:
            groups = np.array([c["groups"].get(col, "(missing)") for c in cases])
            fair[col] = {}
            for pos in positives:
                res = group_fairness(y, p, groups, positive=pos, min_group_size=ecfg.min_group_size)
                fair[col][labels[pos]] = res
                for k in ("dp_difference", "eo_difference"):
                    if res.get(k) is not None:
                        worst[k] = max(worst.get(k, 0.0), res[k])
        probes["fairness"] = {"figures": {k: {"value": v, "unit": "fraction"} for k, v in worst.items()},
                              "details": {"columns": fair}}
        if not worst:
            probes["fairness"]["skipped"] = ("no feedback carried groups with two groups of at least "
                                             f"{ecfg.min_group_size} cases")
    fairness_gates = ecfg.gates.model_copy(update={k: None for k in ecfg.gates.model_dump() if k not in (
        "min_accuracy", "min_f1", "max_dp_difference", "max_eo_difference")})
    gates = judge(fairness_gates, probes, "classification") if cases else []
    out.update(probes=probes, gates=[g.to_dict() for g in gates], passed=all(g.passed for g in gates),
               seconds=round(time.perf_counter() - t0, 3))
    path = run_dir / "reaudit" / "reaudit.json"
    write_json(path, out)
    Ledger(run_dir).append(stage="reaudit", started_at=started, config_digest=config_digest(ecfg), inputs=[],
                           outputs=[artifact(path, run_dir, "reaudit")],
                           summary={"feedback_cases": len(cases), "passed": out["passed"],
                                    "failed_gates": [g.gate for g in gates if not g.passed]})
    return out
