"""The scorecard as one self-contained HTML page: plots are inline SVG (matplotlib), no script, no network.

Every text from the data (attack examples, attributions) goes through Jinja2's autoescaping: a test row
containing markup is shown, never executed.
"""

from __future__ import annotations

from typing import Any

from markupsafe import Markup

from steward.figures import figure, fmt, svg

# The verdict banner and the gates table, shared by the classifier and the generative reports.
GATES_TEMPLATE = """<div class="banner {{ 'pass' if sc.passed else 'fail' }}" id="verdict">
{% if not sc.gates %}No release gates configured.{% elif sc.passed %}All {{ sc.gates|length }} release gates passed.
{% else %}{{ sc.gates|rejectattr('passed')|list|length }} of {{ sc.gates|length }} release gates FAILED:
{{ sc.gates|rejectattr('passed')|map(attribute='gate')|join(', ') }}.{% endif %}</div>

<h2>Release gates</h2>
{% if sc.gates %}<table id="gates"><tr><th>gate</th><th>figure</th><th>measured</th><th>threshold</th><th>result</th></tr>
{% for g in sc.gates %}<tr><td>{{ g.gate }}</td><td>{{ g.probe }}.{{ g.figure }}</td>
<td>{{ fmt(g.measured) }}</td><td>{{ g.threshold }}</td>
<td class="{{ 'pass' if g.passed else 'fail' }}">{{ 'pass' if g.passed else 'FAIL' }}</td></tr>{% endfor %}</table>
{% else %}<p class="muted">Set <code>{{ gates_field }}</code> to block releases that fall below your bars.</p>{% endif %}"""


_TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Steward scorecard — {{ sc.model.base_model.id }}</title>
<style>
body{font:15px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0 auto;max-width:1100px;padding:1.5rem;color:#1b1f24}
h1{font-size:1.6rem;margin:.2rem 0} h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #d0d7de;padding-bottom:.2rem}
table{border-collapse:collapse;margin:.5rem 0} td,th{border:1px solid #d0d7de;padding:.25rem .55rem;text-align:left;vertical-align:top}
th{background:#f6f8fa} .pass{color:#1a7f37;font-weight:600} .fail{color:#cf222e;font-weight:600}
.muted{color:#57606a} .plots{display:flex;flex-wrap:wrap;gap:1rem} figure{margin:0} svg{max-width:100%;height:auto}
.tok{padding:0 1px;border-radius:2px} .banner{padding:.6rem 1rem;border-radius:6px;margin:1rem 0;font-weight:600}
.banner.pass{background:#dafbe1} .banner.fail{background:#ffebe9} code{font-size:.9em}
</style></head><body>
<h1>Responsibility scorecard</h1>
<p class="muted">Model <code>{{ sc.model.base_model.id }}</code> ({{ sc.model.method }}), task {{ sc.task }},
{{ sc.rows }} rows of the {{ sc.split }} split · Steward {{ sc.provenance.steward_version }} ·
{{ "%.1f"|format(sc.timing.seconds) }} s</p>
{% include "gates" %}

<h2>Composite</h2>
<p><b>{{ fmt(sc.composite.value) }}</b> = {{ sc.composite.formula }}</p>
<table><tr>{% for k in sc.composite.factors %}<th>{{ k }}</th>{% endfor %}</tr>
<tr>{% for v in sc.composite.factors.values() %}<td>{{ fmt(v) }}</td>{% endfor %}</tr></table>

<h2>All figures</h2>
<table id="figures"><tr><th>probe</th><th>figure</th><th>value</th><th>unit</th><th>{{ (sc.config.confidence*100)|round|int }} % CI</th><th>note</th></tr>
{% for name, p in sc.probes.items() %}{% if p.skipped %}<tr><td>{{ name }}</td><td colspan="5" class="muted">skipped: {{ p.skipped }}</td></tr>{% endif %}
{% for f, v in p.figures.items() %}<tr><td>{{ name }}</td><td>{{ f }}</td><td>{{ fmt(v.value) }}</td><td>{{ v.unit }}</td>
<td>{% if v.ci %}{{ fmt(v.ci[0]) }} – {{ fmt(v.ci[1]) }}{% endif %}</td><td class="muted">{{ v.note or "" }}</td></tr>{% endfor %}{% endfor %}</table>

{% for section in sections %}<h2>{{ section.title }}</h2>
{% if section.text %}<p class="muted">{{ section.text }}</p>{% endif %}
{% if section.plots %}<div class="plots">{% for svg in section.plots %}<figure>{{ svg }}</figure>{% endfor %}</div>{% endif %}
{{ section.html }}{% endfor %}
<h2>Time per probe</h2>
<table>{% for k, v in sc.timing.share.items() %}<tr><td>{{ k }}</td><td>{{ fmt(sc.probes[k].seconds) }} s</td><td>{{ (v*100)|round(1) }} %</td></tr>{% endfor %}</table>
</body></html>
"""


def _fairness_plots(p: dict[str, Any]) -> list[Markup]:
    """Binary: accuracy and selection rate per group. One-vs-rest: selection rate per label, a bar per group."""
    import numpy as np

    out = []
    for col, per_label in (p.get("details", {}).get("columns") or {}).items():
        labels = list(per_label)
        if len(labels) == 1:
            res = per_label[labels[0]]
            groups = list(res["by_group"])
            series = [(m, [res["by_group"][g].get(m) or 0.0 for g in groups],
                       [res["by_group"][g].get(f"{m}_ci") for g in groups]) for m in ("accuracy", "selection_rate")]
            ticks = [f"{g}\n(n={res['by_group'][g]['n']})" + (" *" if g in res["too_small"] else "") for g in groups]
            title = f"by {col}, favourable label {labels[0]!r}"
        else:
            groups = list(per_label[labels[0]]["by_group"])
            series = [(g, [per_label[lbl]["by_group"][g].get("selection_rate") or 0.0 for lbl in labels],
                       [per_label[lbl]["by_group"][g].get("selection_rate_ci") for lbl in labels]) for g in groups]
            ticks = labels
            title = f"selection rate by {col}, each label vs the rest"
        fig, ax = figure(max(4.0, 0.9 * len(ticks) + 2), 3.4)
        x = np.arange(len(ticks))
        width = 0.8 / len(series)
        for k, (name, vals, cis) in enumerate(series):
            lo = [v - (c[0] if c else v) for v, c in zip(vals, cis, strict=True)]
            hi = [(c[1] if c else v) - v for v, c in zip(vals, cis, strict=True)]
            ax.bar(x + (k - (len(series) - 1) / 2) * width, vals, width, yerr=np.clip([lo, hi], 0.0, None),
                   capsize=2, label=str(name).replace("_", " "))
        ax.set_xticks(x, ticks, rotation=0 if len(ticks) < 5 else 40, ha="center" if len(ticks) < 5 else "right",
                      fontsize=8)
        ax.set_ylim(0, 1.05)
        ax.set_title(title + " (error bars: Wilson CI)", fontsize=9)
        ax.legend(fontsize=7)
        out.append(svg(fig))
    return out


def _calibration_plots(p: dict[str, Any]) -> list[Markup]:
    d = p.get("details") or {}
    if not d.get("bins"):
        return []
    fig, ax = figure(4.2, 3.8)
    bins = [b for b in d["bins"] if b["n"]]
    ax.plot([0, 1], [0, 1], "--", color="#8c959f", label="perfect calibration")
    ax.bar([(b["lower"] + b["upper"]) / 2 for b in bins], [b["accuracy"] for b in bins],
           width=[b["upper"] - b["lower"] for b in bins], edgecolor="#0969da", color="#54aeff", alpha=.7,
           label="accuracy in bin")
    ax.plot([b["confidence"] for b in bins], [b["accuracy"] for b in bins], "o", color="#0550ae", ms=3)
    ax.set_xlabel("confidence")
    ax.set_ylabel("accuracy")
    ax.set_title("reliability diagram", fontsize=9)
    ax.legend(fontsize=8)
    rel = svg(fig)
    fig, ax = figure(4.2, 3.8)
    curve = [c for c in d["coverage_curve"] if c["accuracy"] is not None]
    ax.plot([c["coverage"] for c in curve], [c["accuracy"] for c in curve], "o-", ms=3, color="#8250df")
    if d.get("abstain_threshold") is not None:
        chosen = min(curve, key=lambda c: abs(c["threshold"] - d["abstain_threshold"]))
        ax.plot([chosen["coverage"]], [chosen["accuracy"]], "s", color="#cf222e",
                label=f"abstain below {d['abstain_threshold']:.2f}")
        ax.legend(fontsize=8)
    ax.set_xlabel("coverage (share answered)")
    ax.set_ylabel("accuracy of answered rows")
    ax.set_title("abstention: coverage vs accuracy", fontsize=9)
    return [rel, svg(fig)]


def _robustness_plot(p: dict[str, Any]) -> list[Markup]:
    attacks = (p.get("details") or {}).get("attacks") or {}
    if not attacks:
        return []
    fig, ax = figure(4.6, 3.4)
    for name, a in attacks.items():
        ax.plot([c["max_edit_share"] for c in a["curve"]], [c["success_rate"] for c in a["curve"]], "o-", ms=3,
                label=f"{name} (queries ≈ {a['mean_queries']:.0f})")
    ax.set_xlabel("edit budget (share of words changed)")
    ax.set_ylabel("attack success rate")
    ax.set_ylim(0, 1.02)
    ax.set_title("robustness curve", fontsize=9)
    ax.legend(fontsize=8)
    return [svg(fig)]


def _confusion_plot(p: dict[str, Any]) -> list[Markup]:
    d = p.get("details") or {}
    cm, labels = d.get("confusion_matrix"), d.get("labels")
    if not cm or len(labels) > 30:
        return []
    fig, ax = figure(min(7.0, 1.2 + 0.5 * len(labels)), min(6.0, 1.0 + 0.45 * len(labels)))
    ax.imshow(cm, cmap="Blues")
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right", fontsize=7)
    ax.set_yticks(range(len(labels)), labels, fontsize=7)
    for i, row in enumerate(cm):
        for j, v in enumerate(row):
            ax.text(j, i, str(v), ha="center", va="center", fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title("confusion matrix", fontsize=9)
    return [svg(fig)]


def _counterfactual_plot(p: dict[str, Any]) -> list[Markup]:
    cats = (p.get("details") or {}).get("by_category") or {}
    if not cats:
        return []
    fig, ax = figure(4.6, 3.0)
    names = list(cats)
    ax.barh(names, [cats[c]["flip_rate"] for c in names], color="#bf3989")
    for i, c in enumerate(names):
        ax.text(cats[c]["flip_rate"], i, f"  n={cats[c]['n']}", va="center", fontsize=7)
    ax.set_xlim(0, 1)
    ax.set_xlabel("flip rate")
    ax.set_title("counterfactual identity swaps", fontsize=9)
    return [svg(fig)]


_WORD_START = ("▁", "Ġ")  # SentencePiece and byte-level BPE mark the first piece of a word


def whole_words(tokens: list[str], scores: list[float]) -> tuple[list[str], list[float]]:
    """Word pieces joined into the words a reader sees, each scored with the sum of its pieces' scores.

    Attributions are per word piece (``un ##believ ##able``); summing keeps each word's total share of
    the explanation, so ranking by words and by pieces agree on which word mattered.
    """
    words: list[str] = []
    out: list[float] = []
    marked = any(t.startswith(_WORD_START) for t in tokens)
    for tok, score in zip(tokens, scores, strict=True):
        cont = tok.startswith("##") or (marked and not tok.startswith(_WORD_START))
        piece = tok[2:] if tok.startswith("##") else tok.lstrip("".join(_WORD_START))
        if cont and words:
            words[-1] += piece
            out[-1] += score
        else:
            words.append(piece)
            out.append(score)
    return words, out


def _highlight(tokens: list[str], scores: list[float]) -> Markup:
    from markupsafe import escape

    tokens, scores = whole_words(tokens, scores)
    top = max((abs(s) for s in scores), default=0.0) or 1.0
    parts = []
    for t, s in zip(tokens, scores, strict=True):
        a = min(1.0, abs(s) / top) * 0.85
        color = f"rgba(26,127,55,{a:.2f})" if s >= 0 else f"rgba(207,34,46,{a:.2f})"
        parts.append(f'<span class="tok" style="background:{color}" title="{s:.4f}">{escape(t)}</span>')
    return Markup(" ".join(parts))


def _table(rows: list[dict[str, Any]], columns: list[str], table_id: str = "") -> Markup:
    from markupsafe import escape

    head = "".join(f"<th>{escape(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{escape(fmt(r.get(c)))}</td>" for c in columns) + "</tr>" for r in rows)
    attr = f' id="{escape(table_id)}"' if table_id else ""
    return Markup(f"<table{attr}><tr>{head}</tr>{body}</table>")


def _baseline_table(p: dict[str, Any]) -> Markup:
    figs = p.get("figures") or {}
    f1 = "entity_f1" if "entity_f1" in figs else "macro_f1"
    base_f1 = "baseline_entity_f1" if f1 == "entity_f1" else "baseline_macro_f1"
    if base_f1 not in figs:
        return Markup("")
    lift = (figs.get("f1_lift") or {}).get("value")
    verdict = ("" if lift is None else '<p class="pass">The model beats the baseline.</p>' if lift > 0 else
               '<p class="fail" id="baseline-warning">The model is not shown to beat the majority-class baseline.'
               "</p>")
    rows = [{"": "model", "accuracy": figs["accuracy"]["value"], f1: figs[f1]["value"],
             "CI": "–".join(fmt(v) for v in figs[f1].get("ci") or []) or None},
            {"": f"baseline ({figs[base_f1].get('note', '').removeprefix('majority-class baseline: ')})",
             "accuracy": figs["baseline_accuracy"]["value"], f1: figs[base_f1]["value"], "CI": None}]
    return Markup(verdict) + _table(rows, ["", "accuracy", f1, "CI"], table_id="baseline")


def _per_class_table(p: dict[str, Any]) -> Markup:
    d = p.get("details") or {}
    per = d.get("per_class") or d.get("per_type") or {}
    rows = [{"class": k, **v} for k, v in per.items() if isinstance(v, dict) and "support" in v and "avg" not in k]
    if not rows:
        return Markup("")
    return _table(rows, ["class", "precision", "recall", "f1-score", "support"], table_id="per-class")


_EXAMPLE_TEXTS = ("original", "counterfactual", "adversarial", "text")


def hide_offensive(probes: dict[str, Any], threshold: float) -> dict[str, Any]:
    """A copy of ``probes`` whose example texts scoring ``threshold`` or more for toxicity are replaced by
    a marker (explanations of such a text lose their tokens too)."""
    import copy

    from steward.data.screen import toxicity_scores

    out = copy.deepcopy(probes)
    examples = [ex for p in out.values() for ex in p.get("examples") or []]
    texts = sorted({ex[k] for ex in examples for k in _EXAMPLE_TEXTS if isinstance(ex.get(k), str)})
    score = dict(zip(texts, toxicity_scores(texts).tolist(), strict=True)) if texts else {}
    for ex in examples:
        hidden = False
        for k in _EXAMPLE_TEXTS:
            if isinstance(ex.get(k), str) and score[ex[k]] >= threshold:
                ex[k] = f"[hidden: offensive text, toxicity {score[ex[k]]:.2f}]"
                hidden = True
        for method in ("integrated_gradients", "occlusion"):
            if hidden and method in ex:
                ex[method] = {"tokens": ["[hidden]"], "scores": [0.0]}
    return out


def render_report(sc: dict[str, Any], *, hide_offensive_at: float | None = None) -> str:
    """The scorecard dictionary (as written to scorecard.json) rendered to one HTML page."""

    probes = sc["probes"] if hide_offensive_at is None else hide_offensive(sc["probes"], hide_offensive_at)
    sections: list[dict[str, Any]] = []
    if "performance" in probes:
        sections.append({"title": "Performance", "plots": _confusion_plot(probes["performance"]),
                         "text": "The model beside the majority-class baseline (always the most frequent class): "
                                 "a model that does not beat it has learned nothing useful.",
                         "html": _baseline_table(probes["performance"]) + _per_class_table(probes["performance"])})
    if "fairness" in probes and not probes["fairness"].get("skipped"):
        d = probes["fairness"]["details"]
        sections.append({"title": "Group fairness", "plots": _fairness_plots(probes["fairness"]), "html": "",
                         "text": f"Favourable outcome(s): {', '.join(map(repr, d['favourable_labels']))}"
                                 f"{' (each vs the rest)' if d['one_vs_rest'] else ''}. Groups under "
                                 f"{d['min_group_size']} rows are shown but not judged (marked *)."})
    if "counterfactual" in probes and not probes["counterfactual"].get("skipped"):
        ex = probes["counterfactual"]["examples"]
        sections.append({"title": "Counterfactual fairness", "plots": _counterfactual_plot(probes["counterfactual"]),
                         "html": _table(ex, ["pair", "original", "counterfactual", "original_label",
                                             "counterfactual_label", "shift"]) if ex else ""})
    if "robustness" in probes and not probes["robustness"].get("skipped"):
        ex = probes["robustness"]["examples"]
        sections.append({"title": "Robustness", "plots": _robustness_plot(probes["robustness"]),
                         "html": _table(ex, ["attack", "original", "adversarial", "label", "new_label", "queries"])
                         if ex else ""})
    if "calibration" in probes and not probes["calibration"].get("skipped"):
        sections.append({"title": "Calibration and abstention", "plots": _calibration_plots(probes["calibration"]),
                         "html": ""})
    if "explainability" in probes and not probes["explainability"].get("skipped"):
        rows = []
        for ex in probes["explainability"]["examples"]:
            for method in ("integrated_gradients", "occlusion"):
                if method in ex:
                    rows.append(f"<tr><td>{method}</td><td>{_highlight(ex[method]['tokens'], ex[method]['scores'])}"
                                f"</td><td>{Markup.escape(ex['label'])}</td></tr>")
        methods = probes["explainability"]["details"]["methods"]
        sections.append({"title": "Explanations", "plots": [],
                         "text": "Green tokens push toward the predicted label, red away from it.",
                         "html": _table([{"method": m, **v} for m, v in methods.items()],
                                        ["method", "comprehensiveness", "sufficiency"])
                         + Markup("<table id='attributions'><tr><th>method</th><th>tokens</th><th>label</th></tr>"
                                  + "".join(rows) + "</table>")})
    if "resources" in probes:
        figs = probes["resources"]["figures"]
        sections.append({"title": "Resources", "plots": [],
                         "html": _table([{"measure": k, "value": v["value"], "unit": v["unit"], "note": v.get("note")}
                                         for k, v in figs.items()], ["measure", "value", "unit", "note"])})
    return report_env().from_string(_TEMPLATE).render(sc=sc, sections=sections, fmt=fmt, gates_field="evaluate.gates")


def report_env() -> Any:
    """The Jinja2 environment of both reports: autoescaping on, the shared gates block as "gates"."""
    from jinja2 import DictLoader, Environment

    return Environment(autoescape=True, loader=DictLoader({"gates": GATES_TEMPLATE}))
