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
import time
from pathlib import Path

import httpx
import pandas as pd

HERE = Path(__file__).parent


def serve(run_dir: Path, port: int, cfg: dict) -> subprocess.Popen[bytes]:  # type: ignore[type-arg]
    import yaml

    path = run_dir / f"bench_serve_{port}.yaml"
    path.write_text(yaml.safe_dump({"run_dir": str(run_dir), "serve": {
        "port": port, "rate_limit_per_minute": 10**7, "rate_limit_burst": 10**6, **cfg}}))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS": ""}
    proc = subprocess.Popen([sys.executable, "-m", "steward.cli.app", "serve", "-c", str(path)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(600):
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("service did not start")


def load(port: int, key: str, texts: Path, n: int, c: int) -> dict:  # type: ignore[type-arg]
    out = subprocess.run([sys.executable, str(HERE / "loadgen.py"), "--url", f"http://127.0.0.1:{port}",
                          "--key", key, "--texts", str(texts), "--requests", str(n), "--concurrency", str(c)],
                         check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--work", type=Path, default=Path("/tmp/steward_bench_train"))
    ap.add_argument("--requests", type=int, default=400)
    ap.add_argument("--out", type=Path, default=HERE / "results" / "serve_bench.json")
    args = ap.parse_args()
    run_dir = args.work / "sst2"
    from steward.serve.audit import AuditLog, database_url
    from steward.serve.keys import KeyStore

    key = KeyStore(AuditLog(database_url(None, run_dir)).engine).create("predict", "bench")[1]
    texts = args.work / "serve_texts.json"
    texts.write_text(json.dumps(pd.read_parquet(run_dir / "data" / "test.parquet")["text"].tolist()))
    rows = []
    configs = [
        ("guards on, batching (32, 5 ms)", {}, [1, 32]),
        ("guards on, no batching", {"batching": {"max_batch_size": 1, "max_wait_ms": 0}}, [32]),
        ("guards off, batching", {"guards": {"input": [], "output": []}}, [1]),
    ]
    for port, (name, cfg, conc) in enumerate(configs, start=8911):
        proc = serve(run_dir, port, cfg)
        try:
            for c in conc:
                r = load(port, key, texts, args.requests, c)
                rows.append({"config": name, **r})
                print(name, json.dumps(r))
        finally:
            proc.terminate()
            proc.wait()
    base = next(r for r in rows if r["config"].startswith("guards on, batching") and r["concurrency"] == 1)
    batched = next(r for r in rows if r["config"].startswith("guards on, batching") and r["concurrency"] == 32)
    unbatched = next(r for r in rows if r["config"] == "guards on, no batching")
    off = next(r for r in rows if r["config"].startswith("guards off"))
    summary = {"throughput_c32_vs_c1": batched["rps"] / base["rps"],
               "throughput_c32_batched_vs_unbatched": batched["rps"] / unbatched["rps"],
               "guard_p50_overhead": base["p50"] / off["p50"] - 1}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"rows": rows, "summary": summary}, indent=2))
    md = ["| configuration | concurrency | requests/s | p50 ms | p95 ms | p99 ms | errors | blocked by a guard |",
          "|---|---|---|---|---|---|---|---|"]
    md += [f"| {r['config']} | {r['concurrency']} | {r['rps']:.1f} | {r['p50']:.1f} | {r['p95']:.1f} | "
           f"{r['p99']:.1f} | {r['errors']} | {r['blocked']} |" for r in rows]
    md += ["", f"- throughput at concurrency 32 (batched) vs one at a time: {summary['throughput_c32_vs_c1']:.2f}x",
           f"- batched vs unbatched at concurrency 32: {summary['throughput_c32_batched_vs_unbatched']:.2f}x",
           f"- guards on vs off, p50 at concurrency 1: {summary['guard_p50_overhead'] * 100:+.1f} %"]
    args.out.with_suffix(".md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
