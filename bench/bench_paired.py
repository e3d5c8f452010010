"""Paired service benchmark: this checkout's `steward serve` and `steward gateway` against another commit's.

Run: `.venv/bin/python bench/bench_paired.py --base REV` (REV: the commit to compare with, e.g. the one
before a refactor). The base's `src/` is exported with `git archive` and run by the same interpreter and
packages (PYTHONPATH), so only Steward's own code differs. Both services run as separate processes on
loopback, default configuration (the built-in injection detector included), on one small trained run
(the demo's generated data, LoRA on the offline MiniLM, made by this checkout once under --work):

- serve, concurrency 1: requests alternate between the two services one at a time (bench/loadgen.py
  --compare-url), so a change in machine load hits both alike;
- serve, concurrency 32: the two take turns, ``--rounds`` times each (A B B A …), texts per second;
- gateway: the same questions alternately to both, embedded SmolLM2, greedy, ``--max-tokens`` tokens.

Prints a table of pairs and the head/base ratio; writes bench/results/paired_bench.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import httpx

from steward.service.loopback import wait_ready

HERE = Path(__file__).parent
ROOT = HERE.parent
QUESTIONS = ["What are your opening hours on weekends?", "How do I freeze my debit card if I lost it?",
             "Why was I charged twice for the same subscription this month?",
             "How long does a refund take after I return an item?", "How can I reset my online banking password?",
             "Is there a fee for international transfers?"]


def export(rev: str, dest: Path) -> tuple[Path, str]:
    """``rev``'s src/ under ``dest``; (its path, the full commit id)."""
    sha = subprocess.run(["git", "-C", str(ROOT), "rev-parse", rev], check=True, capture_output=True,
                         text=True).stdout.strip()
    tree = dest / sha[:12]
    if not (tree / "src" / "steward").is_dir():
        tree.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", "--format=tar", sha, "src"], check=True,
                                 capture_output=True).stdout
        tar = tree / "src.tar"
        tar.write_bytes(archive)
        with tarfile.open(tar) as t:
            t.extractall(tree, filter="data")
    return tree / "src", sha


