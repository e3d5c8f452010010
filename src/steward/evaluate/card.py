"""MODEL_CARD.md in Hugging Face's format: YAML front matter (built with huggingface_hub's ModelCardData, so
the Hub and ``ModelCard.load`` parse it, evaluation results included) and the sections auditors ask for."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from steward.figures import fmt
from steward.records import TrainManifest


def _fig(sc: dict[str, Any], probe: str, name: str) -> float | None:
    return (((sc["probes"].get(probe) or {}).get("figures") or {}).get(name) or {}).get("value")


def _baseline_line(perf: dict[str, Any]) -> list[str]:
    base = (perf.get("details") or {}).get("baseline")
    lift = ((perf.get("figures") or {}).get("f1_lift") or {}).get("value")
    if not base or lift is None:
        return []
    verdict = "beats it" if lift > 0 else "is **not shown to beat it**"
    return ["", f"Majority-class baseline ({base['rule']}): accuracy {fmt(base['accuracy'])}, macro-F1 "
                f"{fmt(base['macro_f1'])}; the model {verdict} (f1_lift {fmt(lift)}: the lower end of its F1 "
                f"interval minus the baseline's F1)."]


def render_card(sc: dict[str, Any], run_dir: Path) -> str:
    from huggingface_hub import EvalResult, ModelCard, ModelCardData

    base = sc["model"]["base_model"]
    task_type = "token-classification" if sc["task"] == "ner" else "text-classification"
    dataset = f"{Path(run_dir).name} ({sc['split']} split)"
    metrics = [("accuracy", "accuracy"), ("macro_f1", "f1"), ("entity_f1", "f1")]
    results = [EvalResult(task_type=task_type, dataset_type="custom", dataset_name=dataset, metric_type=mtype,
                          metric_name=name, metric_value=round(v, 4))
               for name, mtype in metrics if (v := _fig(sc, "performance", name)) is not None]
    data = ModelCardData(
        language="en", library_name="transformers", pipeline_tag=task_type,
        base_model=base["id"] if base.get("id") and not str(base["id"]).startswith("/") else None,
        tags=["steward", "responsible-ai", sc["model"].get("method") or "fine-tuned"],
        model_name=f"steward-{Path(run_dir).name}", eval_results=results or None,
    )
    manifest = run_dir / "train" / "manifest.json"
    train = TrainManifest.read(manifest) if manifest.is_file() else None
    data_card = _read_text(run_dir / "data" / "data_card.md")
    body = _body(sc, train, data_card)
    return str(ModelCard(f"---\n{data.to_yaml()}\n---\n\n{body}"))


def _read_text(path: Path) -> str:
    return path.read_text(encoding="utf-8") if path.is_file() else ""


def _section(title: str, lines: list[str]) -> list[str]:
    return [f"## {title}", "", *lines, ""]


def _body(sc: dict[str, Any], train: TrainManifest | None, data_card: str) -> str:
    probes = sc["probes"]
    labels = ", ".join(f"`{lbl}`" for lbl in sc["labels"])
    out = [f"# {sc['model']['base_model'].get('id')} fine-tuned with Steward", "",
           f"A {sc['task']} model over the labels {labels}, fine-tuned by Steward's train stage "
           f"({sc['model'].get('method')}) and scored by its evaluate stage. Every figure below comes from "
           f"`evaluate/scorecard.json`, which the run's ledger links to the exact model and data hashes.", ""]
    out += _section("Intended use", [
        "- Classifying short texts of the same kind and language (English) as the training data, with the "
        "abstention threshold below: answers under it go to a person.",
        "- Served behind Steward's guarded service (input/output guards, audit log), not on raw user input alone.",
    ])
    out += _section("Out-of-scope use", [
        "- Decisions about people (credit, employment, care) without human review.",
        "- Other languages or domains than the training data; texts much longer than the training maximum.",
        "- Any use where the failed gates below matter, until they pass.",
    ])
    priv = (train.privacy if train else None) or {}
    best = (train.best_metric if train else None) or {}
    tl = [f"- Base model: `{sc['model']['base_model'].get('id')}` (weights sha256 "
          f"`{str(sc['model']['base_model'].get('weights_sha256') or 'n/a')[:16]}…`)",
          f"- Method: {train.method if train else None}; {train.train_rows if train else None} training rows; "
          f"{train.epochs_run if train else None} epochs; best validation {best.get('name')} = {fmt(best.get('value'))}",
          f"- Differential privacy: ε = {priv.get('epsilon')}, δ = {priv.get('delta')}" if priv.get("enabled")
          else "- Differential privacy: not used"]
    if data_card:
        counts = data_card.split("## What was removed and why")[0].split("## Counts")[-1].strip()
        tl += ["", "From the data card (`data/data_card.md`):", "", counts]
    out += _section("Training data", tl)
    perf = probes.get("performance", {}).get("figures", {})
    out += _section("Evaluation results", [
        f"On {sc['rows']} rows of the {sc['split']} split:", "",
        "| figure | value | CI |", "|---|---|---|",
        *[f"| {k} | {fmt(v['value'])} | {' – '.join(fmt(c) for c in v['ci']) if v.get('ci') else ''} |"
          for k, v in perf.items()],
        *_baseline_line(probes.get("performance", {})),
    ])
    fair_lines = []
    for key in ("dp_difference", "eo_difference"):
        if (v := _fig(sc, "fairness", key)) is not None:
            fair_lines.append(f"- {key.replace('_', ' ')}: {fmt(v)} "
                              f"({probes['fairness']['figures'][key].get('note', '')})")
    if (v := _fig(sc, "counterfactual", "flip_rate")) is not None:
        fair_lines.append(f"- counterfactual identity swaps that flip the prediction: {fmt(v)}")
    out += _section("Fairness", fair_lines or [f"- not measured: {probes.get('fairness', {}).get('skipped', 'probe off')}"])
    priv_lines = []
    if (v := _fig(sc, "privacy", "mia_auc")) is not None:
        priv_lines.append(f"- membership-inference (loss threshold) AUC: {fmt(v)} (0.5 = no leakage)")
    priv_lines.append(f"- DP ε: {priv.get('epsilon')}" if priv.get("enabled") else "- trained without DP")
    out += _section("Privacy", priv_lines)
    rob = [f"- {k}: {fmt(v['value'])}" for k, v in (probes.get("robustness", {}).get("figures") or {}).items()]
    cal = probes.get("calibration", {}).get("details") or {}
    out += _section("Robustness and calibration", [*rob, f"- expected calibration error: {fmt(_fig(sc, 'calibration', 'ece'))}", f"- abstention threshold: {fmt(cal.get('abstain_threshold'))} ({cal.get('threshold_source', 'n/a')})"])
    res = probes.get("resources", {}).get("figures") or {}
    out += _section("Resources", [f"- {k}: {fmt(v['value'])} {v['unit']}" for k, v in res.items()])
    gates = sc.get("gates") or []
    lim = [f"- Gate **{g['gate']}** failed: {g['message']}" for g in gates if not g["passed"]]
    lim += ["- Word-level identity swaps are approximate (\"her\" is swapped as a possessive).",
            "- Attacks are black-box and budgeted; a stronger attacker may succeed more often.",
            "- Figures come from one held-out split; they do not guarantee behaviour on shifted data."]
    out += _section("Limitations", lim)
    out += _section("Release gates", [f"- {g['message']}" for g in gates] or ["- none configured"])
    return "\n".join(out)
