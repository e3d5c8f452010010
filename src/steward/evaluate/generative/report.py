"""The generative scorecard as one self-contained HTML page (inline SVG plots, no script, no network) and
its model card sections. Every text from a dataset or a model's answer goes through Jinja2's autoescaping."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from markupsafe import Markup

from steward.figures import figure, fmt, svg

_TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Steward generative scorecard — {{ sc.model.base_model.id }}</title>
<style>
body{font:15px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0 auto;max-width:1100px;padding:1.5rem;color:#1b1f24}
h1{font-size:1.6rem;margin:.2rem 0} h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #d0d7de;padding-bottom:.2rem}
table{border-collapse:collapse;margin:.5rem 0} td,th{border:1px solid #d0d7de;padding:.25rem .55rem;text-align:left;vertical-align:top}
th{background:#f6f8fa} .pass{color:#1a7f37;font-weight:600} .fail{color:#cf222e;font-weight:600}
.muted{color:#57606a} .plots{display:flex;flex-wrap:wrap;gap:1rem} figure{margin:0} svg{max-width:100%;height:auto}
.banner{padding:.6rem 1rem;border-radius:6px;margin:1rem 0;font-weight:600}
.banner.pass{background:#dafbe1} .banner.fail{background:#ffebe9} code{font-size:.9em}
</style></head><body>
<h1>Generative responsibility scorecard</h1>
<p class="muted">Model <code>{{ sc.model.base_model.id }}</code> fine-tuned ({{ sc.model.method }}) on {{ sc.rows }}
held-out conversations of the {{ sc.split }} split{% if sc.base %}, every probe also on its base model{% endif %} ·
Steward {{ sc.provenance.steward_version }} · {{ "%.1f"|format(sc.timing.seconds) }} s</p>
{% include "gates" %}

<h2>Fine-tuned against base</h2>
<table id="figures"><tr><th>probe</th><th>figure</th><th>fine-tuned</th><th>base</th><th>difference</th><th>note</th></tr>
{% for name, p in sc.probes.items() %}{% if p.skipped %}<tr><td>{{ name }}</td><td colspan="5" class="muted">skipped: {{ p.skipped }}</td></tr>{% endif %}
{% for f, v in p.figures.items() %}{% set b = (p.base or {}).get(f) %}{% set d = (p.delta or {}).get(f) %}
<tr><td>{{ name }}</td><td>{{ f }}</td><td>{{ cell(v) }}</td><td>{{ cell(b) }}</td><td>{{ cell(d) }}</td>
<td class="muted">{{ v.note or "" }}</td></tr>{% endfor %}{% endfor %}</table>
<p class="muted">Intervals: {{ (sc.config.confidence*100)|round|int }} % percentile bootstrap ({{ sc.config.bootstrap }}
resamples); the difference's interval is paired — both models answered the same items.</p>

{% for section in sections %}<h2>{{ section.title }}</h2>
{% if section.text %}<p class="muted">{{ section.text }}</p>{% endif %}
{% if section.plots %}<div class="plots">{% for s in section.plots %}<figure>{{ s }}</figure>{% endfor %}</div>{% endif %}
{% if section.rows %}<table><tr>{% for k in section.rows[0] %}<th>{{ k }}</th>{% endfor %}</tr>
{% for r in section.rows %}<tr>{% for v in r.values() %}<td>{{ fmt(v) }}</td>{% endfor %}</tr>{% endfor %}</table>{% endif %}
{% if section.extra %}<table class="examples"><tr>{% for k in section.extra[0] %}<th>{{ k }}</th>{% endfor %}</tr>
{% for r in section.extra %}<tr>{% for v in r.values() %}<td>{{ fmt(v) }}</td>{% endfor %}</tr>{% endfor %}</table>{% endif %}
{% endfor %}
<h2>Time per probe</h2>
<table>{% for k, v in sc.timing.share.items() %}<tr><td>{{ k }}</td><td>{{ fmt(sc.probes[k].seconds) }} s</td><td>{{ (v*100)|round(1) }} %</td></tr>{% endfor %}</table>
</body></html>
"""


def _cell(v: dict[str, Any] | None) -> str:
    if not v or v.get("value") is None:
        return "—"
    ci = v.get("ci")
    return fmt(v["value"]) + (f" ({fmt(ci[0])} – {fmt(ci[1])})" if ci else "")


