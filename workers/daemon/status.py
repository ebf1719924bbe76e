"""Status: what `mlc worker status` and `mlc status` show of a running worker, rewritten on
changes (a burst of them makes one write) and at each heartbeat."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from modelops_mlc.daemon import StatusFile
    from workers.daemon.flight import Flight

__all__ = ["StatusLoop", "flight_status"]

MIN_WRITE_INTERVAL_S = 0.5  # a busy worker changes state per task; the file need not follow each


def flight_status(flight: "Flight") -> dict[str, Any]:
    return flight.fields(started_at=flight.started_at)


class StatusLoop:
    """Writes ``snapshot()`` to the status file when marked dirty, and every ``heartbeat_s``."""

    def __init__(self, file: "StatusFile", snapshot: Callable[[], dict[str, Any]], heartbeat_s: float) -> None:
        self._file = file
        self._snapshot = snapshot
        self._heartbeat_s = heartbeat_s
        self._dirty = asyncio.Event()
        self._closing = False

    def mark_dirty(self) -> None:
        self._dirty.set()

    def write(self) -> None:
        self._file.write(self._snapshot())

    async def run(self) -> None:
        """Until :meth:`close`. It ends on a flag rather than by cancellation: ``asyncio.wait_for``
        in 3.11 can swallow a cancel that arrives as its inner wait completes, hanging the stop."""
        loop = asyncio.get_running_loop()
        while not self._closing:
            self.write()
            written = loop.time()
            self._dirty.clear()
            waiter = asyncio.ensure_future(self._dirty.wait())
            try:
                await asyncio.wait({waiter}, timeout=self._heartbeat_s)
            finally:
                waiter.cancel()
            gap = MIN_WRITE_INTERVAL_S - (loop.time() - written)
            if gap > 0 and not self._closing:
                await asyncio.sleep(gap)

    def close(self) -> None:
        self._closing = True
        self._dirty.set()

    def remove(self) -> None:
        self._file.remove()
