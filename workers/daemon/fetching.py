"""Slots and fetching: one long-polling fetchAndLock for all topics, asking for exactly as many
tasks as there are free slots.

The slots are counted, not a semaphore juggled across tasks, so ``in flight <= concurrency``
holds whatever one fetch returns. A slot is taken when a fetch is sent (for every task it may
return) and given back once per task that was not returned or that has finished.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING

from modelops_mlc.errors import EngineError

if TYPE_CHECKING:
    from modelops_mlc.engine import ExternalTaskApi, LockedTask, Subscription
    from workers.daemon.flight import EventLog

__all__ = ["Fetcher", "Slots"]


class Slots:
    """``size`` concurrency slots, counted exactly."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.free = size
        self._freed = asyncio.Event()

    def take_free(self) -> int:
        """Take every free slot (for one fetch); returns how many."""
        taken, self.free = self.free, 0
        return taken

    def give_back(self, count: int = 1) -> None:
        if count > 0:
            self.free += count
            self._freed.set()

    async def wait_free(self, stopping: asyncio.Event) -> None:
        """Return once a slot is free or a stop was asked for."""
        while self.free <= 0 and not stopping.is_set():
            self._freed.clear()
            waiters = [asyncio.ensure_future(self._freed.wait()), asyncio.ensure_future(stopping.wait())]
            try:
                await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for w in waiters:
                    w.cancel()


class Fetcher:
    """Fetches into free slots until stopped; hands each locked task to ``start``."""

    def __init__(
        self,
        api: "ExternalTaskApi",
        subscriptions: Sequence["Subscription"],
        slots: Slots,
        *,
        long_poll_ms: int,
        start: Callable[["LockedTask"], None],
        unlock: Callable[[str], Awaitable[None]],
        events: "EventLog",
    ) -> None:
        self._api = api
        self._subscriptions = list(subscriptions)
        self._slots = slots
        self._long_poll_ms = long_poll_ms
        self._start = start
        self._unlock = unlock
        self._events = events
        self._pending: asyncio.Future[list[LockedTask]] | None = None

    def cancel_pending(self) -> None:
        """Abandon a pending long poll (a forced stop); the shutdown sweep unlocks what it locked."""
        if self._pending is not None and not self._pending.done():
            self._pending.cancel()

    async def run(self, stopping: asyncio.Event) -> None:
        backoff = 0.5
        while not stopping.is_set():
            await self._slots.wait_free(stopping)
            if stopping.is_set():
                break
            want = self._slots.take_free()
            self._pending = asyncio.ensure_future(
                self._api.fetch_and_lock(self._subscriptions, want, self._long_poll_ms))
            try:
                fetched = await self._pending
            except asyncio.CancelledError:
                self._slots.give_back(want)
                if stopping.is_set():
                    break  # anything the engine locked for this lost response is unlocked at shutdown
                raise
            except EngineError as exc:
                self._slots.give_back(want)
                self._events(logging.WARNING, "worker.fetch_failed", exc.message,
                             {"retry_in_s": backoff, "status": exc.status})
                await _sleep_unless(stopping, backoff)
                backoff = min(backoff * 2, 30.0)
                continue
            finally:
                self._pending = None
            backoff = 0.5
            if stopping.is_set():  # asked to stop while this poll was pending: hand the tasks back
                self._slots.give_back(want)
                for task in fetched:
                    await self._unlock(task.get_task_id())
                break
            extra, fetched = fetched[want:], fetched[:want]
            self._slots.give_back(want - len(fetched))
            for task in extra:  # the engine honours maxTasks; if it ever does not, the bound still holds
                await self._unlock(task.get_task_id())
            for task in fetched:
                self._start(task)


async def _sleep_unless(event: asyncio.Event, seconds: float) -> None:
    try:
        await asyncio.wait_for(event.wait(), timeout=seconds)
    except asyncio.TimeoutError:
        pass
