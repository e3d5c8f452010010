"""``RUN_DIR/compress/report.html``: every candidate's accuracy, fairness gap, attack success, latency and
size next to the original's, the Pareto plot, and why each rejected candidate was rejected. Same rules as
the evaluate report: inline SVG, autoescaped text, no script."""

from __future__ import annotations

from typing import Any

from jinja2 import Environment
from markupsafe import Markup

from steward.figures import figure, fmt, svg

_TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Steward compression report</title>
<style>
body{font:15px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0 auto;max-width:1150px;padding:1.5rem;color:#1b1f24}
table{border-collapse:collapse;margin:.5rem 0} td,th{border:1px solid #d0d7de;padding:.25rem .55rem;text-align:left;vertical-align:top}
th{background:#f6f8fa} .ok{color:#1a7f37;font-weight:600} .bad{color:#cf222e;font-weight:600} .muted{color:#57606a}
.plots{display:flex;flex-wrap:wrap;gap:1rem} svg{max-width:100%;height:auto}
</style></head><body>
<h1>Compression report</h1>
<p class="muted">Parent <code>{{ s.parent.path }}</code> (sha256 {{ s.parent.sha256[:12] }}…) · chosen by {{ s.choose_by }}:
<b id="chosen">{{ s.chosen }}</b> · gates a candidate must pass (the original passed them):
{{ s.required_gates|join(", ") if s.required_gates else "none configured" }} · {{ "%.0f"|format(s.seconds) }} s</p>
<div class="plots">{% for svg in plots %}<figure>{{ svg }}</figure>{% endfor %}</div>
<h2>Candidates</h2>
<table id="candidates"><tr><th>candidate</th><th>format</th><th>size MiB</th><th>accuracy</th><th>DP diff.</th><th>EO diff.</th>
<th>CF flips</th><th>attack success</th><th>ECE</th><th>p95 ms (batch 1)</th><th>texts/s (batch)</th><th>Pareto</th><th>verdict</th></tr>
{% for c in s.candidates %}<tr><td>{{ c.name }}{% if c.chosen %} <b>(chosen)</b>{% endif %}</td><td>{{ c.format }}</td>
<td>{{ "%.1f"|format(c.size_bytes / 1048576) }}</td><td>{{ fmt(c.accuracy) }}</td><td>{{ fmt(c.dp_difference) }}</td>
<td>{{ fmt(c.eo_difference) }}</td><td>{{ fmt(c.cf_flip_rate) }}</td><td>{{ fmt(c.attack_success) }}</td><td>{{ fmt(c.ece) }}</td>
<td>{{ fmt(c.latency_ms_p95) }}</td><td>{{ fmt(c.throughput_per_s) }}</td><td>{{ "yes" if c.pareto_optimal else "" }}</td>
<td class="{{ 'bad' if c.rejected else 'ok' }}">{{ ("rejected: " ~ c.rejected) if c.rejected else "passes" }}</td></tr>{% endfor %}</table>
</body></html>
"""


def _plots(s: dict[str, Any]) -> list[Markup]:
    out = []
    pts = [c for c in s["candidates"] if c["accuracy"] is not None and c["latency_ms_p95"] is not None]
    if not pts:
        return out
    for x_key, x_label in (("latency_ms_p95", "latency p95, batch 1 (ms)"), ("size_bytes", "size (MiB)")):
        fig, ax = figure()
        for c in pts:
            x = c[x_key] / 2**20 if x_key == "size_bytes" else c[x_key]
            colour = "#cf222e" if c["rejected"] else ("#1a7f37" if c["chosen"] else "#0969da")
            ax.scatter([x], [c["accuracy"]], color=colour, s=40, zorder=3)
            ax.annotate(c["name"], (x, c["accuracy"]), textcoords="offset points", xytext=(4, 4), fontsize=8)
        ax.set_xlabel(x_label)
        ax.set_ylabel("accuracy")
        ax.set_title("candidates (red: rejected, green: chosen)", fontsize=9)
        ax.grid(alpha=0.3)
        out.append(svg(fig))
    return out


def render(summary: dict[str, Any]) -> str:
    env = Environment(autoescape=True)
    return env.from_string(_TEMPLATE).render(s=summary, plots=_plots(summary), fmt=fmt)
