"""Transparency-log costs as the audit log grows: append, proof, receipt.

Run: `.venv/bin/python bench/bench_transparency.py` (`--records 1000000` by default; a few minutes on
2 cores). One real audit database (SQLite, WAL, synchronous=FULL, as the service runs it) is filled with
records in batches of `--batch` (one transaction each, as the audit writer's group commit does). At every
power of ten it measures: the time to append a batch, the time to build an inclusion proof and a receipt
from the database for a random record, the proof's length, the receipt's size as JSON, and the time to
verify a receipt offline (signature + proof, no database). Records are sealed as the service writes them
(each one's text under its own AES-GCM data key, `steward.service.erasure`), except that from 10,000 records
on the ten batches before each mark alternate sealed and plain, into the same log, to show what sealing
costs. Prints a table; writes bench/results/transparency.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
from pathlib import Path

from steward.ledger.checkpoint import Ed25519Signer
from steward.service.audit import AuditLog, database_url
from steward.service.erasure import RecordCipher
from steward.service.transparency import verify_receipt

HERE = Path(__file__).parent


def record(i: int) -> dict:  # type: ignore[type-arg]
    return {"decision_id": f"d{i:08d}", "kind": "predict", "key_id": "k", "model_version": "v", "model_hash": "h" * 64,
            "input_hash": "x" * 64, "redacted_input": f"my parcel <PHONE_NUMBER> has not arrived #{i}",
            "findings": [{"guard": "pii", "type": "PHONE_NUMBER"}], "output": {"label": "delivery"},
            "latency_ms": 3.0}


def measure(log: AuditLog, signer: Ed25519Signer, size: int, rng: random.Random, probes: int) -> dict:  # type: ignore[type-arg]
    cp = log.sign_checkpoint(signer, "steward/audit/bench")
    assert cp is not None and cp.size == size
    build, verify, sizes, lengths = [], [], [], []
    for _ in range(probes):
        d = f"d{rng.randrange(size):08d}"
        t0 = time.perf_counter()
        doc = log.receipt(d)
        build.append(time.perf_counter() - t0)
        assert doc is not None and doc["checkpoint"] is not None
        text = json.dumps(doc)
        t0 = time.perf_counter()
        verify_receipt(json.loads(text), signer.public_key)
        verify.append(time.perf_counter() - t0)
        sizes.append(len(text.encode()))
        lengths.append(len(doc["inclusion_proof"]))
    return {"records": size, "receipt_build_ms": statistics.median(build) * 1000,
            "receipt_verify_ms": statistics.median(verify) * 1000, "receipt_bytes": statistics.median(sizes),
            "proof_hashes_max": max(lengths)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, default=1_000_000)
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--probes", type=int, default=50)
    ap.add_argument("--out", type=Path, default=HERE / "results" / "transparency.json")
    args = ap.parse_args()
    rng = random.Random(0)
    signer = Ed25519Signer.generate()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        log = AuditLog(database_url(None, Path(tmp)), RecordCipher(bytes(range(32))))
        plain = AuditLog(log.url)  # the same database, text written in the clear
        marks = {10**k for k in range(3, 10) if 10**k <= args.records}
        size, recent = 0, []
        paired: dict[str, list[float]] = {"sealed": [], "plain": []}
        while size < args.records:
            # the last ten batches before a mark (from 10,000 on) alternate sealed and plain, into the same log,
            # so load and the log's growth hit both alike; the others are sealed, as the service writes them
            nxt = min((m for m in marks if m > size), default=0)
            pairing = nxt >= 10_000 and nxt - size <= 10 * args.batch
            which = "plain" if pairing and (size // args.batch) % 2 else "sealed"
            batch = [record(i) for i in range(size, size + args.batch)]
            t0 = time.perf_counter()
            (plain if which == "plain" else log).append_many(batch)
            took = time.perf_counter() - t0
            recent = [*recent[-9:], took]
            if pairing:
                paired[which].append(took)
            size += args.batch
            if size in marks:
                row = {"records": size, "append_batch_ms": statistics.median(recent) * 1000,
                       "append_records_per_s": args.batch / statistics.median(recent),
                       "sealed_batch_ms": statistics.median(paired["sealed"]) * 1000 if paired["sealed"] else None,
                       "plain_batch_ms": statistics.median(paired["plain"]) * 1000 if paired["plain"] else None,
                       **measure(log, signer, size, rng, args.probes)}
                paired = {"sealed": [], "plain": []}
                rows.append(row)
                print(json.dumps(row), flush=True)
        log.close()
        plain.close()
    md = [f"Audit log on SQLite (WAL, synchronous=FULL), batches of {args.batch} records, {args.probes} random "
          "receipts per size (medians)", "",
          "| records | append a batch (ms, median of the last 10) | records/s | build a receipt (ms) | "
          "proof hashes (max) | receipt (bytes) | verify offline (ms) | batch sealed / plain (ms, 5 each) |",
          "|---:|---:|---:|---:|---:|---:|---:|---:|"]
    md += [f"| {r['records']:,} | {r['append_batch_ms']:.1f} | {r['append_records_per_s']:,.0f} | "
           f"{r['receipt_build_ms']:.2f} | {r['proof_hashes_max']} | {r['receipt_bytes']:.0f} | "
           f"{r['receipt_verify_ms']:.3f} | " + (f"{r['sealed_batch_ms']:.1f} / {r['plain_batch_ms']:.1f} = "
           f"{r['sealed_batch_ms'] / r['plain_batch_ms']:.2f}" if r["plain_batch_ms"] else "—") + " |" for r in rows]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"batch": args.batch, "probes": args.probes, "rows": rows}, indent=2))
    args.out.with_suffix(".md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
