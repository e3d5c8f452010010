"""Resources: parameters, size on disk, FLOPs per example (torch's FlopCounterMode), batch-1 latency
percentiles, batch throughput and the process's peak memory, all on this machine."""

from __future__ import annotations

import resource
import sys
import time

import numpy as np

from steward.evaluate.probes.base import PROBES, EvalContext, Figure, ProbeResult


@PROBES.register("resources")
def resources(ctx: EvalContext) -> ProbeResult:
    clf = ctx.predictor
    model = getattr(clf, "model", None)
    figures: dict[str, Figure] = {}
    details: dict[str, object] = {}
    if model is not None:
        figures["parameters"] = Figure(float(sum(p.numel() for p in model.parameters())), "count")
    trainable = ((ctx.train_manifest.parameters if ctx.train_manifest else None) or {}).get("trainable")
    if trainable is not None:
        figures["trainable_parameters"] = Figure(float(trainable), "count", note="during training")
    if ctx.model_dir is not None:
        size = sum(f.stat().st_size for f in ctx.model_dir.rglob("*") if f.is_file())
        figures["size_mb"] = Figure(size / 2**20, "MiB", None, False)
    texts = ctx.texts if ctx.texts else [" ".join(t) for t in ctx.tokens]
    typical = sorted(texts, key=len)[len(texts) // 2]
    if model is not None and ctx.task == "classification":
        figures["gflops_per_example"] = Figure(_flops(clf, typical) / 1e9, "GFLOP", None, False,
                                               f"median-length text ({len(typical.split())} words)")
    predict = (lambda batch: clf.predict_proba(batch)) if ctx.task == "classification" else \
        (lambda batch: clf.predict_tags([t.split() for t in batch]))  # type: ignore[attr-defined]
    runs = ctx.cfg.resources.latency_runs
    rng = np.random.default_rng(ctx.cfg.seed)
    sample = [texts[i] for i in rng.choice(len(texts), size=runs, replace=len(texts) < runs)]
    predict(sample[:2])  # warm-up: first calls pay for lazy initialisation
    lat = []
    for t in sample:
        t0 = time.perf_counter()
        predict([t])
        lat.append((time.perf_counter() - t0) * 1000)
    figures["latency_ms_p50"] = Figure(float(np.percentile(lat, 50)), "ms", None, False, "batch 1")
    figures["latency_ms_p95"] = Figure(float(np.percentile(lat, 95)), "ms", None, False, "batch 1")
    b = ctx.cfg.resources.throughput_batch
    batch = [texts[i] for i in rng.choice(len(texts), size=b * 4, replace=len(texts) < b * 4)]
    t0 = time.perf_counter()
    for k in range(0, len(batch), b):
        predict(batch[k:k + b])
    figures["throughput_per_s"] = Figure(len(batch) / (time.perf_counter() - t0), "texts/s", None, True,
                                         f"batch {b}")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    figures["peak_memory_mb"] = Figure(peak / (2**20 if sys.platform == "darwin" else 2**10), "MiB", None, False,
                                       "peak resident memory of the evaluating process")
    import torch

    details["threads"] = torch.get_num_threads()
    return ProbeResult("resources", figures, details)


def _flops(clf: object, text: str) -> float:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    model = clf.model  # type: ignore[attr-defined]
    enc = clf.encode([text])  # type: ignore[attr-defined]
    # torch's counter has no formula for CPU's fused SDPA kernel, so attention would count as zero: count
    # with the eager attention (same maths, plain matmuls), then put the fast kernel back.
    before = getattr(getattr(model, "config", None), "_attn_implementation", None)
    switch = before not in (None, "eager") and hasattr(model, "set_attn_implementation")
    if switch:
        model.set_attn_implementation("eager")
    counter = FlopCounterMode(display=False)
    try:
        with counter, torch.inference_mode():
            model(**enc)
    finally:
        if switch:
            model.set_attn_implementation(before)
    return float(counter.get_total_flops())
