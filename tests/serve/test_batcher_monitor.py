"""Dynamic batching, rate limiting and drift, without HTTP."""

from __future__ import annotations

import asyncio
import threading
import time

import numpy as np
import pytest

from steward.records import Scorecard
from steward.serve.batcher import Batcher
from steward.serve.config import DriftSettings
from steward.serve.monitor import DriftMonitor, mmd_test, psi
from steward.service.ratelimit import RateLimiter


def test_requests_arriving_together_share_a_forward_pass() -> None:
    calls: list[int] = []

    def predict(texts):  # type: ignore[no-untyped-def]
        calls.append(len(texts))
        time.sleep(0.01)
        return np.array([[len(t), 1.0] for t in texts])

    async def go() -> list[np.ndarray]:
        b = Batcher(predict, max_batch_size=8, max_wait_ms=20)
        b.start()
        out = await asyncio.gather(*(b.submit([f"t{'x' * i}"]) for i in range(20)))
        await b.stop()
        return out

    out = asyncio.run(go())
    assert [int(o[0][0]) for o in out] == [i + 1 for i in range(20)]  # each caller gets its own row back
    assert sum(calls) == 20 and max(calls) == 8 and len(calls) <= 4


def test_two_workers_score_side_by_side_and_a_lone_request_gets_every_thread() -> None:
    lock, local = threading.Lock(), threading.local()
    active, peak, seen = [0], [0], []

    def set_threads(n: int) -> None:
        local.n = n  # per scoring thread, like torch.set_num_threads

    def predict(texts):  # type: ignore[no-untyped-def]
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
            seen.append((len(texts), local.n, threading.current_thread().name))
        time.sleep(0.05)
        with lock:
            active[0] -= 1
        return np.array([[float(t[1:]), 1.0] for t in texts])

    async def go() -> list[list[np.ndarray]]:
        b = Batcher(predict, max_batch_size=4, max_wait_ms=0, workers=2, set_threads=set_threads, threads_alone=2)
        b.start()
        await b.submit(["t99"])  # nothing else queued or running: all the threads
        out = await asyncio.gather(*(b.submit([f"t{i}"]) for i in range(8)))  # two batches of 4 at once
        for _ in range(3):  # quiet again: one request at a time
            await b.submit(["t98"])
        await b.stop()
        return out

    out = asyncio.run(go())
    assert [int(o[0][0]) for o in out] == list(range(8))
    assert seen[0][:2] == (1, 2)
    assert peak[0] == 2 and sorted(n for n, _, _ in seen[1:3]) == [4, 4]
    assert all(threads == 1 for _, threads, _ in seen[1:3])  # side by side: one thread each
    assert len({name for _, _, name in seen[1:3]}) == 2  # each worker in its own thread
    # A quiet service keeps to the first worker's thread (its OpenMP team stays warm), with all threads.
    assert [(n, threads, name) for n, threads, name in seen[3:]] == [(1, 2, seen[0][2])] * 3


def test_sparse_requests_do_not_wait_for_company() -> None:
    def predict(texts):  # type: ignore[no-untyped-def]
        return np.ones((len(texts), 2))

    async def go() -> tuple[list[float], int]:
        b = Batcher(predict, max_batch_size=8, max_wait_ms=100)
        b.start()
        took = []
        for _ in range(5):  # one request every 150 ms: nobody to share a batch with
            t0 = time.perf_counter()
            await b.submit(["alone"])
            took.append(time.perf_counter() - t0)
            await asyncio.sleep(0.15)
        waits = b.waits
        await b.stop()
        return took, waits

    took, waits = asyncio.run(go())
    assert waits <= 1 and sorted(took)[2] < 0.05  # would be >= 0.1 s each if every batch waited


def test_a_failing_model_fails_its_requests_not_the_batcher() -> None:
    def predict(texts):  # type: ignore[no-untyped-def]
        if "boom" in texts:
            raise RuntimeError("model error")
        return np.ones((len(texts), 2))

    async def go() -> tuple[object, np.ndarray]:
        b = Batcher(predict, max_batch_size=4, max_wait_ms=1)
        b.start()
        bad = await b.submit(["boom"])  # the text's exception in its place: the request decides what to do
        good = await b.submit(["fine"])
        await b.stop()
        return bad[0], good

    bad, good = asyncio.run(go())
    assert isinstance(bad, RuntimeError) and np.stack(good).shape == (1, 2)


def test_token_bucket() -> None:
    lim = RateLimiter(per_minute=60, burst=2)
    assert lim.take("a") == 0 and lim.take("a") == 0
    wait = lim.take("a")
    assert 0 < wait <= 1.0
    assert lim.take("b") == 0  # per key


def test_psi_is_zero_for_the_same_distribution_and_grows_with_shift() -> None:
    ref = np.array([50, 30, 20])
    assert psi(ref, ref * 3) == pytest.approx(0.0, abs=1e-6)
    assert psi(ref, np.array([20, 30, 50])) > 0.2 > psi(ref, np.array([45, 33, 22]))


def _scorecard() -> Scorecard:
    bins = [{"lower": i / 10, "upper": (i + 1) / 10, "n": n} for i, n in enumerate([0, 0, 0, 0, 0, 5, 10, 15, 30, 40])]
    return Scorecard.model_validate({"probes": {"performance": {"details": {"confusion_matrix": [[40, 10], [10, 40]]}},
                                                "calibration": {"details": {"bins": bins}}}})