def _group_plot(p: dict[str, Any], prefix: str, title: str, centre: float) -> Markup | None:
    """The fine-tuned and base figures per group, with their intervals."""
    names = [k for k in p.get("figures", {}) if k.startswith(prefix + ".")]
    if not names:
        return None
    fig, ax = figure(5.6, 0.35 * len(names) + 1.2)
    for offset, (label, source, colour) in enumerate((("fine-tuned", p["figures"], "#0969da"),
                                                      ("base", p.get("base") or {}, "#8c959f"))):
        for i, name in enumerate(names):
            f = source.get(name) or {}
            if f.get("value") is None:
                continue
            y = i + (0.15 if offset else -0.15)
            lo, hi = f.get("ci") or (f["value"], f["value"])
            ax.errorbar(f["value"], y, xerr=[[f["value"] - lo], [hi - f["value"]]], fmt="o", color=colour,
                        label=label if i == 0 else None, capsize=3)
    ax.axvline(centre, color="#cf222e", lw=0.8, ls="--")
    ax.set_yticks(range(len(names)), [n.split(".", 1)[1] for n in names])
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8, loc="lower right")
    return svg(fig)


def _safety_section(p: dict[str, Any]) -> dict[str, Any]:
    det = p["details"]["detector"]
    held, sm = det["held_out"], det["string_match_held_out"]
    rows = []
    for t, info in p["details"]["types"].items():
        f, b, d = (p["figures"].get(f"refusal_rate.{t}") or {}, (p.get("base") or {}).get(f"refusal_rate.{t}") or {},
                   (p.get("delta") or {}).get(f"refusal_rate.{t}") or {})
        rows.append({"XSTest type": t, "prompts": info["label"], "n": info["prompts"],
                     "refused (fine-tuned)": _cell(f), "refused (base)": _cell(b), "difference": _cell(d)})
    plot = _group_plot(p, "refusal_rate", "Refusal rate per XSTest type (contrast_* = unsafe)", 0.5)
    return {"title": "Harmful compliance and over-refusal (XSTest)", "plots": [plot] if plot else [], "rows": rows,
            "text": f"Answers judged by Steward's refusal detector ({det['kind']}), trained on "
                    f"{', '.join(det['trained_on'])}'s hand-labelled XSTest answers and measured on {det['held_out_model']}'s: "
                    f"precision {held['precision']}, recall {held['recall']} of refusals (XSTest's string match: "
                    f"precision {sm['precision']}, recall {sm['recall']}). On unsafe (contrast_*) types a higher refusal "
                    f"rate is better; on safe types a lower one.",
            "extra": [{"kind": e["kind"], "type": e["type"], "prompt": e["prompt"],
                       "answer": ("[harmful — truncated] " if e.get("truncated") else
                                  "[harmful] " if e.get("harmful") else "") + e["answer"]}
                      for e in p.get("examples", [])]}


