"""A load generator run as its own process: N requests at concurrency C to /v1/predict; prints JSON stats."""

from __future__ import annotations

import argparse
import asyncio
import json
import time

import httpx
import numpy as np


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--texts", required=True, help="JSON file with a list of texts")
    ap.add_argument("--requests", type=int, default=300)
    ap.add_argument("--concurrency", type=int, default=1)
    args = ap.parse_args()
    texts = json.load(open(args.texts))
    latencies: list[float] = []
    errors = 0
    blocked = 0
    counter = iter(range(args.requests))
    limits = httpx.Limits(max_connections=args.concurrency, max_keepalive_connections=args.concurrency)
    async with httpx.AsyncClient(base_url=args.url, headers={"X-API-Key": args.key}, timeout=60, limits=limits) as c:
        await c.post("/v1/predict", json={"text": texts[0]})  # warm-up

        async def worker() -> None:
            nonlocal errors, blocked
            for i in counter:
                t0 = time.perf_counter()
                r = await c.post("/v1/predict", json={"text": texts[i % len(texts)]})
                latencies.append((time.perf_counter() - t0) * 1000)
                blocked += r.status_code == 422  # a guard refused the text: an answer, not an error
                errors += r.status_code not in (200, 422)

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(args.concurrency)))
        wall = time.perf_counter() - t0
    lat = np.array(latencies)
    print(json.dumps({"requests": len(lat), "errors": errors, "blocked": blocked, "concurrency": args.concurrency, "seconds": wall,
                      "rps": len(lat) / wall, "p50": float(np.percentile(lat, 50)),
                      "p95": float(np.percentile(lat, 95)), "p99": float(np.percentile(lat, 99))}))


if __name__ == "__main__":
    asyncio.run(main())
