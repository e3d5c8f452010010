"""Resources of a chat model on this machine: parameters, size on disk, time to the first token and ms per
further token at batch 1 (greedy, exactly ``new_tokens`` tokens, EOS ignored so every model does the same
work), tokens/s under batch, and the evaluating process's peak memory."""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path

import numpy as np

from steward.evaluate.generative.base import GEN_PROBES, GenContext, Measured
from steward.evaluate.generative.lm import ChatLM
from steward.evaluate.probes.base import Figure


def _prompts(ctx: GenContext, lm: ChatLM, n: int) -> list[list[int]]:
    """The first user turns of ``n`` held-out conversations, encoded with the chat template."""
    out = []
    for messages in ctx.test["messages"].head(n):
        turns = json.loads(messages)
        first = next(i for i, m in enumerate(turns) if m["role"] == "assistant")
        out.append(lm.prompt_ids(turns[:first]))
    return out


def _reset_peak() -> None:
    """Reset this process's peak-RSS mark (Linux: "5" to clear_refs), so the next reading is this model's."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def _peak_mib() -> float:
    """Peak resident memory since the last reset (VmHWM); elsewhere the process's whole-life peak."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (2**20 if sys.platform == "darwin" else 2**10)


@GEN_PROBES.register("resources")
def resources(ctx: GenContext, lm: ChatLM) -> Measured:
    chat = ctx.chat
    figures = {"parameters": Figure(float(sum(p.numel() for p in lm.model.parameters())), "count"),
               "size_mb": Figure(sum(f.stat().st_size for f in lm.path.rglob("*") if f.is_file()) / 2**20, "MiB",
                                 None, False)}
    trainable = (ctx.train_manifest.parameters or {}).get("trainable")
    if lm.label == "fine-tuned" and trainable is not None:
        figures["trainable_parameters"] = Figure(float(trainable), "count", note="during training")
    prompts = _prompts(ctx, lm, max(chat.latency_runs, chat.batch_size))
    lm.timed_generation(prompts[0], 2)  # warm-up: the first call pays for lazy initialisation
    first, per_token = zip(*(lm.timed_generation(p, chat.new_tokens) for p in prompts[:chat.latency_runs]),
                           strict=True)
    figures["time_to_first_token_ms"] = Figure(float(np.median(first)) * 1000, "ms", None, False, "batch 1, median")
    figures["ms_per_token"] = Figure(float(np.median(per_token)) * 1000, "ms", None, False,
                                     f"batch 1, greedy, {chat.new_tokens} tokens, median")
    batch = prompts[:chat.batch_size]
    _reset_peak()
    t0 = time.perf_counter()
    lm.generate(batch, chat.new_tokens, chat.batch_size, exact=True)
    spent = time.perf_counter() - t0
    made = len({tuple(p) for p in batch}) * chat.new_tokens  # each distinct prompt, exactly new_tokens
    figures["tokens_per_second_batch"] = Figure(made / spent if spent else 0.0, "tokens/s", None, True,
                                                f"batch {len(batch)}, greedy, exactly {chat.new_tokens} new tokens each")
    figures["peak_memory_mb"] = Figure(_peak_mib(), "MiB", None, False,
                                       "peak resident memory of the evaluating process during this model's batched "
                                       "generation (both models loaded: compare size_mb for the model itself)")
    import torch

    return Measured(scalars=figures, details={"threads": torch.get_num_threads()})