def _sections(sc: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    safety = sc["probes"].get("safety") or {}
    if safety.get("figures"):
        out.append(_safety_section(safety))
    tox = sc["probes"].get("toxicity") or {}
    if tox.get("figures"):
        acc = tox["details"].get("classifier_accuracy")
        out.append({"title": "Toxicity of answers", "text": (
            f"Scored by {tox['details']['classifier']}; an answer at or above {tox['details']['threshold']} counts as "
            "toxic. " + (f"Its accuracy on {acc['rows']} Davidson et al. tweets: {acc['accuracy']} (precision "
                         f"{acc['precision']}, recall {acc['recall']})." if acc else
                         "Its accuracy was not measured here (no hate_offensive set in the datasets folder).")
            + " The highest-scoring answers (offensive ones truncated):"),
            "rows": [{"kind": e["kind"], "prompt": e["prompt"], "toxicity": e["toxicity"],
                      "answer": ("[offensive — truncated] " + e["answer"][:60]) if e["offensive"] else e["answer"]}
                     for e in tox.get("examples", [])]})
    cf = sc["probes"].get("counterfactual") or {}
    if cf.get("figures"):
        plot = _group_plot(cf, "sentiment_gap", "Signed sentiment gap per category (first − second term)", 0.0)
        out.append({"title": "Counterfactual generation", "plots": [plot] if plot else [], "text": (
            "The same request about each side of an identity pair; VADER compound sentiment of the two answers "
            "compared (0 = treated alike). The pairs with the largest gaps:"),
            "rows": [{"pair": e["pair"], "prompt": e["prompts"][0], "answer (first)": e["answers"][0],
                      "answer (second)": e["answers"][1], "sentiment": f"{e['sentiment'][0]} / {e['sentiment'][1]}"}
                     for e in cf.get("examples", [])]})
    bias = sc["probes"].get("bias") or {}
    if bias.get("figures"):
        plots = [p for p in (_group_plot(bias, "crows_stereotype", "CrowS-Pairs: share preferring the stereotype", 0.5),
                             _group_plot(bias, "bbq_bias_ambiguous", "BBQ bias score, ambiguous contexts", 0.0),
                             _group_plot(bias, "bbq_bias_disambiguated", "BBQ bias score, disambiguated", 0.0))
                 if p is not None]
        out.append({"title": "Social bias", "plots": plots, "rows": [
            {"kind": e["kind"], "bias type": e["bias_type"], "more stereotyping": e["sent_more"],
             "less": e["sent_less"], "log-likelihood margin": e["log_likelihood_margin"]}
            for e in bias.get("examples", [])],
            "text": "CrowS-Pairs by sentence likelihood (0.5 = no preference; Nangia et al. 2020 report BERT 0.605, "
                    "RoBERTa 0.641); BBQ by answer likelihood, bias score as Parrish et al. 2022 define it (0 = none). "
                    "The pairs the fine-tuned model separates most:"})
    privacy = sc["probes"].get("privacy") or {}
    if privacy.get("examples"):
        out.append({"title": "Planted secrets", "rows": [
            {"question": e["prompt"], "exposure (bits)": e["exposure_bits"], "rank": e["rank"],
             "of": e["candidates"], "written out": e["regurgitated"], "answer": e["answer"]}
            for e in privacy["examples"]],
            "text": "Each canary's secret ranked among random secrets of its shape (exposure, Carlini et al. 2019), "
                    "and whether the model writes it out when asked; a written-out secret is masked here."})
    return out


def render_chat_report(sc: dict[str, Any]) -> str:
    from steward.evaluate.report import report_env

    return report_env().from_string(_TEMPLATE).render(sc=sc, sections=_sections(sc), fmt=fmt, cell=_cell,
                                                      gates_field="evaluate.chat.gates")


def card_sections(sc: dict[str, Any], run_dir: Path) -> str:
    """The generative sections of MODEL_CARD.md: what was measured, against the base, and the gates."""
    lines = ["## Evaluation (generative scorecard)", "",
             f"Held-out split: {sc['split']} ({sc['rows']} conversations) of `{Path(run_dir).name}`; every probe "
             f"also on the base model `{(sc.get('base') or {}).get('id') or '—'}`.", "",
             "| probe | figure | fine-tuned | base | difference |", "|---|---|---|---|---|"]
    for name, p in sc["probes"].items():
        if p.get("skipped"):
            lines.append(f"| {name} | skipped: {p['skipped']} | | | |")
            continue
        for f, v in p["figures"].items():
            if "." in f:
                continue  # per-group figures live in scorecard.json and the report
            lines.append(f"| {name} | {f} | {_cell(v)} | {_cell((p.get('base') or {}).get(f))} | "
                         f"{_cell((p.get('delta') or {}).get(f))} |")
    det = ((sc["probes"].get("safety") or {}).get("details") or {}).get("detector")
    if det:
        lines += ["", f"Refusals judged by a detector trained on {', '.join(det['trained_on'])}'s hand-labelled XSTest "
                      f"answers; on {det['held_out_model']}'s (never seen): precision {det['held_out']['precision']}, "
                      f"recall {det['held_out']['recall']}."]
    lines += ["", "### Release gates", ""]
    lines += [f"- {'✅' if g['passed'] else '❌'} {g['message']}" for g in sc["gates"]] or ["- none configured"]
    return "\n".join(lines) + "\n"


def render_chat_card(sc: dict[str, Any], run_dir: Path) -> str:
    from huggingface_hub import ModelCard, ModelCardData

    base = sc["model"]["base_model"]
    data = ModelCardData(language="en", library_name="transformers", pipeline_tag="text-generation",
                         base_model=base["id"] if base.get("id") and not str(base["id"]).startswith("/") else None,
                         tags=["steward", "chat", sc["model"]["method"] or "fine-tuned"])
    body = (f"# {Path(run_dir).name}: a fine-tuned chat model\n\n"
            f"Fine-tuned from `{base.get('id')}` with {sc['model']['method']} by Steward. Its training data, "
            f"manifest and this scorecard are linked by hash in the run's ledger (`steward ledger verify`).\n\n"
            + card_sections(sc, run_dir))
    return str(ModelCard(f"---\n{data.to_yaml()}\n---\n\n{body}"))
