"""A load generator run as its own process: N requests at concurrency C to /v1/predict; prints JSON stats.

It shares the machine's 2 cores with the server, so its own CPU cost per request counts against the
server's throughput: aiohttp (C HTTP parser) costs it less than httpx (pure-Python h11), which it replaced.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path

import numpy as np


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--texts", required=True, help="JSON file with a list of texts")
    ap.add_argument("--requests", type=int, default=300)
    ap.add_argument("--concurrency", type=int, default=1)
    ap.add_argument("--compare-url", default=None,
                    help="a second service with its own --compare-key: requests alternate between the two, one at a "
                         "time, and each gets its own figures (a paired comparison, immune to drift in machine load)")
    ap.add_argument("--compare-key", default=None)
    ap.add_argument("--warmup", type=int, default=50, help="untimed requests first (lazy initialisation, caches)")
    args = ap.parse_args()
    if args.compare_url:
        return await _paired(args)
    await _aiohttp(args)


async def _aiohttp(args: argparse.Namespace) -> None:
    import aiohttp

    texts = json.loads(Path(args.texts).read_text())
    latencies: list[float] = []
    errors = blocked = 0
    counter = iter(range(args.requests))
    conn = aiohttp.TCPConnector(limit=args.concurrency)
    headers = {"X-API-Key": args.key}
    async with aiohttp.ClientSession(base_url=args.url, connector=conn, headers=headers,
                                     timeout=aiohttp.ClientTimeout(total=60)) as s:
        for i in range(max(1, args.warmup)):  # warm-up, not timed
            async with s.post("/v1/predict", json={"text": texts[-1 - i % len(texts)]}) as r:
                await r.read()

        async def worker() -> None:
            nonlocal errors, blocked
            for i in counter:
                t0 = time.perf_counter()
                async with s.post("/v1/predict", json={"text": texts[i % len(texts)]}) as r:
                    await r.read()
                    status = r.status
                latencies.append((time.perf_counter() - t0) * 1000)
                blocked += status == 422
                errors += status not in (200, 422)

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(args.concurrency)))
        wall = time.perf_counter() - t0
    _report(latencies, errors, blocked, args.concurrency, wall)


async def _paired(args: argparse.Namespace) -> None:
    import aiohttp

    texts = json.loads(Path(args.texts).read_text())
    targets = [(args.url, args.key), (args.compare_url, args.compare_key or args.key)]
    lat: list[list[float]] = [[], []]
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as s:
        async def call(k: int, text: str) -> float:
            url, key = targets[k]
            t0 = time.perf_counter()
            async with s.post(f"{url}/v1/predict", json={"text": text}, headers={"X-API-Key": key}) as r:
                await r.read()
            return (time.perf_counter() - t0) * 1000

        for i in range(max(1, args.warmup)):
            for k in (0, 1):
                await call(k, texts[-1 - i % len(texts)])
        for i in range(args.requests):
            order = (0, 1) if i % 2 == 0 else (1, 0)  # who goes first alternates too
            for k in order:
                lat[k].append(await call(k, texts[i % len(texts)]))
    a, b = np.array(lat[0]), np.array(lat[1])
    print(json.dumps({"requests": args.requests, "p50": float(np.median(a)), "compare_p50": float(np.median(b)),
                      "p95": float(np.percentile(a, 95)), "compare_p95": float(np.percentile(b, 95)),
                      "p50_ratio": float(np.median(a) / np.median(b)),
                      "median_paired_difference_ms": float(np.median(a - b))}))


def _report(latencies: list[float], errors: int, blocked: int, concurrency: int, wall: float) -> None:
    lat = np.array(latencies)
    print(json.dumps({"requests": len(lat), "errors": errors, "blocked": blocked, "concurrency": concurrency,
                      "seconds": wall, "rps": len(lat) / wall, "p50": float(np.percentile(lat, 50)),
                      "p95": float(np.percentile(lat, 95)), "p99": float(np.percentile(lat, 99))}))


if __name__ == "__main__":
    asyncio.run(main())
