"""Chat-gateway speed: tokens/s, time to first token and the guards' share of a turn, default model, 2 cores.

Run: `.venv/bin/python bench/bench_gateway.py` (or `make bench-gateway`). Two gateways with the embedded
SmolLM2-135M-Instruct run as separate processes (`steward gateway`) on loopback — one with the default guards,
one with none — and the same customer-service questions go to them **alternately, one at a time** (a paired
comparison: a change in machine load hits both alike), greedy decoding so both write the same answers:

- plain turns: turn time, completion tokens per second of turn;
- streamed turns: time to the first token the model produced (the gateway's own Prometheus histogram) and
  time to the first text the client receives (with output guards on, text leaves a sentence at a time).

Prints a table, writes bench/results/gateway_bench.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

from steward.service.loopback import wait_ready

HERE = Path(__file__).parent

QUESTIONS = [
    "What are your opening hours on weekends?",
    "How do I freeze my debit card if I lost it?",
    "Can I change the delivery address of an order that has already shipped?",
    "Why was I charged twice for the same subscription this month?",
    "How long does a refund take after I return an item?",
    "What documents do I need to open a savings account?",
    "My parcel says delivered but I cannot find it. What should I do?",
    "How can I reset my online banking password?",
    "Is there a fee for international transfers?",
    "Can I pay my bill in instalments?",
    "How do I cancel my mobile phone contract?",
    "What is the difference between a debit card and a credit card?",
]


def start(run_dir: Path, port: int, gateway: dict) -> subprocess.Popen[bytes]:  # type: ignore[type-arg]
    import yaml

    cfg = run_dir / f"gateway_{port}.yaml"
    cfg.write_text(yaml.safe_dump({"run_dir": str(run_dir), "gateway": {
        "port": port, "rate_limit_per_minute": 10_000, "rate_limit_burst": 1_000, "tokens_per_minute": 10_000_000,
        **gateway}}))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS": ""}
    proc = subprocess.Popen([sys.executable, "-m", "steward.cli.app", "gateway", "-c", str(cfg)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if wait_ready(f"http://127.0.0.1:{port}", 180, lambda: proc.poll() is None):
        return proc
    proc.kill()
    raise RuntimeError(f"gateway on port {port} did not start")


def plain(client: httpx.Client, url: str, key: str, q: str, max_tokens: int) -> dict:  # type: ignore[type-arg]
    t0 = time.perf_counter()
    r = client.post(f"{url}/v1/chat/completions", headers={"Authorization": f"Bearer {key}"}, json={
        "model": "SmolLM2-135M-Instruct", "messages": [{"role": "user", "content": q}], "max_tokens": max_tokens,
        "temperature": 0})
    took = time.perf_counter() - t0
    r.raise_for_status()
    body = r.json()
    return {"seconds": took, "tokens": body["usage"]["completion_tokens"],
            "finish": body["choices"][0]["finish_reason"], "text": body["choices"][0]["message"]["content"]}


def streamed(client: httpx.Client, url: str, key: str, q: str, max_tokens: int) -> dict:  # type: ignore[type-arg]
    t0 = time.perf_counter()
    first = None
    with client.stream("POST", f"{url}/v1/chat/completions", headers={"Authorization": f"Bearer {key}"}, json={
            "model": "SmolLM2-135M-Instruct", "messages": [{"role": "user", "content": q}],
            "max_tokens": max_tokens, "temperature": 0, "stream": True}) as r:
        r.raise_for_status()
        for line in r.iter_lines():
            if first is None and line.startswith("data:") and '"content": "' in line and '"content": ""' not in line:
                first = time.perf_counter() - t0
    return {"seconds": time.perf_counter() - t0, "first_text": first}


def model_ttft(client: httpx.Client, url: str, admin: str) -> tuple[float, float]:
    """(sum, count) of the gateway's time-to-first-token histogram."""
    text = client.get(f"{url}/metrics", headers={"Authorization": f"Bearer {admin}"}).text
    total = float(re.search(r"^steward_gateway_time_to_first_token_seconds_sum (\S+)", text, re.M).group(1))  # type: ignore[union-attr]
    count = float(re.search(r"^steward_gateway_time_to_first_token_seconds_count (\S+)", text, re.M).group(1))  # type: ignore[union-attr]
    return total, count


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--work", type=Path, default=Path("/tmp/steward_bench_gateway"))
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=1, help="passes over the 12 questions")
    ap.add_argument("--out", type=Path, default=HERE / "results" / "gateway_bench.json")
    args = ap.parse_args()
    from steward.service.audit import AuditLog, database_url
    from steward.service.keys import KeyStore

    args.work.mkdir(parents=True, exist_ok=True)
    store = KeyStore(AuditLog(database_url(None, args.work)).engine)
    key, admin = store.create("chat", "bench")[1], store.create("admin", "bench")[1]
    on = start(args.work, 8931, {})
    off = start(args.work, 8932, {"guards": {"input": [], "output": []}, "canary": False})
    urls = {"on": "http://127.0.0.1:8931", "off": "http://127.0.0.1:8932"}
    results: dict[str, dict[str, list]] = {m: {"plain": [], "stream": []} for m in urls}  # type: ignore[type-arg]
    try:
        with httpx.Client(timeout=600) as client:
            for url in urls.values():  # warm-up
                plain(client, url, key, "Hello!", 8)
            ttft0 = {m: model_ttft(client, u, admin) for m, u in urls.items()}
            for _ in range(args.rounds):
                for i, q in enumerate(QUESTIONS):
                    order = ["on", "off"] if i % 2 == 0 else ["off", "on"]
                    for mode in order:
                        results[mode]["plain"].append(plain(client, urls[mode], key, q, args.max_tokens))
                    for mode in order:
                        results[mode]["stream"].append(streamed(client, urls[mode], key, q, args.max_tokens))
            ttft1 = {m: model_ttft(client, u, admin) for m, u in urls.items()}
    finally:
        for p in (on, off):
            p.terminate()
            p.wait()
    rows = []
    for mode in ("on", "off"):
        pl, st = results[mode]["plain"], results[mode]["stream"]
        tokens = sum(r["tokens"] for r in pl)
        seconds = sum(r["seconds"] for r in pl)
        ttft_sum, ttft_n = (ttft1[mode][0] - ttft0[mode][0]), (ttft1[mode][1] - ttft0[mode][1])
        rows.append({"guards": mode, "turns": len(pl), "completion_tokens": tokens, "tokens_per_s": tokens / seconds,
                     "turn_p50_s": statistics.median(r["seconds"] for r in pl),
                     "model_first_token_mean_s": ttft_sum / ttft_n if ttft_n else None,
                     "client_first_text_p50_s": statistics.median(r["first_text"] for r in st if r["first_text"]),
                     "blocked_or_filtered": sum(r["finish"] == "content_filter" for r in pl)})
    paired = [a["seconds"] / b["seconds"] for a, b in zip(results["on"]["plain"], results["off"]["plain"],
                                                        strict=True) if a["tokens"] == b["tokens"]]
    same_text = sum(a["text"] == b["text"] for a, b in zip(results["on"]["plain"], results["off"]["plain"], strict=True))
    per_token = {m: sum(r["seconds"] for r in results[m]["plain"]) / sum(r["tokens"] for r in results[m]["plain"])
                 for m in urls}
    summary = {"guard_overhead_per_token": per_token["on"] / per_token["off"] - 1,
               "guard_overhead_median_paired": statistics.median(paired) - 1 if paired else None,
               "pairs_with_equal_tokens": len(paired), "pairs_with_same_answer": same_text,
               "guard_overhead_total": sum(r["seconds"] for r in results["on"]["plain"])
               / sum(r["seconds"] for r in results["off"]["plain"]) - 1}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"rows": rows, "summary": summary, "max_tokens": args.max_tokens}, indent=2))
    md = ["| guards | turns | completion tokens | tokens/s | turn p50 s | model's first token, mean s | "
          "client's first text, p50 s |", "|---|---|---|---|---|---|---|"]
    md += [f"| {r['guards']} | {r['turns']} | {r['completion_tokens']} | {r['tokens_per_s']:.1f} | "
           f"{r['turn_p50_s']:.2f} | {r['model_first_token_mean_s']:.3f} | {r['client_first_text_p50_s']:.2f} |"
           for r in rows]
    md += ["", f"- guards on vs off, time per completion token over all plain turns: "
               f"{summary['guard_overhead_per_token'] * 100:+.1f} % (target <= 5 %)",
           f"- guards on vs off, paired turns with the same number of tokens ({summary['pairs_with_equal_tokens']}): "
               f"median {(summary['guard_overhead_median_paired'] or 0) * 100:+.1f} % per turn; over all turns "
               f"{summary['guard_overhead_total'] * 100:+.1f} %; {summary['pairs_with_same_answer']} of "
               f"{len(results['on']['plain'])} answers identical"]
    args.out.with_suffix(".md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
