"""The audit writer: group commit of audit records, each request answered only once its own are stored."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from steward.service.worker import BackgroundTask


class AuditWriteError(RuntimeError):
    """A request's audit records could not be committed: the request must not be answered as decided."""


class AuditWriter(BackgroundTask):
    """Group commit for the audit log: records from requests that finish together go into one transaction.

    While one transaction is being written (in a worker thread), new records queue up; the next
    transaction takes all of them. Each request still waits until its own records are committed before it
    answers, so the guarantee is unchanged — one fsync now covers many decisions instead of one.

    A group commit that fails is retried request by request, so one bad record (or a bad moment of the
    database) loses only its own request: that request gets :class:`AuditWriteError`, ``on_failure`` is told
    (a metric, a log line without the text), and everyone else's records are committed.
    """

    def __init__(self, append_many: Callable[[list[dict[str, Any]]], Any], max_records: int = 512,
                 on_failure: Callable[[BaseException], None] | None = None) -> None:
        self.append_many, self.max_records, self.on_failure = append_many, max_records, on_failure
        self.queue: asyncio.Queue[tuple[list[dict[str, Any]], asyncio.Future[Any]]] = asyncio.Queue()
        self.transactions = 0
        self.failed = 0  # requests whose records could not be committed

    async def write(self, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Queue ``records`` and wait until they are committed; the stored rows (``seq``, ``hash``: a receipt)."""
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        await self.queue.put((records, fut))
        return list(await fut)

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
                stored = await loop.run_in_executor(None, self.append_many, records) or []
            except Exception:  # noqa: BLE001 — retried one request at a time (once more for a lone one)
                for item in pending:
                    await self._commit_alone(loop, item)
                continue
            self.transactions += 1
            start = 0
            for recs, fut in pending:  # each request gets its own rows back, in the order it gave them
                if not fut.done():
                    fut.set_result(stored[start:start + len(recs)])
                start += len(recs)

    async def _commit_alone(self, loop: asyncio.AbstractEventLoop,
                            item: tuple[list[dict[str, Any]], asyncio.Future[Any]]) -> None:
        records, fut = item
        try:
            stored = await loop.run_in_executor(None, self.append_many, records) or []
        except Exception as exc:  # noqa: BLE001 — this request learns its decision was not stored
            self.failed += 1
            if self.on_failure is not None:
                self.on_failure(exc)
            if not fut.done():
                fut.set_exception(AuditWriteError(f"the audit record could not be committed ({type(exc).__name__})"))
            return
        self.transactions += 1
        if not fut.done():
            fut.set_result(stored)


def audit_failed(metrics: Any, logger: logging.Logger) -> Callable[[BaseException], None]:
    """``AuditWriter``'s failure report: a metric and a log line naming the error, never the record."""

    def report(exc: BaseException) -> None:
        metrics.audit_failures.inc()
        # The type only: a database error's text quotes the statement's parameters, i.e. the record.
        cause = type(getattr(exc, "orig", None) or exc).__name__
        logger.error("an audit record could not be committed (%s); the request was refused", cause)

    return report
