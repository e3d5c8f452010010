"""The base of the services' background tasks (the batcher, the drift checker, the audit writer)."""

from __future__ import annotations

import asyncio


class BackgroundTask:
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
