"""What the HTML reports (evaluate, compress) share: a matplotlib figure that renders offline, its inline SVG,
and one way to print a number."""

from __future__ import annotations

import io
from typing import Any

from markupsafe import Markup


def fmt(v: Any) -> str:
    """A figure for a report or card: four significant digits, "—" for a missing one."""
    if v is None:
        return "—"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def figure(w: float = 5.2, h: float = 3.2) -> tuple[Any, Any]:
    """A new (figure, axes) on the Agg backend, text kept as text in the SVG (smaller and searchable)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    matplotlib.rcParams["svg.fonttype"] = "none"
    return plt.subplots(figsize=(w, h))


def svg(fig: Any) -> Markup:
    """The figure as inline SVG markup (closed afterwards): reports carry their plots, no files, no network."""
    import matplotlib.pyplot as plt

    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight")
    plt.close(fig)
    text = buf.getvalue()
    return Markup(text[text.index("<svg"):])
