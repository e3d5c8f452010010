"""The generative scorecard: probes for a fine-tuned causal LM, each run on the model and on its base model
with the same prompts, seeds and decoding, the difference reported with a paired bootstrap interval."""

from __future__ import annotations

import time
from typing import Any

from steward.evaluate.generative import (  # noqa: F401  (imported to register)
    bias,
    counterfactual,
    privacy,
    quality,
    resources,
    safety,
    toxicity,
)
from steward.evaluate.generative.base import GEN_PROBES, GenContext, Measured, compare
from steward.evaluate.generative.lm import ChatLM
from steward.progress import progress_bar

__all__ = ["GEN_PROBES", "ChatLM", "GenContext", "Measured", "run_probes"]


def run_probes(ctx: GenContext, tuned: ChatLM, base: ChatLM | None, *, progress: bool = False,
               description: str = "evaluate") -> dict[str, dict[str, Any]]:
    """Each configured probe on ``tuned`` (and ``base``): its scorecard section, with seconds per model."""
    names = list(ctx.chat.probes)
    models = [tuned] + ([base] if base is not None else [])
    results: dict[str, dict[str, Any]] = {}
    with progress_bar(progress) as bar:
        task = bar.add_task(description, total=len(names) * len(models)) if bar else None
        for name in names:
            measured: list[Measured] = []
            seconds: dict[str, float] = {}
            for lm in models:
                if bar:
                    bar.update(task, description=f"{description}: {name} ({lm.label})")
                t0 = time.perf_counter()
                measured.append(GEN_PROBES.create(name, ctx, lm) if name in GEN_PROBES else Measured(
                    skipped=f"the {name} probe is provided by another package and is not loaded here; the CLI "
                            f"loads it (from Python: import steward.gateway.evaluation)"))
                seconds[lm.label] = round(time.perf_counter() - t0, 3)
                if bar:
                    bar.advance(task)
            section = compare(measured[0], measured[1] if len(measured) > 1 else None, ctx.cfg)
            section["seconds"] = round(sum(seconds.values()), 3)
            section["seconds_by_model"] = seconds
            results[name] = section
    return results
