"""The external-task worker daemon: one asyncio loop, exact concurrency slots, graceful stop.

Built on camunda-external-task-client-python3 (4.5) as follows. bench/worker_throughput.py
drains no-op one-task instances on the real engine, concurrency 8, every contender warmed up and
run in rotating rounds (bench/RESULTS.md, run of 2026-11-23 on 2 shared cores, median tasks/s):
this runner 151, the library's async worker 14 (default or tuned), its sync worker 88 (default)
and 212 (tuned: 100 tasks a fetch, one at a time), Camunda's JS client 26 (default) and 240
(tuned), a bare httpx fetch-and-complete loop (the bound) 224. The tuned sync worker is fast only
on no-op tasks: it runs a fetch's tasks one after another, so real work serialises (below). This
runner is 11x the async worker, 0.67 of the bound and 0.63 of the tuned JS client; why it trails
those two is not profiled yet.

* its **sync** ``ExternalTaskWorker`` runs the tasks of a fetch one after another, catches
  ``BaseException`` around fetch-and-execute (so Ctrl-C is swallowed) and then sleeps 300 s
  after any error: unusable for a daemon that must stop on SIGTERM and serve many topics;
* its **async** ``AsyncExternalTaskWorker`` is the nearer fit, but its loop is wrong for us:
  it acquires the semaphore once per fetch and releases it once per *task* fetched, so the limit
  drifts upward whenever a fetch returns several tasks (latent in 4.5 only because its client
  hard-codes ``maxTasks: 1``, which instead costs a round trip per task); it runs one fetch loop
  per topic and each loop holds a slot through its long poll, so with fewer slots than topics a
  new task waits until some other topic's poll times out; it sleeps 1 s after every empty
  fetch; and ``stop()`` cancels running tasks and reports them failed instead of letting them
  finish. Its HTTP client has further faults (see external_tasks.py).

So this module replaces the fetch loop and the client and keeps the library's ``ExternalTask``
record wrapper. The loop:

* one ``fetchAndLock`` for all subscribed topics, long polling (``asyncResponseTimeout``), asking
  for exactly as many tasks as there are free slots; the slots are counted, not a semaphore
  juggled across tasks, so ``in flight <= concurrency`` holds whatever one fetch returns;
* handlers run as coroutines (async), in a thread (plain functions, so a blocking call does not
  stall the loop) or in a process pool (``cpu_bound``: train, score, run-test, compare, drift);
* while a task runs, its lock is extended every third of the lock duration;
* outcomes: a mapping completes the task; ``BpmnError`` throws a BPMN error with
  MLC_ERROR_CODE / MLC_ERROR_MESSAGE; ``TaskFailed`` or any other ``Exception`` reports a
  failure with retries counting down from ``max_retries`` and exponential backoff; at 0 the
  engine raises an incident. ``BaseException`` (KeyboardInterrupt, SystemExit) is never caught;
* each outcome is recorded under the task's dedupe key before it is reported, and replayed if
  the task is delivered again (see effects.py);
* SIGTERM/SIGINT: stop fetching, let in-flight tasks finish within the grace period, unlock the
  rest (and anything else still locked by this worker id), exit cleanly. A second signal skips
  the grace period.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import json
import logging
import os
import signal
import socket
import threading
import time
import traceback
from collections.abc import Mapping
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from camunda.external_task.external_task import ExternalTask

from modelops_mlc.engine.variables import from_engine, to_engine
from modelops_mlc.errors import BpmnError, EngineError, EngineUnavailable, MlcError, TaskFailed, UsageError
from workers import effects
from workers.external_tasks import ExternalTaskApi, is_lock_lost
from workers.registry import TaskContext, TopicHandler, TopicRegistry
from modelops_mlc.worker_status import status_path, write_status
from workers.variables import MLC_ERROR_CODE, MLC_ERROR_MESSAGE

if TYPE_CHECKING:
    from modelops_mlc.config import Settings

__all__ = ["Outcome", "Worker", "WorkerOptions", "WorkerSummary", "call_handler", "default_worker_id", "run_worker"]

log = logging.getLogger(__name__)

_MAX_ERROR_MESSAGE = 600  # the engine keeps errorMessage in a bounded column; details hold the rest
_POOL_MODEL_CACHE = 8  # loaded pyfunc models each pool process keeps (LRU), see Registry.load_pyfunc


def default_worker_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


@dataclass
class WorkerOptions:
    """How one worker runs; the CLI maps its flags onto these."""

    worker_id: str = field(default_factory=default_worker_id)
    topics: tuple[str, ...] | None = None  # None: every topic of the registry
    process_keys: tuple[str, ...] | None = None  # only tasks of these process definitions (None: any)
    concurrency: int = 4
    lock_duration_ms: int = 60_000
    long_poll_ms: int = 10_000  # a stop waits for a pending poll, so keep it modest
    max_retries: int = 3
    retry_backoff_ms: int = 5_000  # first retry; doubles per retry
    max_retry_backoff_ms: int = 600_000
    grace_period_s: float = 30.0
    process_pool_size: int | None = None  # None: min(concurrency, CPUs)
    status_interval_s: float = 5.0
    log_format: str | None = None  # how pool processes log ("text"/"json"); None: they do not configure logging
    log_level: int = logging.INFO

    def validate(self) -> None:
        if self.concurrency < 1:
            raise UsageError("--concurrency must be at least 1")
        if self.lock_duration_ms < 100:
            raise UsageError("--lock-duration must be at least 100 ms")
        if self.max_retries < 0:
            raise UsageError("--retries must be 0 or more")
        if self.long_poll_ms < 0 or self.retry_backoff_ms < 0 or self.grace_period_s < 0:
            raise UsageError("durations must not be negative")
        if not self.worker_id.strip():
            raise UsageError("--worker-id must not be empty")


@dataclass
class WorkerSummary:
    completed: int = 0
    bpmn_errors: int = 0
    failures: int = 0
    incidents: int = 0
    replayed: int = 0
    lock_lost: int = 0
    abandoned: int = 0  # still running when the grace period ended; unlocked for another worker
    abandoned_threads: int = 0  # of those, ones in a thread that Python cannot stop


@dataclass
class Outcome:
    """What a handler produced, in a picklable form (it crosses the process pool)."""

    kind: str  # complete | bpmn_error | failure
    variables: dict[str, Any] = field(default_factory=dict)
    error_code: str | None = None
    message: str | None = None
    details: str | None = None
    retryable: bool = True
    retry_in: float | None = None

    @classmethod
    def from_result(cls, result: Any) -> "Outcome":
        if result is None:
            return cls("complete")
        if isinstance(result, Mapping):
            return cls("complete", variables={str(k): v for k, v in result.items()})
        return cls("failure", message=f"handler returned {type(result).__name__}, expected a mapping of variables or None",
                   retryable=False)

    @classmethod
    def from_exception(cls, exc: Exception) -> "Outcome":
        if isinstance(exc, BpmnError):
            return cls("bpmn_error", variables=dict(exc.variables), error_code=exc.code, message=exc.message)
        details = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        if isinstance(exc, TaskFailed):
            return cls("failure", message=exc.message, details=details, retryable=exc.retryable, retry_in=exc.retry_in)
        text = exc.message if isinstance(exc, MlcError) else str(exc)
        return cls("failure", message=f"{type(exc).__name__}: {text}" if text else type(exc).__name__, details=details)

    @classmethod
    def from_record(cls, found: Mapping[str, Any]) -> "Outcome":
        payload = dict(found.get("payload") or {})
        return cls(found["kind"], variables=dict(payload.get("variables") or {}), error_code=payload.get("error_code"),
                   message=payload.get("message"))

    def record_payload(self) -> dict[str, Any]:
        """JSON-safe form for the store (dates and numpy scalars become text/numbers)."""
        data = {"variables": self.variables, "error_code": self.error_code, "message": self.message}
        return json.loads(json.dumps(data, default=_json_default))


def _json_default(value: Any) -> Any:
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    return str(value)


def call_handler(func: Any, ctx: TaskContext) -> Outcome:
    """Run a plain handler (in a thread or a pool process) and turn what it did into an Outcome."""
    try:
        return Outcome.from_result(func(ctx))
    except Exception as exc:  # never BaseException: KeyboardInterrupt/SystemExit must stop us
        return Outcome.from_exception(exc)


def _init_pool_process(log_format: str | None, level: int, worker_pid: int) -> None:
    """Set up a pool process: ignore SIGINT (Ctrl-C reaches the whole process group; the worker
    decides), and exit when the worker is gone. A worker killed with -9 must not leave a job
    running on that the engine hands to another worker once the lock expires; the pool's own
    machinery does not notice (the forkserver is their parent, and it waits for them)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    from modelops_mlc.registry.client import set_model_cache_size

    set_model_cache_size(_POOL_MODEL_CACHE)  # versions are immutable: reload a model per task no more
    if log_format:
        from workers.logfmt import configure

        configure(log_format, level=level)
    threading.Thread(target=_exit_with_worker, args=(worker_pid,), name="mlc-watch-worker", daemon=True).start()


