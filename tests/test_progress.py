"""Progress when stderr is not a terminal: plain lines, one per step of a short task, a tenth of a long one."""

from __future__ import annotations

import io

from steward.progress import LineProgress


def test_short_tasks_report_every_step_with_its_time() -> None:
    out = io.StringIO()
    with LineProgress(out) as bar:
        t = bar.add_task("evaluate", total=3)
        for name in ("performance", "fairness", "robustness"):
            bar.update(t, description=f"evaluate: {name}")
            bar.advance(t)
    lines = out.getvalue().splitlines()
    assert [ln.split(":")[1].strip() for ln in lines] == ["performance", "fairness", "robustness"]
    assert lines[2].startswith("evaluate: robustness: 3/3 done in ") and "s elapsed" in lines[2]


def test_long_tasks_report_each_tenth_not_each_step() -> None:
    out = io.StringIO()
    with LineProgress(out) as bar:
        t = bar.add_task("train", total=1000)
        for i in range(1000):
            bar.update(t, advance=1, description=f"train loss {1 / (i + 1):.3f}")
    lines = out.getvalue().splitlines()
    assert len(lines) == 10 and lines[-1].startswith("train loss 0.001: 1000/1000")


def test_an_unfinished_long_task_says_where_it_stopped() -> None:
    out = io.StringIO()
    with LineProgress(out) as bar:
        t = bar.add_task("train", total=100, completed=40)  # resumed at step 40
        bar.update(t, advance=5)
    assert out.getvalue().splitlines()[-1].startswith("train: stopped at 45/100")
