"""Serve-stage benchmark: the SST-2 model behind `steward serve`, load from a second process on loopback.

Run: `.venv/bin/python bench/bench_serve.py` (after bench/bench_train.py and bench/bench_evaluate.py).
Measures, in one run: one-at-a-time versus concurrency 32 with dynamic batching (and without it), and
guards on versus off at concurrency 1 (PII in its NER-free mode). Prints a table and writes
bench/results/serve_bench.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from steward.service.loopback import wait_ready

HERE = Path(__file__).parent


def serve(run_dir: Path, port: int, cfg: dict) -> subprocess.Popen[bytes]:  # type: ignore[type-arg]
    import yaml

    path = run_dir / f"bench_serve_{port}.yaml"
    path.write_text(yaml.safe_dump({"run_dir": str(run_dir), "serve": {
        "port": port, "rate_limit_per_minute": 10**7, "rate_limit_burst": 10**6, **cfg}}))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS": ""}
    proc = subprocess.Popen([sys.executable, "-m", "steward.cli.app", "serve", "-c", str(path)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if wait_ready(f"http://127.0.0.1:{port}", 120, lambda: proc.poll() is None):
        return proc
    proc.kill()
    raise RuntimeError("service did not start")


def load(port: int, key: str, texts: Path, n: int, c: int) -> dict:  # type: ignore[type-arg]
    out = subprocess.run([sys.executable, str(HERE / "loadgen.py"), "--url", f"http://127.0.0.1:{port}",
                          "--key", key, "--texts", str(texts), "--requests", str(n), "--concurrency", str(c)],
                         check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


def model_alone(run_dir: Path, texts: list[str], mode: str = "auto") -> dict:  # type: ignore[type-arg]
    """The served model without the service (in this process, no HTTP, guards or audit): texts per second
    one at a time and in batches of 32. Their ratio is what batching buys the model itself on this machine;
    the service's ratio can differ either way (its per-request overhead is paid in series by a lone request
    but overlaps the model's work under load, while the load generator and HTTP share the same cores).
    Also batches of 16 cut into passes by length (the default) against one padded pass, interleaved."""
    import time

    from steward.compress.release import load as load_model
    from steward.serve.config import BatchingSettings

    clf = load_model(run_dir, None, batch_size=BatchingSettings().physical_batch_size, mode=mode).clf
    clf.predict_with_embeddings(texts[:32])  # warm up
    cut = clf.pass_cost_tokens

    def rate(bs: int, n: int, pass_cost: int) -> float:
        clf.pass_cost_tokens = pass_cost
        t0 = time.perf_counter()
        for k in range(0, n, bs):
            clf.predict_with_embeddings(texts[k:k + bs])
        return n / (time.perf_counter() - t0)

    out = {"texts_per_s_batch_1": rate(1, 128, cut), "texts_per_s_batch_32": rate(32, 256, cut)}
    out["batch_32_vs_1"] = out["texts_per_s_batch_32"] / out["texts_per_s_batch_1"]
    one_pass, by_length = [], []
    for _ in range(3):
        one_pass.append(rate(16, 256, 10**9))  # a pass costs "infinitely" more than padding: one pass
        by_length.append(rate(16, 256, cut))
    out["texts_per_s_batch_16_one_padded_pass"] = float(np.median(one_pass))
    out["texts_per_s_batch_16_cut_by_length"] = float(np.median(by_length))
    out["cut_by_length_vs_one_pass"] = (out["texts_per_s_batch_16_cut_by_length"]
                                        / out["texts_per_s_batch_16_one_padded_pass"])
    clf.pass_cost_tokens = cut
    return out


def base_rps(rows: list[dict]) -> float:  # type: ignore[type-arg]
    return next(r for r in rows if r["config"].startswith("guards on, batching (") and r["concurrency"] == 1)["rps"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--work", type=Path, default=Path("/tmp/steward_bench_train"))
    ap.add_argument("--source", default="sst2", help="the trained run under --work (sst2: 20k rows; sst2_all: all)")
    ap.add_argument("--requests", type=int, default=400)
    ap.add_argument("--out", type=Path, default=HERE / "results" / "serve_bench.json")
    args = ap.parse_args()
    run_dir = args.work / args.source
    from steward.service.audit import AuditLog, database_url
    from steward.service.keys import KeyStore

    key = KeyStore(AuditLog(database_url(None, run_dir)).engine).create("predict", "bench")[1]
    texts = args.work / "serve_texts.json"
    texts.write_text(json.dumps(pd.read_parquet(run_dir / "data" / "test.parquet")["text"].tolist()))
    alone = model_alone(run_dir, json.loads(texts.read_text()))
    print("model alone", json.dumps(alone))
    rows = []
    configs = [
        ("guards on, batching (16, 5 ms, passes cut by length, 2 workers)", {}, [1, 32]),
        ("guards on, batching, 1 worker", {"batching": {"workers": 1}}, [1, 32]),
        ("guards on, batching, passes of at most 8", {"batching": {"physical_batch_size": 8}}, [32]),
        ("guards on, no batching", {"batching": {"max_batch_size": 1, "max_wait_ms": 0}}, [32]),
        ("guards off, batching", {"guards": {"input": [], "output": []}}, [1]),
    ]
    compressed = args.work / "sst2_compress"
    if (compressed / "compress" / "chosen.json").is_file():  # after bench/bench_compress.py
        chosen = json.loads((compressed / "compress" / "chosen.json").read_text())["name"]
        configs.append((f"compressed artifact ({chosen}), guards on, batching", {"_run_dir": compressed}, [1, 32]))
    for port, (name, cfg, conc) in enumerate(configs, start=8911):
        rd = cfg.pop("_run_dir", run_dir)
        if rd != run_dir:
            KeyStore(AuditLog(database_url(None, rd)).engine).create("predict", "bench")
        proc = serve(rd, port, cfg)
        try:
            k = key if rd == run_dir else KeyStore(AuditLog(database_url(None, rd)).engine).create("predict", "bench")[1]
            for c in conc:
                r = load(port, k, texts, args.requests, c)
                rows.append({"config": name, **r})
                print(name, json.dumps(r))
        finally:
            proc.terminate()
            proc.wait()
    # Guard overhead as a paired comparison: both services up, requests alternating between them one at a
    # time, so a change in machine load hits both equally (two runs one after the other differ by ±10 %).
    on, off = serve(run_dir, 8921, {}), serve(run_dir, 8922, {"guards": {"input": [], "output": []}})
    try:
        out = subprocess.run([sys.executable, str(HERE / "loadgen.py"), "--url", "http://127.0.0.1:8921", "--key", key,
                              "--compare-url", "http://127.0.0.1:8922", "--texts", str(texts),
                              "--requests", str(args.requests)], check=True, capture_output=True, text=True)
        paired = json.loads(out.stdout)
        print("guards on vs off, paired", json.dumps(paired))
    finally:
        for proc in (on, off):
            proc.terminate()
            proc.wait()
    base = next(r for r in rows if r["config"].startswith("guards on, batching") and r["concurrency"] == 1)
    batched = next(r for r in rows if r["config"].startswith("guards on, batching") and r["concurrency"] == 32)
    unbatched = next(r for r in rows if r["config"] == "guards on, no batching")
    one_worker = {r["concurrency"]: r for r in rows if r["config"] == "guards on, batching, 1 worker"}
    off = next(r for r in rows if r["config"].startswith("guards off"))
    capped = next(r for r in rows if "passes of at most 8" in r["config"])
    comp = [r for r in rows if r["config"].startswith("compressed")]
    comp_ratio = {}
    if comp:
        c1 = next(r for r in comp if r["concurrency"] == 1)
        c32 = next(r for r in comp if r["concurrency"] == 32)
        comp_ratio = {"compressed_c32_vs_c1": c32["rps"] / c1["rps"], "compressed_c32_vs_fp32_c1": c32["rps"] / base_rps(rows),
                      "compressed_c32_vs_fp32_c32": c32["rps"] / next(
                          r for r in rows if r["config"].startswith("guards on, batching (") and r["concurrency"] == 32)["rps"]}
    summary = {"throughput_c32_vs_c1": batched["rps"] / base["rps"],
               "one_worker_c32_vs_c1": one_worker[32]["rps"] / one_worker[1]["rps"],
               "two_workers_vs_one_c32": batched["rps"] / one_worker[32]["rps"],
               "two_workers_vs_one_c1": base["rps"] / one_worker[1]["rps"],
               "throughput_passes_up_to_32_vs_up_to_8": batched["rps"] / capped["rps"],
               "throughput_c32_batched_vs_unbatched": batched["rps"] / unbatched["rps"],
               "guard_p50_overhead_separate_runs": base["p50"] / off["p50"] - 1,
               "guard_p50_overhead": paired["p50_ratio"] - 1, "guard_paired": paired, "model_alone": alone,
               **comp_ratio}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"rows": rows, "summary": summary}, indent=2))
    md = ["| configuration | concurrency | requests/s | p50 ms | p95 ms | p99 ms | errors | blocked by a guard |",
          "|---|---|---|---|---|---|---|---|"]
    md += [f"| {r['config']} | {r['concurrency']} | {r['rps']:.1f} | {r['p50']:.1f} | {r['p95']:.1f} | "
           f"{r['p99']:.1f} | {r['errors']} | {r['blocked']} |" for r in rows]
    md += ["", f"- throughput at concurrency 32 (batched) vs one at a time: {summary['throughput_c32_vs_c1']:.2f}x",
           f"- the model alone (no service, this process): {alone['texts_per_s_batch_1']:.1f} texts/s one at a time, "
           f"{alone['texts_per_s_batch_32']:.1f} in batches of 32: {alone['batch_32_vs_1']:.2f}x",
           f"- 2 workers vs 1: {summary['two_workers_vs_one_c32']:.2f}x at concurrency 32, "
           f"{summary['two_workers_vs_one_c1']:.2f}x one at a time (1 worker's own ratio "
           f"{summary['one_worker_c32_vs_c1']:.2f}x)",
           f"- batched vs unbatched at concurrency 32: {summary['throughput_c32_batched_vs_unbatched']:.2f}x",
           f"- model alone, batches of 16 cut into passes by length vs one padded pass: "
           f"{alone['cut_by_length_vs_one_pass']:.2f}x ({alone['texts_per_s_batch_16_cut_by_length']:.1f} vs "
           f"{alone['texts_per_s_batch_16_one_padded_pass']:.1f} texts/s)",
           f"- passes of up to 32 vs up to 8 texts, concurrency 32: "
           f"{summary['throughput_passes_up_to_32_vs_up_to_8']:.2f}x",
           f"- guards on vs off, p50 at concurrency 1, paired (requests alternating between the two services): "
           f"{summary['guard_p50_overhead'] * 100:+.1f} % ({paired['p50']:.1f} vs {paired['compare_p50']:.1f} ms; "
           f"median paired difference {paired['median_paired_difference_ms']:+.2f} ms)",
           f"- the same from the two separate concurrency-1 runs above: "
           f"{summary['guard_p50_overhead_separate_runs'] * 100:+.1f} %"]
    if comp_ratio:
        md += [f"- compressed artifact: concurrency 32 vs its own one-at-a-time {comp_ratio['compressed_c32_vs_c1']:.2f}x; "
               f"vs the fp32 model one-at-a-time {comp_ratio['compressed_c32_vs_fp32_c1']:.2f}x; vs fp32 at "
               f"concurrency 32 {comp_ratio['compressed_c32_vs_fp32_c32']:.2f}x"]
    args.out.with_suffix(".md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