def test_drift_alerts_when_live_traffic_leaves_the_evaluation_mix(caplog: pytest.LogCaptureFixture) -> None:
    rng = np.random.default_rng(0)
    ref_lengths = [int(x) for x in rng.integers(5, 30, 1000)]
    mon = DriftMonitor(DriftSettings(window=200, min_samples=50, psi_threshold=0.2), ["a", "b"], _scorecard(),
                       ref_lengths)
    for _ in range(200):  # drawn like the evaluation set: labels 50/50, confidence per its histogram
        b = rng.choice([5, 6, 7, 8, 9], p=[0.05, 0.1, 0.15, 0.3, 0.4])
        mon.observe(int(rng.random() < 0.5), float(rng.uniform(b / 10, (b + 1) / 10 - 1e-6)),
                    int(rng.integers(5, 30)))
    calm = mon.status()
    assert calm["ready"] and not calm["alerts"]
    for _ in range(200):  # one label, low confidence, long texts (the window keeps the last 200)
        mon.observe(0, 0.55, 120)
    with caplog.at_level("WARNING", logger="steward.serve.drift"):
        shifted = mon.status()
    assert set(shifted["alerts"]) == {"label_psi", "confidence_psi", "input_length_psi"}
    assert any("drift alert" in r.message for r in caplog.records)
    assert not DriftMonitor(DriftSettings(), ["a"], None).status()["enabled"]


def test_mmd_matches_its_definition_and_its_p_value_separates_shifted_samples() -> None:
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(40, 8)), rng.normal(0.3, 1.0, size=(30, 8))
    z = np.concatenate([x, y])
    d2 = ((z[:, None] - z[None]) ** 2).sum(-1)
    k = np.exp(-d2 / np.median(d2[np.triu_indices(len(z), 1)]))
    naive = ((k[:40, :40].sum() - 40) / (40 * 39) + (k[40:, 40:].sum() - 30) / (30 * 29) - 2 * k[:40, 40:].mean())
    assert mmd_test(x, y, 50)[0] == pytest.approx(naive)
    # Under no drift the p-value is ~uniform (few false alarms); a small shift is caught every time.
    same = np.array([mmd_test(rng.normal(size=(200, 16)), rng.normal(size=(100, 16)), 100, seed=i)[1]
                     for i in range(40)])
    assert (same < 0.05).mean() <= 0.15 and 0.3 < np.median(same) < 0.7
    shifted = [mmd_test(rng.normal(size=(200, 16)), rng.normal(0.3, 1.0, size=(100, 16)), 100, seed=i)[1]
               for i in range(10)]
    assert max(shifted) < 0.01


def test_embedding_drift_alerts_and_recovers(caplog: pytest.LogCaptureFixture) -> None:
    rng = np.random.default_rng(4)
    cfg = DriftSettings(window=100, min_samples=50, permutations=200)
    mon = DriftMonitor(cfg, ["a", "b"], _scorecard(), None, rng.normal(1.0, 1.0, size=(200, 16)))
    assert mon.status()["embedding"]["ready"] is False
    for e in rng.normal(1.0, 1.0, size=(100, 16)):
        mon.observe(int(rng.random() < 0.5), 0.9, 10, e)
    calm = mon.status()
    assert "embedding_mmd" not in calm["alerts"] and calm["embedding"]["p_value"] > 0.01
    for e in rng.normal(1.0, 1.0, size=(100, 16)) + np.r_[np.ones(8), -np.ones(8)] * 0.5:  # unlike the evaluation set
        mon.observe(int(rng.random() < 0.5), 0.9, 10, e)
    with caplog.at_level("WARNING", logger="steward.serve.drift"):
        shifted = mon.status()
        assert "embedding_mmd" in shifted["alerts"] and shifted["embedding"]["p_value"] < 0.01
        assert shifted["embedding"]["centroid_cosine_distance"] > calm["embedding"]["centroid_cosine_distance"]
        for e in rng.normal(1.0, 1.0, size=(100, 16)):
            mon.observe(int(rng.random() < 0.5), 0.9, 10, e)
        assert "embedding_mmd" not in mon.status()["alerts"]
    messages = [r.message for r in caplog.records]
    assert any("embedding MMD" in m for m in messages) and any("recovered: embedding_mmd" in m for m in messages)
    with pytest.raises(ValueError, match="permutations"):
        DriftSettings(permutations=50, embedding_p_value=0.01)  # p could never go below 1/51
    off = DriftMonitor(DriftSettings(embedding=False), ["a", "b"], _scorecard(), None, rng.normal(size=(50, 4)))
    assert off.reference_embeddings is None


def test_audit_writer_groups_concurrent_records_into_few_transactions(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from steward.service.audit import AuditLog, database_url
    from steward.service.writer import AuditWriter

    log = AuditLog(database_url(None, tmp_path))

    async def go() -> int:
        w = AuditWriter(log.append_many)
        w.start()
        await asyncio.gather(*(w.write([{"decision_id": f"d{i}", "kind": "predict", "output": {"i": i},
                                          "latency_ms": 1.0}]) for i in range(50)))
        await w.stop()
        return w.transactions

    transactions = asyncio.run(go())
    assert log.count() == 50 and log.verify().ok
    assert transactions < 50  # one fsync covered several decisions