def _exit_with_worker(worker_pid: int, interval: float = 0.5) -> None:
    import psutil

    try:
        worker = psutil.Process(worker_pid)
        while worker.is_running() and worker.status() != psutil.STATUS_ZOMBIE:  # is_running: pid not reused
            time.sleep(interval)
    except psutil.Error:
        pass
    os._exit(1)


@dataclass
class _InFlight:
    task: ExternalTask
    raw: dict[str, Any]
    ctx: TaskContext
    handler: TopicHandler
    started: float
    started_at: str
    job: "asyncio.Task[None] | None" = None
    engine_lock: asyncio.Lock = field(default_factory=asyncio.Lock)  # extendLock and the report never overlap
    done: bool = False
    abandoned: bool = False

    def fields(self, **extra: Any) -> dict[str, Any]:
        base = {
            "topic": self.ctx.topic,
            "task_id": self.ctx.task_id,
            "process_instance_id": self.ctx.process_instance_id,
            "model_id": self.ctx.model_id,
            "activity_id": self.ctx.activity_id,
            "worker_id": self.ctx.worker_id,
        }
        base.update(extra)
        return base


class Worker:
    """Serves the topics of a :class:`TopicRegistry` against the engine until asked to stop."""

    def __init__(self, settings: "Settings", options: WorkerOptions, registry: TopicRegistry) -> None:
        options.validate()
        topics = list(options.topics) if options.topics else registry.names()
        if not topics:
            raise UsageError("no topics to serve", hint="load handlers with --handlers or name topics with --topic")
        self.handlers: dict[str, TopicHandler] = {t: registry.get(t) for t in dict.fromkeys(topics)}
        self.settings = settings
        self.options = options
        self.summary = WorkerSummary()
        self._in_flight: dict[int, _InFlight] = {}
        self._starts = itertools.count()
        self._free = options.concurrency
        self._peak = 0
        self._slot_freed = asyncio.Event()
        self._stopping = asyncio.Event()
        self._force = asyncio.Event()
        self._fetch_task: asyncio.Future[list[dict[str, Any]]] | None = None
        self._stop_deadline: float | None = None
        self._closing = False
        self._status_dirty = asyncio.Event()
        self._status_file = status_path(settings.home, options.worker_id)
        self._started_at = dt.datetime.now(dt.timezone.utc).isoformat()
        self._api: ExternalTaskApi | None = None
        self._threads: ThreadPoolExecutor | None = None
        self._processes: ProcessPoolExecutor | None = None

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
        if self._stopping.is_set():
            if not self._force.is_set():
                self._event(logging.WARNING, "worker.force_stop", "stopping now, without waiting for running tasks",
                            {"reason": reason, "in_flight": len(self._in_flight)})
                self._force.set()
                if self._fetch_task is not None and not self._fetch_task.done():
                    self._fetch_task.cancel()
            return
        self._event(logging.INFO, "worker.stopping", "no new tasks; waiting for running ones",
                    {"reason": reason, "in_flight": len(self._in_flight), "grace_period_s": self.options.grace_period_s})
        self._stop_deadline = time.monotonic() + self.options.grace_period_s
        self._stopping.set()
        self._status_dirty.set()

    async def run(self, *, install_signal_handlers: bool = True) -> WorkerSummary:
        """Serve until :meth:`request_shutdown` (or SIGTERM/SIGINT); returns what was done."""
        loop = asyncio.get_running_loop()
        self._api = ExternalTaskApi(self.settings, self.options.worker_id,
                                    max_connections=self.options.concurrency * 2 + 4)
        self._threads = ThreadPoolExecutor(max_workers=self.options.concurrency, thread_name_prefix="mlc-task")
        installed: list[int] = []
        if install_signal_handlers:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, self.request_shutdown, signal.Signals(sig).name)
                installed.append(sig)
        self._event(logging.INFO, "worker.started", f"serving {', '.join(self.topics)}",
                    {"topics": self.topics, "concurrency": self.options.concurrency,
                     "lock_duration_ms": self.options.lock_duration_ms, "engine_url": self.settings.engine_url,
                     "pid": os.getpid()})
        status_task = asyncio.create_task(self._status_loop())
        try:
            await self._prune_records()
            await self._fetch_loop()
        finally:
            await self._drain()
            await self._unlock_leftovers()
            self._closing = True
            self._status_dirty.set()
            await asyncio.gather(status_task, return_exceptions=True)
            self._status_file.unlink(missing_ok=True)
            await self._api.aclose()
            self._shutdown_pools()
            for sig in installed:
                loop.remove_signal_handler(sig)
            self._event(logging.INFO, "worker.stopped", "worker stopped",
                        {**self.summary.__dict__, "peak_in_flight": self._peak})
        return self.summary

    async def _prune_records(self) -> None:
        try:
            dropped = await asyncio.get_running_loop().run_in_executor(self._threads, effects.prune, self.settings)
        except MlcError as exc:  # the store is down: tasks will say so; do not refuse to start
            log.warning("cannot prune old task records: %s", exc.message)
            return
        if dropped:
            log.info("dropped %d task records older than 30 days", dropped)

    # -- fetching -------------------------------------------------------------------------------

    def _topic_specs(self) -> list[dict[str, Any]]:
        specs = []
        for name, handler in self.handlers.items():
            spec: dict[str, Any] = {
                "topicName": name,
                "lockDuration": handler.lock_duration_ms or self.options.lock_duration_ms,
                "includeExtensionProperties": True,
            }
            if handler.variables is not None:
                spec["variables"] = list(handler.variables)
            if self.options.process_keys:
                spec["processDefinitionKeyIn"] = list(self.options.process_keys)
            specs.append(spec)
        return specs

    async def _wait_for_slot(self) -> None:
        while self._free <= 0 and not self._stopping.is_set():
            self._slot_freed.clear()
            waiters = [asyncio.ensure_future(self._slot_freed.wait()), asyncio.ensure_future(self._stopping.wait())]
            try:
                await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for w in waiters:
                    w.cancel()

    async def _sleep_unless_stopping(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self._stopping.wait(), timeout=seconds)
        except asyncio.TimeoutError:
            pass

    async def _fetch_loop(self) -> None:
        assert self._api is not None
        specs = self._topic_specs()
        backoff = 0.5
        while not self._stopping.is_set():
            await self._wait_for_slot()
            if self._stopping.is_set():
                break
            want = self._free
            self._free -= want  # reserved for this fetch; given back below for every task not returned
            self._fetch_task = asyncio.ensure_future(self._api.fetch_and_lock(specs, want, self.options.long_poll_ms))
            try:
                fetched = await self._fetch_task
            except asyncio.CancelledError:
                self._free += want
                if self._stopping.is_set():
                    break  # anything the engine locked for this lost response is unlocked at shutdown
                raise
            except EngineError as exc:
                self._free += want
                self._event(logging.WARNING, "worker.fetch_failed", exc.message,
                            {"retry_in_s": backoff, "status": exc.status})
                await self._sleep_unless_stopping(backoff)
                backoff = min(backoff * 2, 30.0)
                continue
            finally:
                self._fetch_task = None
            backoff = 0.5
            if self._stopping.is_set():  # asked to stop while this poll was pending
                self._free += want
                for raw in fetched:
                    await self._safe_unlock(raw["id"])
                break
            extra = fetched[want:]
            fetched = fetched[:want]
            self._free += want - len(fetched)
            for raw in extra:  # the engine honours maxTasks; if it ever does not, the bound still holds
                await self._safe_unlock(raw["id"])
            for raw in fetched:
                self._start(raw)

    # -- running a task -------------------------------------------------------------------------

    def _context(self, task: ExternalTask, raw: dict[str, Any]) -> TaskContext:
        return TaskContext(
            topic=task.get_topic_name(),
            task_id=task.get_task_id(),
            process_instance_id=task.get_process_instance_id(),
            activity_id=task.get_activity_id(),
            activity_instance_id=raw.get("activityInstanceId") or "",
            variables=from_engine(raw.get("variables")),
            settings=self.settings,
            worker_id=self.options.worker_id,
            business_key=task.get_business_key(),
            process_definition_key=raw.get("processDefinitionKey"),
            retries=raw.get("retries"),
            extension_properties=task.get_extension_properties(),
        )

    def _start(self, raw: dict[str, Any]) -> None:
        task = ExternalTask(raw)
        ctx = self._context(task, raw)
        flight = _InFlight(task=task, raw=raw, ctx=ctx, handler=self.handlers[ctx.topic], started=time.monotonic(),
                           started_at=dt.datetime.now(dt.timezone.utc).isoformat())
        # Keyed per start, not per task id: a task whose lock lapsed can come back to us while
        # its first run is still going, and each run holds its own slot.
        key = next(self._starts)
        self._in_flight[key] = flight
        self._peak = max(self._peak, len(self._in_flight))
        flight.job = asyncio.create_task(self._execute(flight), name=f"task-{ctx.task_id}")
        flight.job.add_done_callback(lambda _job, k=key: self._finished(k))
        self._status_dirty.set()

    def _finished(self, key: int) -> None:
        """The one place a slot is given back: exactly once per started task."""
        if self._in_flight.pop(key, None) is not None:
            self._free += 1
            self._slot_freed.set()
            self._status_dirty.set()

    async def _execute(self, flight: _InFlight) -> None:
        ctx, handler = flight.ctx, flight.handler
        self._event(logging.INFO, "task.started", "task locked", flight.fields(retries=ctx.retries))
        lock_ms = handler.lock_duration_ms or self.options.lock_duration_ms
        keeper = asyncio.create_task(self._keep_lock(flight, lock_ms))
        try:
            outcome, replayed = await self._outcome(flight)
            async with flight.engine_lock:
                await self._report(flight, outcome, replayed)
        except asyncio.CancelledError:
            if not flight.abandoned:
                raise
        except Exception:  # a bug of ours must not take the daemon down; the lock expires and it comes back
            log.exception("unexpected error running task %s", ctx.task_id,
                          extra={"event": "task.crashed", "fields": flight.fields()})
        finally:
            flight.done = True
            keeper.cancel()

    async def _outcome(self, flight: _InFlight) -> tuple[Outcome, bool]:
        """Replay the recorded outcome of an earlier delivery, or run the handler and record it."""
        ctx, handler = flight.ctx, flight.handler
        loop = asyncio.get_running_loop()
        if handler.replay:
            try:
                found = await loop.run_in_executor(self._threads, effects.lookup, self.settings, ctx.dedupe_key)
            except MlcError as exc:
                return Outcome("failure", message=f"cannot read the MLC store: {exc.message}"), False
            if found is not None:
                return Outcome.from_record(found), True
        outcome = await self._invoke(handler, ctx)
        if handler.replay and outcome.kind in ("complete", "bpmn_error"):
            try:
                kept = await loop.run_in_executor(
                    self._threads,
                    lambda: effects.record(self.settings, ctx.dedupe_key, topic=ctx.topic, kind=outcome.kind,
                                           payload=outcome.record_payload(), task_id=ctx.task_id,
                                           worker_id=ctx.worker_id),
                )
            except (MlcError, TypeError, ValueError) as exc:
                return Outcome("failure", message=f"cannot record the outcome in the MLC store: {exc}"), False
            if kept["payload"] != outcome.record_payload():
                return Outcome.from_record(kept), True  # another delivery won the race: report its outcome
        return outcome, False

    async def _invoke(self, handler: TopicHandler, ctx: TaskContext) -> Outcome:
        loop = asyncio.get_running_loop()
        if handler.is_async:
            try:
                return Outcome.from_result(await handler.func(ctx))  # type: ignore[misc]
            except Exception as exc:
                return Outcome.from_exception(exc)
        if handler.cpu_bound:
            try:
                return await loop.run_in_executor(self._process_pool(), call_handler, handler.func, ctx)
            except BrokenProcessPool as exc:
                self._processes = None  # a pool process died (killed, out of memory): start a fresh pool
                return Outcome("failure", message=f"the worker process running the task died: {exc}")
            except Exception as exc:  # e.g. the handler or its context cannot be pickled
                return Outcome.from_exception(exc)
        return await loop.run_in_executor(self._threads, call_handler, handler.func, ctx)

    def _process_pool(self) -> Executor:
        if self._processes is None:
            import multiprocessing

            method = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
            size = self.options.process_pool_size or max(1, min(self.options.concurrency, os.cpu_count() or 1))
            self._processes = ProcessPoolExecutor(
                max_workers=size,
                mp_context=multiprocessing.get_context(method),  # no fork() of a threaded event loop
                initializer=_init_pool_process,
                initargs=(self.options.log_format, self.options.log_level, os.getpid()),
            )
        return self._processes

    def _retry_plan(self, flight: _InFlight, outcome: Outcome) -> tuple[int, int]:
        """Retries left after this failure and the backoff before the next try (ms)."""
        opts = self.options
        current = flight.ctx.retries
        if not outcome.retryable:
            retries = 0
        else:
            retries = opts.max_retries if current is None else max(int(current) - 1, 0)
        if outcome.retry_in is not None:
            return retries, int(max(outcome.retry_in, 0) * 1000)
        step = max(opts.max_retries - retries, 0)
        return retries, int(min(opts.retry_backoff_ms * (2**step), opts.max_retry_backoff_ms))

    async def _report(self, flight: _InFlight, outcome: Outcome, replayed: bool) -> None:
        """Tell the engine; a refused complete/BPMN error becomes a failure so it cannot loop."""
        assert self._api is not None
        ctx = flight.ctx
        duration_ms = round((time.monotonic() - flight.started) * 1000, 1)
        fields = flight.fields(duration_ms=duration_ms, replayed=replayed or None)
        try:
            if outcome.kind == "complete":
                await self._with_engine_retry(self._api.complete, ctx.task_id, to_engine(outcome.variables))
                self.summary.completed += 1
                self.summary.replayed += int(replayed)
                self._event(logging.INFO, "task.completed", "task completed",
                            {**fields, "variables": sorted(outcome.variables)})
            elif outcome.kind == "bpmn_error":
                code = outcome.error_code or "MLC_JOB_FAILED"
                message = outcome.message or code
                variables = {MLC_ERROR_CODE: code, MLC_ERROR_MESSAGE: message, **outcome.variables}
                await self._with_engine_retry(self._api.bpmn_error, ctx.task_id, code, message, to_engine(variables))
                self.summary.bpmn_errors += 1
                self.summary.replayed += int(replayed)
                self._event(logging.WARNING, "task.bpmn_error", message, {**fields, "error_code": code})
            else:
                retries, backoff_ms = self._retry_plan(flight, outcome)
                message = (outcome.message or "handler failed").strip()
                short = message.splitlines()[0][:_MAX_ERROR_MESSAGE] if message else "handler failed"
                await self._with_engine_retry(self._api.failure, ctx.task_id, short, outcome.details or message,
                                              retries, backoff_ms)
                self.summary.failures += 1
                self._event(logging.ERROR, "task.failed", short,
                            {**fields, "retries_left": retries, "retry_in_ms": backoff_ms if retries else None})
                if retries == 0:
                    self.summary.incidents += 1
                    self._event(logging.ERROR, "task.incident", "no retries left: the engine raised an incident",
                                fields)
        except EngineError as exc:
            if is_lock_lost(exc):
                self.summary.lock_lost += 1
                self._event(logging.WARNING, "task.lock_lost",
                            f"the engine no longer holds this task for us ({exc.message}); outcome dropped", fields)
                return
            if outcome.kind == "failure" or isinstance(exc, EngineUnavailable):
                self._event(logging.ERROR, "task.report_failed", exc.message, fields)
                return
            # The engine refused the result itself (say a variable it cannot store): report that as a
            # technical failure, and forget the recorded outcome so a retry runs the handler again.
            if flight.handler.replay:
                await asyncio.get_running_loop().run_in_executor(self._threads, effects.forget, self.settings,
                                                                 ctx.dedupe_key)
            await self._report(flight, Outcome("failure", message=f"the engine refused the result: {exc.message}"),
                               False)

    async def _with_engine_retry(self, call: Any, *args: Any) -> None:
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

    async def _keep_lock(self, flight: _InFlight, lock_ms: int) -> None:
        """Extend the lock every third of its duration until the task is reported."""
        assert self._api is not None
        interval = max(lock_ms / 3000, 0.05)
        while True:
            await asyncio.sleep(interval)
            if flight.done:
                return
            try:
                async with flight.engine_lock:
                    if flight.done:
                        return
                    await self._api.extend_lock(flight.ctx.task_id, lock_ms)
                log.debug("lock extended", extra={"event": "task.lock_extended", "fields": flight.fields()})
            except EngineError as exc:
                if flight.done:
                    return
                if is_lock_lost(exc):
                    self._event(logging.WARNING, "task.lock_lost", f"cannot extend the lock: {exc.message}",
                                flight.fields())
                    return
                self._event(logging.WARNING, "task.extend_failed", exc.message, flight.fields())

    # -- stopping -------------------------------------------------------------------------------

    async def _drain(self) -> None:
        """Wait for running tasks up to the grace period (or a second signal), then unlock the rest."""
        deadline = self._stop_deadline or time.monotonic() + self.options.grace_period_s
        while self._in_flight and not self._force.is_set():
            remaining = deadline - time.monotonic()
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
            if not flight.handler.is_async and not flight.handler.cpu_bound:
                self.summary.abandoned_threads += 1
            if flight.job is not None:
                flight.job.cancel()
            await self._safe_unlock(flight.ctx.task_id)
            self._event(logging.WARNING, "task.abandoned", "not finished in time: task unlocked for another worker",
                        flight.fields(duration_ms=round((time.monotonic() - flight.started) * 1000, 1)))
        jobs = [f.job for f in self._in_flight.values() if f.job is not None]
        if jobs:
            await asyncio.gather(*jobs, return_exceptions=True)

    async def _safe_unlock(self, task_id: str) -> None:
        assert self._api is not None
        try:
            await self._api.unlock(task_id)
        except EngineError as exc:
            log.warning("could not unlock task %s: %s", task_id, exc.message,
                        extra={"event": "task.unlock_failed", "fields": {"task_id": task_id}})

    async def _unlock_leftovers(self) -> None:
        """Unlock tasks the engine still counts as ours, e.g. locked for a fetch cancelled at shutdown."""
        assert self._api is not None
        try:
            leftovers = await self._api.locked_by_me()
        except EngineError as exc:
            log.warning("cannot list tasks locked by this worker: %s", exc.message)
            return
        for task_id in leftovers:
            await self._safe_unlock(task_id)
            self._event(logging.INFO, "task.unlocked", "unlocked at shutdown", {"task_id": task_id,
                                                                                 "worker_id": self.options.worker_id})

    def _shutdown_pools(self) -> None:
        if self._processes is not None:
            stuck = list(getattr(self._processes, "_processes", {}).values())  # no public handle on them
            self._processes.shutdown(wait=not self.summary.abandoned, cancel_futures=True)
            if self.summary.abandoned:
                for proc in stuck:
                    if proc.is_alive():
                        proc.terminate()
            self._processes = None
        if self._threads is not None:
            self._threads.shutdown(wait=False, cancel_futures=True)

    # -- status and logs ------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        return {
            "worker_id": self.options.worker_id,
            "pid": os.getpid(),
            "hostname": socket.gethostname(),
            "engine_url": self.settings.engine_url,
            "topics": self.topics,
            "concurrency": self.options.concurrency,
            "state": "stopping" if self._stopping.is_set() else "running",
            "started_at": self._started_at,
            "heartbeat": dt.datetime.now(dt.timezone.utc).isoformat(),
            "in_flight": [
                {"task_id": f.ctx.task_id, "topic": f.ctx.topic, "process_instance_id": f.ctx.process_instance_id,
                 "model_id": f.ctx.model_id, "activity_id": f.ctx.activity_id, "started_at": f.started_at}
                for f in self._in_flight.values()
            ],
            "counts": dict(self.summary.__dict__),
        }

    async def _status_loop(self) -> None:
        """Rewrite the status file on changes (a burst makes one write) and at each heartbeat.

        It ends on ``_closing`` rather than by cancellation: ``asyncio.wait_for`` in 3.11 can
        swallow a cancel that arrives as its inner wait completes, which would hang the stop.
        """
        while not self._closing:
            try:
                write_status(self._status_file, self.status())
            except OSError as exc:
                log.warning("cannot write worker status file %s: %s", self._status_file, exc)
            self._status_dirty.clear()
            waiter = asyncio.ensure_future(self._status_dirty.wait())
            try:
                await asyncio.wait({waiter}, timeout=self.options.status_interval_s)
            finally:
                waiter.cancel()
            if not self._closing:
                await asyncio.sleep(0.1)

    def _event(self, level: int, event: str, message: str, fields: dict[str, Any]) -> None:
        log.log(level, message, extra={"event": event, "fields": {"worker_id": self.options.worker_id, **fields}})


def run_worker(settings: "Settings", options: WorkerOptions, registry: TopicRegistry) -> WorkerSummary:
    """Run a worker on a fresh event loop until it is stopped (the CLI's entry)."""

    async def main() -> WorkerSummary:
        worker = Worker(settings, options, registry)
        return await worker.run()

    return asyncio.run(main())
