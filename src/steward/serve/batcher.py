"""Dynamic batching: requests that arrive together share one forward pass.

A single worker task takes the first waiting text plus whatever else is queued, then — only while requests
are arriving closer together than ``max_wait_ms`` — waits up to ``max_wait_ms`` for more, until
``max_batch_size``; it runs the model once in a worker thread (the event loop stays free for I/O). Under
sparse traffic nobody pays the wait: there is no one to share a batch with.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np


class _Worker:
    """A background task on the running event loop, started and stopped with the app."""

    _task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None

    async def _run(self) -> None:
        raise NotImplementedError


class Batcher(_Worker):
    """``predict`` returns one array with a row per text, or a tuple of such arrays (e.g. probabilities and
    embeddings); each request gets its rows back (a tuple per text in the second case)."""

    def __init__(self, predict: Callable[[Sequence[str]], np.ndarray | tuple[np.ndarray, ...]], max_batch_size: int,
                 max_wait_ms: float) -> None:
        self.predict, self.max_batch_size, self.max_wait = predict, max_batch_size, max_wait_ms / 1000.0
        self.queue: asyncio.Queue[tuple[str, asyncio.Future[Any]]] = asyncio.Queue()
        self.batches = 0
        self.items = 0
        self.waits = 0  # batches that waited for company
        self._last_arrival: float | None = None
        self._gap = float("inf")  # moving average of the time between requests, seconds

    def _arrived(self, now: float) -> None:
        if self._last_arrival is not None:
            gap = now - self._last_arrival
            self._gap = gap if self._gap == float("inf") else 0.8 * self._gap + 0.2 * gap
        self._last_arrival = now

    async def submit(self, texts: Sequence[str]) -> list[Any]:
        loop = asyncio.get_running_loop()
        self._arrived(loop.time())
        futures = []
        for t in texts:
            fut: asyncio.Future[Any] = loop.create_future()
            await self.queue.put((t, fut))
            futures.append(fut)
        return list(await asyncio.gather(*futures))

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            first = await self.queue.get()
            batch = [first]
            while len(batch) < self.max_batch_size and not self.queue.empty():
                batch.append(self.queue.get_nowait())
            wait = self.max_wait if self._gap < self.max_wait else 0.0
            self.waits += wait > 0 and len(batch) < self.max_batch_size
            deadline = loop.time() + wait
            while len(batch) < self.max_batch_size:
                timeout = deadline - loop.time()
                if timeout <= 0:
                    break
                try:
                    batch.append(await asyncio.wait_for(self.queue.get(), timeout))
                except TimeoutError:
                    break
            texts = [t for t, _ in batch]
            try:
                out = await loop.run_in_executor(None, self.predict, texts)
                rows = list(zip(*out, strict=True)) if isinstance(out, tuple) else list(out)
            except Exception as exc:  # noqa: BLE001 — handed to every waiting request, never lost
                for _, fut in batch:
                    if not fut.done():
                        fut.set_exception(exc)
                continue
            self.batches += 1
            self.items += len(batch)
            for (_, fut), p in zip(batch, rows, strict=True):
                if not fut.done():
                    fut.set_result(p)


class AuditWriter(_Worker):
    """Group commit for the audit log: records from requests that finish together go into one transaction.

    While one transaction is being written (in a worker thread), new records queue up; the next
    transaction takes all of them. Each request still waits until its own records are committed before it
    answers, so the guarantee is unchanged — one fsync now covers many decisions instead of one.
    """

    def __init__(self, append_many: Callable[[list[dict[str, Any]]], Any], max_records: int = 512) -> None:
        self.append_many, self.max_records = append_many, max_records
        self.queue: asyncio.Queue[tuple[list[dict[str, Any]], asyncio.Future[Any]]] = asyncio.Queue()
        self.transactions = 0

    async def write(self, records: list[dict[str, Any]]) -> None:
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        await self.queue.put((records, fut))
        await fut

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            pending = [await self.queue.get()]
            count = len(pending[0][0])
            while count < self.max_records and not self.queue.empty():
                item = self.queue.get_nowait()
                pending.append(item)
                count += len(item[0])
            records = [r for recs, _ in pending for r in recs]
            try:
                await loop.run_in_executor(None, self.append_many, records)
            except Exception as exc:  # noqa: BLE001 — every waiting request learns its decision was not stored
                for _, fut in pending:
                    if not fut.done():
                        fut.set_exception(exc)
                continue
            self.transactions += 1
            for _, fut in pending:
                if not fut.done():
                    fut.set_result(None)
