"""Reporting: the retry plan, lock keeping, the report to the engine, and replay of a recorded
outcome when a task is delivered again.

* a mapping completes the task; ``BpmnError`` throws a BPMN error with MLC_ERROR_CODE and
  MLC_ERROR_MESSAGE; ``TaskFailed`` or any other ``Exception`` reports a failure with retries
  counting down from ``max_retries`` and exponential backoff; at 0 the engine raises an incident;
* each outcome is recorded under the task's dedupe key before it is reported, and replayed if the
  task comes back (lock expired, worker killed): its effect happens once (see workers/effects.py);
* while a task runs, its lock is extended every third of the lock duration.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from modelops_mlc.engine import is_lock_lost
from modelops_mlc.errors import EngineError, EngineUnavailable, MlcError, first_line
from workers import effects
from workers.daemon.outcome import Outcome
from workers.variables import MLC_ERROR_CODE, MLC_ERROR_MESSAGE, MLC_JOB_FAILED

if TYPE_CHECKING:
    from modelops_mlc.config import Settings
    from modelops_mlc.engine import ExternalTaskApi
    from workers.daemon.execution import Execution
    from workers.daemon.flight import EventLog, Flight
    from workers.daemon.options import WorkerOptions, WorkerSummary

__all__ = ["LockKeeper", "Replay", "Reporter", "retry_plan"]

MAX_ERROR_MESSAGE = 600  # the engine keeps errorMessage in a bounded column; details hold the rest


def retry_plan(options: "WorkerOptions", retries_now: int | None, outcome: Outcome) -> tuple[int, int]:
    """Retries left after this failure, and the backoff before the next try (ms).

    ``retries_now`` is the engine's count (None before the first failure, which starts the
    count at ``max_retries``); a non-retryable failure goes to 0 at once, an incident.
    """
    if not outcome.retryable:
        retries = 0
    else:
        retries = options.max_retries if retries_now is None else max(int(retries_now) - 1, 0)
    if outcome.retry_in is not None:
        return retries, int(max(outcome.retry_in, 0) * 1000)
    step = max(options.max_retries - retries, 0)
    return retries, int(min(options.retry_backoff_ms * (2**step), options.max_retry_backoff_ms))


class Replay:
    """Outcomes recorded in the MLC store by dedupe key, so a redelivered task has its effect once."""

    def __init__(self, settings: "Settings", execution: "Execution") -> None:
        self._settings = settings
        self._execution = execution

    async def outcome(self, flight: "Flight", run: Callable[[], Awaitable[Outcome]]) -> tuple[Outcome, bool]:
        """The recorded outcome of an earlier delivery (replayed: True), or ``run()``'s, recorded."""
        ctx = flight.ctx
        if not flight.handler.replay:
            return await run(), False
        try:
            found = await self._execution.in_thread(effects.lookup, self._settings, ctx.dedupe_key)
        except MlcError as exc:
            return Outcome("failure", message=f"cannot read the MLC store: {exc.message}"), False
        if found is not None:
            return Outcome.from_record(found), True
        outcome = await run()
        if outcome.kind not in ("complete", "bpmn_error"):
            return outcome, False
        payload = outcome.record_payload()
        try:
            kept = await self._execution.in_thread(
                lambda: effects.record(self._settings, ctx.dedupe_key, topic=ctx.topic, kind=outcome.kind,
                                       payload=payload, task_id=ctx.task_id, worker_id=ctx.worker_id))
        except (MlcError, TypeError, ValueError) as exc:
            return Outcome("failure", message=f"cannot record the outcome in the MLC store: {exc}"), False
        if kept["payload"] != payload:
            return Outcome.from_record(kept), True  # another delivery won the race: report its outcome
        return outcome, False

    async def forget(self, flight: "Flight") -> None:
        if flight.handler.replay:
            await self._execution.in_thread(effects.forget, self._settings, flight.ctx.dedupe_key)

    async def prune(self) -> int:
        return await self._execution.in_thread(effects.prune, self._settings)


class LockKeeper:
    """Extends the lock of a running task every third of its duration until it is reported.

    A timer, not a task per flight: most tasks end long before their first extension is due.
    """

    def __init__(self, api: "ExternalTaskApi", events: "EventLog") -> None:
        self._api = api
        self._events = events
        self._timers: dict[int, asyncio.TimerHandle] = {}
        self._extending: set[asyncio.Task[None]] = set()

    def keep(self, flight: "Flight") -> None:
        interval = max(flight.lock_ms / 3000, 0.05)
        self._timers[id(flight)] = asyncio.get_running_loop().call_later(interval, self._due, flight)

    def release(self, flight: "Flight") -> None:
        timer = self._timers.pop(id(flight), None)
        if timer is not None:
            timer.cancel()

    def _due(self, flight: "Flight") -> None:
        self._timers.pop(id(flight), None)
        if flight.done:
            return
        job = asyncio.ensure_future(self._extend(flight))
        self._extending.add(job)
        job.add_done_callback(self._extending.discard)

    async def _extend(self, flight: "Flight") -> None:
        try:
            async with flight.engine_lock:
                if flight.done:
                    return
                await self._api.extend_lock(flight.ctx.task_id, flight.lock_ms)
            self._events.task(logging.DEBUG, "task.lock_extended", "lock extended", flight)
        except EngineError as exc:
            if flight.done:
                return
            if is_lock_lost(exc):
                self._events.task(logging.WARNING, "task.lock_lost", f"cannot extend the lock: {exc.message}", flight)
                return
            self._events.task(logging.WARNING, "task.extend_failed", exc.message, flight)
        if not flight.done:
            self.keep(flight)


