"""Slots and fetching: one long-polling fetchAndLock for all topics at a time, asking for the
free slots (plus a short queue while tasks are short).

The slots are counted, not a semaphore juggled across tasks, so ``running <= concurrency``
holds whatever one fetch returns: a task starts only in a slot it took.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING

from modelops_mlc.errors import EngineError

if TYPE_CHECKING:
    from modelops_mlc.engine import ExternalTaskApi, LockedTask, Subscription
    from workers.daemon.flight import EventLog

__all__ = ["PREFETCH_MAX_TASK_S", "Fetcher", "Slots"]

PREFETCH_MAX_TASK_S = 0.5
# Past the engine's end of an abandoned long poll, for the clock skew of its timer and ours.
ABANDONED_POLL_MARGIN_S = 0.25


class Slots:
    """``size`` concurrency slots, counted exactly: a slot is taken to start a task and given
    back once when it has finished."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.free = size
        self._freed = asyncio.Event()

    def take(self) -> bool:
        if self.free <= 0:
            return False
        self.free -= 1
        return True

    def give_back(self) -> None:
        self.free += 1
        self._freed.set()

    async def wait_freed(self, stopping: asyncio.Event) -> None:
        """Return once a slot has been given back (after this call) or a stop was asked for."""
        self._freed.clear()
        waiters = [asyncio.ensure_future(self._freed.wait()), asyncio.ensure_future(stopping.wait())]
        try:
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waiters:
                w.cancel()


class Fetcher:
    """Fetches for the free slots (and a short queue, see below) until stopped, and hands each
    locked task to ``start`` as a slot is free for it.

    Only one fetch is ever pending. Without a queue, a slot that frees while a fetch is pending
    waits for that fetch to return and for the next one; on short tasks that left most slots
    idle (bench/RESULTS.md). So while the recent tasks are short, the fetch also asks for up to
    ``prefetch`` tasks more, kept in a queue that a freed slot starts from at once; the next fetch
    goes out when the queue is down to half. A queued task's lock is already running, which is
    why the queue is used only while the mean task time stays below ``PREFETCH_MAX_TASK_S`` and a
    sixth of the lock duration: then a queued task waits about one task time. A stop unlocks the
    queue at once.
    """

    def __init__(
        self,
        api: "ExternalTaskApi",
        subscriptions: Sequence["Subscription"],
        slots: Slots,
        stopping: asyncio.Event,
        *,
        long_poll_ms: int,
        prefetch: int,
        start: Callable[["LockedTask"], None],
        unlock: Callable[[str], Awaitable[None]],
        events: "EventLog",
    ) -> None:
        self._api = api
        self._subscriptions = list(subscriptions)
        self._slots = slots
        self._stopping = stopping
        self._long_poll_ms = long_poll_ms
        self._prefetch = max(prefetch, 0)
        self._start = start
        self._unlock = unlock
        self._events = events
        self._pending: asyncio.Future[list[LockedTask]] | None = None
        self._pending_until = 0.0  # monotonic time the engine ends the pending long poll
        self._abandoned_until = 0.0
        self._queue: deque[LockedTask] = deque()
        self._mean_task_s: float | None = None
        self._max_queue_wait_s = min(PREFETCH_MAX_TASK_S,
                                     min((s.lock_duration_ms for s in subscriptions), default=0) / 6000)

    @property
    def queued(self) -> int:
        return len(self._queue)

    def task_finished(self, duration_s: float) -> None:
        """A task ended and gave its slot back: start a queued task in it, learn the task time."""
        m = self._mean_task_s
        self._mean_task_s = duration_s if m is None else m + 0.2 * (duration_s - m)
        self._start_queued()

    def cancel_pending(self) -> None:
        """Abandon a pending long poll (a forced stop); the shutdown sweep unlocks what it locked."""
        if self._pending is not None and not self._pending.done():
            self._abandoned_until = self._pending_until
            self._pending.cancel()

    async def abandoned_poll_over(self) -> None:
        """Wait until the engine has ended a long poll we stopped listening to.

        Cancelling the request does not end the poll inside the engine: until its timeout it still
        locks for this worker whatever becomes available, including a task the stop has just
        unlocked, and nobody would read that answer. The sweep of leftovers runs after this.
        """
        delay = self._abandoned_until - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay + ABANDONED_POLL_MARGIN_S)

    def take_queue(self) -> list["LockedTask"]:
        """The queued tasks, which never started: for the caller to unlock."""
        queued = list(self._queue)
        self._queue.clear()
        return queued

    def _prefetching(self) -> bool:
        return (self._prefetch > 0 and self._mean_task_s is not None
                and self._mean_task_s < self._max_queue_wait_s)

    def _want(self) -> int:
        """How many tasks the next fetch asks for (0: wait for a slot first)."""
        if self._prefetching():
            if len(self._queue) > self._prefetch // 2:
                return 0
            return self._slots.free + self._prefetch - len(self._queue)
        return 0 if self._queue else self._slots.free

    def _start_queued(self) -> None:
        while self._queue and not self._stopping.is_set() and self._slots.take():
            self._start(self._queue.popleft())

    async def run(self) -> None:
        """Until a stop is asked for; the queue is left for :meth:`take_queue`."""
        stopping = self._stopping
        backoff = 0.5
        while not stopping.is_set():
            self._start_queued()
            want = self._want()
            if want <= 0:
                await self._slots.wait_freed(stopping)
                continue
            self._pending_until = time.monotonic() + self._long_poll_ms / 1000
            self._pending = asyncio.ensure_future(
                self._api.fetch_and_lock(self._subscriptions, want, self._long_poll_ms))
            try:
                fetched = await self._pending
            except asyncio.CancelledError:
                if stopping.is_set():
                    break  # anything the engine locked for this lost response is unlocked at shutdown
                raise
            except EngineError as exc:
                self._events(logging.WARNING, "worker.fetch_failed", exc.message,
                             {"retry_in_s": backoff, "status": exc.status})
                await _sleep_unless(stopping, backoff)
                backoff = min(backoff * 2, 30.0)
                continue
            finally:
                self._pending = None
            backoff = 0.5
            if stopping.is_set():  # asked to stop while this poll was pending: hand the tasks back
                for task in fetched:
                    await self._unlock(task.get_task_id())
                break
            extra, fetched = fetched[want:], fetched[:want]
            for task in extra:  # the engine honours maxTasks; if it ever does not, the bound still holds
                await self._unlock(task.get_task_id())
            self._queue.extend(fetched)
            self._start_queued()


async def _sleep_unless(event: asyncio.Event, seconds: float) -> None:
    try:
        await asyncio.wait_for(event.wait(), timeout=seconds)
    except asyncio.TimeoutError:
        pass
