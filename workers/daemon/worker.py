"""The worker: fetching into counted slots, execution, reporting and status, composed.

:class:`Worker` takes its :class:`~modelops_mlc.engine.ExternalTaskApi` as an argument (tests pass
a fake one); :func:`run_worker` builds the real one and runs a worker until it is stopped.
Stopping (SIGTERM/SIGINT, or :meth:`Worker.request_shutdown`): no new fetch; running tasks get
the grace period to finish; the rest are unlocked, with anything else the engine still counts as
locked by this worker id; a second signal skips the rest of the grace period.
Why the project has its own loop rather than camunda-external-task-client-python3's workers is
in docs/workers.md.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import logging
import os
import time
from typing import TYPE_CHECKING, Any

from modelops_mlc.daemon import GracefulStop, StatusFile
from modelops_mlc.engine import ExternalTaskApi, Subscription
from modelops_mlc.errors import MlcError, UsageError
from workers.daemon.execution import Execution
from workers.daemon.fetching import Fetcher, Slots
from workers.daemon.flight import EventLog, Flight
from workers.daemon.options import WorkerOptions, WorkerSummary
from workers.daemon.reporting import LockKeeper, Replay, Reporter
from workers.daemon.status import StatusLoop, flight_status
from workers.handlers import TaskContext, TopicHandler, TopicHandlers

if TYPE_CHECKING:
    from modelops_mlc.config import Settings
    from modelops_mlc.engine import LockedTask

__all__ = ["Worker", "run_worker"]


class Worker:
    """Serves the topics of :class:`TopicHandlers` over ``api`` until asked to stop."""

    def __init__(self, settings: "Settings", options: WorkerOptions, handlers: TopicHandlers,
                 api: ExternalTaskApi) -> None:
        options.validate()
        topics = list(options.topics) if options.topics else handlers.names()
        if not topics:
            raise UsageError("no topics to serve", hint="load handlers with --handlers or name topics with --topic")
        self.handlers: dict[str, TopicHandler] = {t: handlers.get(t) for t in dict.fromkeys(topics)}
        self.settings = settings
        self.options = options
        self.summary = WorkerSummary()
        self._events = EventLog(options.worker_id)
        self._in_flight: dict[int, Flight] = {}
        self._starts = itertools.count()
        self._peak = 0
        self._stopping = asyncio.Event()
        self._force = asyncio.Event()
        self._stop = GracefulStop(options.grace_period_s, on_request=self._on_stop, on_force=self._on_force)
        self._slots = Slots(options.concurrency)
        self._reports = asyncio.Semaphore(options.concurrency)  # reports in flight, at most
        self._execution = Execution(options)
        self._replay = Replay(settings, self._execution)
        self._reporter = Reporter(api, options, self.summary, self._replay, self._events)
        self._keeper = LockKeeper(api, self._events)
        self._fetcher = Fetcher(api, self._subscriptions(), self._slots, self._stopping,
                                long_poll_ms=options.long_poll_ms,
                                prefetch=options.concurrency if options.prefetch is None else options.prefetch,
                                start=self._start, unlock=self._reporter.unlock, events=self._events)
        self._status = StatusLoop(StatusFile(settings.home, options.worker_id), self.status,
                                  options.status_interval_s)

    # -- public ---------------------------------------------------------------------------------

    @property
    def topics(self) -> list[str]:
        return list(self.handlers)

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    def request_shutdown(self, reason: str = "requested") -> None:
        """Stop fetching and drain (idempotent); a second call skips the rest of the grace period.

        A pending long poll is left to return rather than cancelled: the engine does not notice
        a client that hung up, and would lock tasks for the abandoned request until their locks
        expire. Its tasks are unlocked at once. (A second signal does cancel it; the sweep at the
        end unlocks what it can.)
        """
        self._stop.request(reason)

    def _on_stop(self, reason: str) -> None:
        self._events(logging.INFO, "worker.stopping", "no new tasks; waiting for running ones",
                     {"reason": reason, "in_flight": len(self._in_flight),
                      "grace_period_s": self.options.grace_period_s})
        self._stopping.set()
        self._status.mark_dirty()

    def _on_force(self, reason: str) -> None:
        self._events(logging.WARNING, "worker.force_stop", "stopping now, without waiting for running tasks",
                     {"reason": reason, "in_flight": len(self._in_flight)})
        self._force.set()
        self._fetcher.cancel_pending()

    async def run(self, *, install_signal_handlers: bool = True) -> WorkerSummary:
        """Serve until :meth:`request_shutdown` (or SIGTERM/SIGINT); returns what was done."""
        if install_signal_handlers:
            self._stop.install(asyncio.get_running_loop())
        self._events(logging.INFO, "worker.started", f"serving {', '.join(self.topics)}",
                     {"topics": self.topics, "concurrency": self.options.concurrency,
                      "lock_duration_ms": self.options.lock_duration_ms, "engine_url": self.settings.engine_url,
                      "pid": os.getpid()})
        status_task = asyncio.create_task(self._status.run())
        try:
            await self._prune_records()
            await self._fetcher.run()
        finally:
            await self._drain()
            await self._fetcher.abandoned_poll_over()
            await self._reporter.unlock_leftovers()
            self._status.close()
            await asyncio.gather(status_task, return_exceptions=True)
            self._status.remove()
            self._execution.shutdown(abandoned=bool(self.summary.abandoned))
            self._stop.uninstall()
            self._events(logging.INFO, "worker.stopped", "worker stopped",
                         {**self.summary.__dict__, "peak_in_flight": self._peak})
        return self.summary

    def status(self) -> dict[str, Any]:
        """What the status file shows of the worker (the file adds pid, host, start time, heartbeat)."""
        return {
            "worker_id": self.options.worker_id,
            "engine_url": self.settings.engine_url,
            "topics": self.topics,
            "concurrency": self.options.concurrency,
            "state": "stopping" if self._stopping.is_set() else "running",
            "in_flight": [flight_status(f) for f in self._in_flight.values() if f.holds_slot],
            "reporting": sum(not f.holds_slot for f in self._in_flight.values()),
            "queued": self._fetcher.queued,
            "counts": dict(self.summary.__dict__),
        }

    # -- running a task -------------------------------------------------------------------------

    def _subscriptions(self) -> list[Subscription]:
        keys = tuple(self.options.process_keys) if self.options.process_keys else None
        return [
            Subscription(name, lock_duration_ms=handler.lock_duration_ms or self.options.lock_duration_ms,
                         variables=handler.variables, process_definition_keys=keys)
            for name, handler in self.handlers.items()
        ]

    async def _prune_records(self) -> None:
        try:
            dropped = await self._replay.prune()
        except MlcError as exc:  # the store is down: tasks will say so; do not refuse to start
            self._events(logging.WARNING, "worker.prune_failed", f"cannot prune old task records: {exc.message}")
            return
        if dropped:
            self._events(logging.INFO, "worker.pruned", f"dropped {dropped} task records older than 30 days")

    def _context(self, task: "LockedTask") -> TaskContext:
        return TaskContext(
            topic=task.get_topic_name(),
            task_id=task.get_task_id(),
            process_instance_id=task.get_process_instance_id(),
            activity_id=task.get_activity_id(),
            activity_instance_id=task.get_activity_instance_id(),
            variables=task.typed_variables(),
            settings=self.settings,
            worker_id=self.options.worker_id,
            business_key=task.get_business_key(),
            process_definition_key=task.get_process_definition_key(),
            retries=task.get_retries(),
            extension_properties=task.get_extension_properties(),
        )

    def _start(self, task: "LockedTask") -> None:
        """Run a task in the slot the fetcher took for it."""
        ctx = self._context(task)
        handler = self.handlers[ctx.topic]
        flight = Flight(task=task, ctx=ctx, handler=handler, started=time.monotonic(),
                        started_at=dt.datetime.now(dt.timezone.utc).isoformat(),
                        lock_ms=handler.lock_duration_ms or self.options.lock_duration_ms)
        # Keyed per start, not per task id: a task whose lock lapsed can come back to us while
        # its first run is still going, and each run holds its own slot.
        key = next(self._starts)
        self._in_flight[key] = flight
        self._peak = max(self._peak, self._slots.size - self._slots.free)
        flight.job = asyncio.create_task(self._execute(flight), name=f"task-{ctx.task_id}")
        flight.job.add_done_callback(lambda _job, k=key: self._finished(k))
        self._status.mark_dirty()

    def _finished(self, key: int) -> None:
        flight = self._in_flight.pop(key, None)
        if flight is not None:
            self._release_slot(flight)
            self._status.mark_dirty()

    def _release_slot(self, flight: Flight) -> None:
        """The one place a slot is given back: exactly once per started task, as soon as its
        outcome is known (or its run ended otherwise)."""
        if flight.holds_slot:
            flight.holds_slot = False
            self._slots.give_back()
            self._fetcher.task_finished(time.monotonic() - flight.started)

    async def _execute(self, flight: Flight) -> None:
        execution = self._execution
        self._events.task(logging.INFO, "task.started", "task locked", flight, retries=flight.ctx.retries)
        self._keeper.keep(flight)
        try:
            outcome, replayed = await self._replay.outcome(flight, lambda: execution.run(flight.handler, flight.ctx))
            # The handler is done: its slot takes the next task while the report goes out. A
            # report waits for the engine (~ms, seconds when it is busy), and a slot held through
            # it would idle for that long on every task. Reports in flight are bounded too.
            async with self._reports:
                self._release_slot(flight)
                async with flight.engine_lock:
                    await self._reporter.report(flight, outcome, replayed)
        except asyncio.CancelledError:
            if not flight.abandoned:
                raise
        except Exception:  # a bug of ours must not take the daemon down; the lock expires and it comes back
            logging.getLogger("workers.daemon").exception(
                "unexpected error running task %s", flight.ctx.task_id,
                extra={"event": "task.crashed", "fields": flight.fields(worker_id=self.options.worker_id)})
        finally:
            flight.done = True
            self._keeper.release(flight)

    # -- stopping -------------------------------------------------------------------------------

    async def _drain(self) -> None:
        """Unlock the queued tasks; wait for running ones up to the grace period (or a second
        signal), then unlock the rest."""
        for task in self._fetcher.take_queue():
            await self._reporter.unlock(task.get_task_id())
        while self._in_flight and not self._force.is_set():
            remaining = self._stop.remaining()
            if remaining <= 0:
                break
            jobs = [f.job for f in self._in_flight.values() if f.job is not None]
            force = asyncio.ensure_future(self._force.wait())
            try:
                await asyncio.wait([*jobs, force], timeout=remaining, return_when=asyncio.FIRST_COMPLETED)
            finally:
                force.cancel()
        for flight in list(self._in_flight.values()):
            flight.abandoned = True
            self.summary.abandoned += 1
            if flight.holds_slot and not flight.handler.is_async and not flight.handler.cpu_bound:
                self.summary.abandoned_threads += 1
            if flight.job is not None:
                flight.job.cancel()
            await self._reporter.unlock(flight.ctx.task_id)
            self._events.task(logging.WARNING, "task.abandoned", "not finished in time: task unlocked for another worker",
                              flight, duration_ms=round((time.monotonic() - flight.started) * 1000, 1))
        jobs = [f.job for f in self._in_flight.values() if f.job is not None]
        if jobs:
            await asyncio.gather(*jobs, return_exceptions=True)


def run_worker(settings: "Settings", options: WorkerOptions, handlers: TopicHandlers) -> WorkerSummary:
    """Run a worker over the real external-task API on a fresh event loop until it is stopped."""

    async def main() -> WorkerSummary:
        async with ExternalTaskApi(settings, options.worker_id,
                                   max_connections=options.concurrency * 2 + 4) as api:
            return await Worker(settings, options, handlers, api).run()

    return asyncio.run(main())