class Reporter:
    """Tells the engine what became of a task, and counts it in the worker's summary."""

    def __init__(self, api: "ExternalTaskApi", options: "WorkerOptions", summary: "WorkerSummary",
                 replay: Replay, events: "EventLog") -> None:
        self._api = api
        self._options = options
        self._summary = summary
        self._replay = replay
        self._events = events

    async def report(self, flight: "Flight", outcome: Outcome, replayed: bool) -> None:
        """Report ``outcome``; a refused complete or BPMN error becomes a failure, so it cannot loop."""
        ctx, summary, events = flight.ctx, self._summary, self._events
        duration_ms = round((time.monotonic() - flight.started) * 1000, 1)
        try:
            if outcome.kind == "complete":
                await self._with_engine_retry(self._api.complete, ctx.task_id, outcome.variables)
                summary.completed += 1
                summary.replayed += int(replayed)
                events.task(logging.INFO, "task.completed", "task completed", flight, duration_ms=duration_ms,
                            replayed=replayed or None, variables=sorted(outcome.variables))
            elif outcome.kind == "bpmn_error":
                code = outcome.error_code or MLC_JOB_FAILED
                message = outcome.message or code
                variables = {MLC_ERROR_CODE: code, MLC_ERROR_MESSAGE: message, **outcome.variables}
                await self._with_engine_retry(self._api.bpmn_error, ctx.task_id, code, message, variables)
                summary.bpmn_errors += 1
                summary.replayed += int(replayed)
                events.task(logging.WARNING, "task.bpmn_error", message, flight, duration_ms=duration_ms,
                            replayed=replayed or None, error_code=code)
            else:
                retries, backoff_ms = retry_plan(self._options, ctx.retries, outcome)
                message = (outcome.message or "").strip() or "handler failed"
                short = first_line(message, MAX_ERROR_MESSAGE)
                await self._with_engine_retry(
                    lambda: self._api.failure(ctx.task_id, short, outcome.details or message, retries=retries,
                                              retry_timeout_ms=backoff_ms))
                summary.failures += 1
                events.task(logging.ERROR, "task.failed", short, flight, duration_ms=duration_ms,
                            retries_left=retries, retry_in_ms=backoff_ms if retries else None)
                if retries == 0:
                    summary.incidents += 1
                    events.task(logging.ERROR, "task.incident", "no retries left: the engine raised an incident",
                                flight, duration_ms=duration_ms)
        except EngineError as exc:
            if is_lock_lost(exc):
                summary.lock_lost += 1
                events.task(logging.WARNING, "task.lock_lost",
                            f"the engine no longer holds this task for us ({exc.message}); outcome dropped", flight)
                return
            if outcome.kind == "failure" or isinstance(exc, EngineUnavailable):
                events.task(logging.ERROR, "task.report_failed", exc.message, flight)
                return
            # The engine refused the result itself (say a variable it cannot store): report that as a
            # technical failure, and forget the recorded outcome so a retry runs the handler again.
            await self._replay.forget(flight)
            await self.report(flight, Outcome("failure", message=f"the engine refused the result: {exc.message}"),
                              False)

    async def _with_engine_retry(self, call: Callable[..., Awaitable[Any]], *args: Any) -> None:
        """Retry a report while the engine is briefly unreachable (restarts) or hit a concurrent
        update of the same task (OptimisticLockingException); other errors propagate."""
        delay = 0.5
        for attempt in range(4):
            try:
                await call(*args)
                return
            except EngineError as exc:
                transient = isinstance(exc, EngineUnavailable) or exc.engine_type == "OptimisticLockingException"
                if not transient or attempt == 3:
                    raise
                await asyncio.sleep(delay)
                delay *= 2

    async def unlock(self, task_id: str) -> None:
        """Hand a task back to the engine for another worker; a failure is logged, not raised."""
        try:
            await self._api.unlock(task_id)
        except EngineError as exc:
            self._events(logging.WARNING, "task.unlock_failed", f"could not unlock task {task_id}: {exc.message}",
                         {"task_id": task_id})

    async def unlock_leftovers(self) -> None:
        """Unlock tasks the engine still counts as ours, e.g. locked for a fetch cancelled at shutdown."""
        try:
            leftovers = await self._api.locked_by_me()
        except EngineError as exc:
            self._events(logging.WARNING, "worker.unlock_failed",
                         f"cannot list tasks locked by this worker: {exc.message}")
            return
        for task_id in leftovers:
            await self.unlock(task_id)
            self._events(logging.INFO, "task.unlocked", "unlocked at shutdown", {"task_id": task_id})