def trained_run(work: Path) -> Path:
    """A small trained classifier run (the demo's data and training), made once."""
    run = work / "run"
    if not (run / "train" / "manifest.json").is_file():
        subprocess.run([sys.executable, "-m", "steward.cli.app", "demo", "--run-dir", str(run), "--rows", "1500",
                        "--skip-evaluate", "--skip-serve", "--skip-chat", "--json"], check=True,
                       stdout=subprocess.DEVNULL, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    return run


def start(src: Path, command: str, run_dir: Path, port: int, section: dict) -> subprocess.Popen[bytes]:  # type: ignore[type-arg]
    import yaml

    cfg = run_dir / f"paired_{command}_{port}.yaml"
    cfg.write_text(yaml.safe_dump({"run_dir": str(run_dir), command: {"port": port, **section}}))
    env = {**os.environ, "PYTHONPATH": str(src), "HF_HUB_OFFLINE": "1", "TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS": ""}
    proc = subprocess.Popen([sys.executable, "-m", "steward.cli.app", command, "-c", str(cfg)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if wait_ready(f"http://127.0.0.1:{port}", 240, lambda: proc.poll() is None):
        return proc
    proc.kill()
    raise RuntimeError(f"{command} from {src} on port {port} did not start")


def databases(work: Path, command: str) -> dict[str, str]:
    """One audit database per side: the two versions must not append to one log (an older Steward writes
    records without the tree nodes a newer one keeps beside them)."""
    return {side: f"sqlite:///{work / f'{command}_{side}_audit.db'}" for side in ("head", "base")}


def make_key(url: str, role: str) -> str:
    from steward.service.audit import AuditLog
    from steward.service.keys import KeyStore

    log = AuditLog(url)
    try:
        return KeyStore(log.engine).create(role, "paired bench")[1]
    finally:
        log.close()


def loadgen(urls: list[str], keys: list[str], texts: Path, n: int, c: int) -> dict:  # type: ignore[type-arg]
    cmd = [sys.executable, str(HERE / "loadgen.py"), "--url", urls[0], "--key", keys[0], "--texts", str(texts),
           "--requests", str(n), "--concurrency", str(c)]
    if len(urls) > 1:
        cmd += ["--compare-url", urls[1], "--compare-key", keys[1]]
    return json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)


def bench_serve(srcs: dict[str, Path], run_dir: Path, work: Path, n: int, rounds: int,  # type: ignore[type-arg]
                extra: dict[str, dict] | None = None) -> dict:  # type: ignore[type-arg]
    import pandas as pd

    texts = work / "texts.json"
    texts.write_text(json.dumps(list(pd.read_parquet(run_dir / "data" / "test.parquet")["text"])[:400]))
    section = {"rate_limit_per_minute": 10**7, "rate_limit_burst": 10**6}
    ports = {"head": 8711, "base": 8712}
    dbs = databases(work, "serve")
    for url in dbs.values():
        Path(url.removeprefix("sqlite:///")).unlink(missing_ok=True)
    procs: dict[str, subprocess.Popen[bytes]] = {}
    try:
        for side, src in srcs.items():  # a side that fails to start stops the one already started (finally)
            procs[side] = start(src, "serve", run_dir, ports[side],
                                {**section, "database_url": dbs[side], **(extra or {}).get(side, {})})
        keys = {side: make_key(url, "predict") for side, url in dbs.items()}
        urls = {side: f"http://127.0.0.1:{p}" for side, p in ports.items()}
        pair = loadgen([urls["head"], urls["base"]], [keys["head"], keys["base"]], texts, n, 1)
        c32: dict[str, list[float]] = {"head": [], "base": []}
        for r in range(rounds):
            for side in (("head", "base") if r % 2 == 0 else ("base", "head")):
                c32[side].append(round(loadgen([urls[side]], [keys[side]], texts, n, 32)["rps"], 2))
    finally:
        for p in procs.values():
            p.terminate()
            p.wait(30)
    return {"c1": pair, "c32": c32}


def bench_gateway(srcs: dict[str, Path], run_dir: Path, rounds: int, max_tokens: int) -> dict:  # type: ignore[type-arg]
    section = {"rate_limit_per_minute": 10_000, "rate_limit_burst": 1_000, "tokens_per_minute": 10_000_000}
    ports = {"head": 8721, "base": 8722}
    dbs = databases(run_dir.parent, "gateway")
    for url in dbs.values():
        Path(url.removeprefix("sqlite:///")).unlink(missing_ok=True)
    procs = {side: start(src, "gateway", run_dir, ports[side], {**section, "database_url": dbs[side]})
             for side, src in srcs.items()}
    keys = {side: make_key(url, "chat") for side, url in dbs.items()}
    seconds: dict[str, list[float]] = {"head": [], "base": []}
    answers: dict[str, list[str]] = {"head": [], "base": []}
    try:
        with httpx.Client(timeout=300) as client:
            for r in range(rounds + 1):  # the first round warms both up and is not counted
                for i, q in enumerate(QUESTIONS):
                    for side in (("head", "base") if (r + i) % 2 == 0 else ("base", "head")):
                        t0 = time.perf_counter()
                        resp = client.post(f"http://127.0.0.1:{ports[side]}/v1/chat/completions",
                                           headers={"Authorization": f"Bearer {keys[side]}"},
                                           json={"model": "SmolLM2-135M-Instruct", "max_tokens": max_tokens,
                                                 "temperature": 0, "messages": [{"role": "user", "content": q}]})
                        took = time.perf_counter() - t0
                        resp.raise_for_status()
                        if r:
                            seconds[side].append(took)
                            answers[side].append(resp.json()["choices"][0]["message"]["content"])
    finally:
        for p in procs.values():
            p.terminate()
            p.wait(30)
    return {"seconds": seconds, "same_answers": answers["head"] == answers["base"]}


def ratio_interval(head: list[float], base: list[float], n: int = 5000, seed: int = 0) -> tuple[float, float]:
    """95 % bootstrap interval of median(head) / median(base) over the rounds, each round's two runs resampled
    together (they ran back to back, A B B A, so a slow spell of the machine hits both)."""
    import random

    rng, k = random.Random(seed), len(head)
    draws = []
    for _ in range(n):
        idx = [rng.randrange(k) for _ in range(k)]
        draws.append(statistics.median(head[i] for i in idx) / statistics.median(base[i] for i in idx))
    draws.sort()
    return draws[int(0.025 * n)], draws[int(0.975 * n) - 1]


def table(res: dict) -> str:  # type: ignore[type-arg]
    s, g = res["serve"], res["gateway"]
    c1 = s["c1"]
    head1, base1 = c1["p50"], c1["compare_p50"]
    h32, b32 = statistics.median(s["c32"]["head"]), statistics.median(s["c32"]["base"])
    rows = [
        ("serve, concurrency 1, p50 latency (ms), interleaved", head1, base1, head1 / base1),
        ("serve, concurrency 1, p95 latency (ms), interleaved", c1["p95"], c1["compare_p95"],
         c1["p95"] / c1["compare_p95"]),
        (f"serve, concurrency 32, texts/s (median of {len(s['c32']['head'])} runs each: "
         f"head {s['c32']['head']}, base {s['c32']['base']}; head / base 95 % interval "
         f"{'–'.join(f'{x:.3f}' for x in ratio_interval(s['c32']['head'], s['c32']['base']))})", h32, b32, h32 / b32),
    ]
    if g is not None:
        hg, bg = statistics.median(g["seconds"]["head"]), statistics.median(g["seconds"]["base"])
        rows.append((f"gateway, {res['max_tokens']}-token turn, median s ({len(g['seconds']['head'])} turns each, "
                     f"same answers: {g['same_answers']})", hg, bg, hg / bg))
    out = [f"head {res['head'][:12]}{' (with uncommitted changes)' if res['dirty'] else ''} vs base "
           f"{res['base'][:12]}; serve at concurrency 1: median paired difference "
           f"{c1['median_paired_difference_ms']:+.2f} ms", "",
           "| measure | head | base | head / base |", "|---|---:|---:|---:|"]
    out += [f"| {name} | {h:.2f} | {b:.2f} | {r:.3f} |" for name, h, b, r in rows]
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base", required=True, help="the commit to compare this checkout with")
    ap.add_argument("--work", type=Path, default=Path("/tmp/steward_bench_paired"))
    ap.add_argument("--requests", type=int, default=400)
    ap.add_argument("--rounds", type=int, default=4, help="concurrency-32 runs per side; gateway passes")
    ap.add_argument("--max-tokens", type=int, default=24)
    ap.add_argument("--out", type=Path, default=HERE / "results" / "paired_bench.json")
    ap.add_argument("--serve-head", type=json.loads, default={},
                    help='extra serve settings for the head side, JSON, e.g. \'{"audit_encryption": {"enabled": false}}\'')
    ap.add_argument("--serve-base", type=json.loads, default={}, help="the same for the base side")
    ap.add_argument("--skip-gateway", action="store_true", help="serve only")
    args = ap.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    base_src, base_sha = export(args.base, args.work / "trees")
    head_sha = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], check=True, capture_output=True,
                              text=True).stdout.strip()
    srcs = {"head": ROOT / "src", "base": base_src}
    run_dir = trained_run(args.work)
    res = {"head": head_sha, "base": base_sha, "max_tokens": args.max_tokens,
           "dirty": bool(subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "src"],
                                        capture_output=True, text=True).stdout.strip()),
           "serve_settings": {"head": args.serve_head, "base": args.serve_base},
           "serve": bench_serve(srcs, run_dir, args.work, args.requests, args.rounds,
                                {"head": args.serve_head, "base": args.serve_base}),
           "gateway": None if args.skip_gateway else bench_gateway(srcs, run_dir, max(1, args.rounds // 2),
                                                                   args.max_tokens)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(res, indent=2))
    md = table(res)
    args.out.with_suffix(".md").write_text(md + "\n")
    print(md)


if __name__ == "__main__":
    main()
