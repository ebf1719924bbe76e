"""The runner's loop against an in-memory engine: slots, fetch sizes, outcomes, retries, lock
extension, replay and graceful stop, deterministic and without a real engine."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import pytest

from modelops_mlc.errors import BpmnError, EngineError, EngineUnavailable, TaskFailed
from modelops_mlc.engine import LockedTask, Subscription
from workers.daemon import Worker, WorkerOptions
from workers.handlers import TopicHandlers

_ids = itertools.count(1)


def make_task(topic: str, variables: dict[str, Any] | None = None, retries: int | None = None) -> dict[str, Any]:
    n = next(_ids)
    return {
        "id": f"task-{n}",
        "topicName": topic,
        "processInstanceId": f"pi-{n}",
        "activityId": "Task_x",
        "activityInstanceId": f"Task_x:{n}",
        "workerId": "w",
        "retries": retries,
        "variables": {k: {"value": v, "type": "String" if isinstance(v, str) else "Integer"}
                      for k, v in (variables or {}).items()},
    }


class FakeApi:
    """An engine queue behind the ExternalTaskApi interface: fetch hands out queued tasks (up to
    maxTasks unless ``overdeliver``); every call is recorded."""

    def __init__(self, *_: Any, **__: Any) -> None:
        self.queue: list[dict[str, Any]] = []
        self.fetch_sizes: list[int] = []
        self.calls: list[tuple[str, Any]] = []
        self.locked: set[str] = set()
        self.overdeliver = 0
        self.fetch_failures = 0
        self.fail_complete_with: EngineError | None = None
        self.complete_delay = 0.0
        self.completing = self.peak_completing = 0
        self.engine_side_polls = False  # as the engine: a cancelled long poll keeps locking until it times out
        self._abandoned: list[asyncio.Task[None]] = []

    async def fetch_and_lock(self, subscriptions: list[Subscription], max_tasks: int, long_poll_ms: int = 0
                             ) -> list[LockedTask]:
        self.fetch_sizes.append(max_tasks)
        self.subscriptions = list(subscriptions)
        if self.fetch_failures:
            self.fetch_failures -= 1
            raise EngineUnavailable("cannot reach the engine")
        deadline = asyncio.get_running_loop().time() + long_poll_ms / 1000
        try:
            for _ in range(max(1, long_poll_ms // 10)):
                if self.queue:
                    break
                await asyncio.sleep(0.01)
        except asyncio.CancelledError:
            if self.engine_side_polls:
                self._abandoned.append(asyncio.get_running_loop().create_task(self._poll_on(deadline)))
            raise
        take = max_tasks + self.overdeliver
        batch, self.queue = self.queue[:take], self.queue[take:]
        self.locked.update(t["id"] for t in batch)
        return [LockedTask(t) for t in batch]

    async def complete(self, task_id: str, variables: dict[str, Any] | None = None) -> None:
        if self.fail_complete_with is not None:
            raise self.fail_complete_with
        self.completing += 1
        self.peak_completing = max(self.peak_completing, self.completing)
        await asyncio.sleep(self.complete_delay)
        self.completing -= 1
        self.calls.append(("complete", (task_id, variables)))
        self.locked.discard(task_id)

    async def bpmn_error(self, task_id: str, code: str, message: str, variables: dict[str, Any] | None = None) -> None:
        self.calls.append(("bpmn_error", (task_id, code, message, variables)))
        self.locked.discard(task_id)

    async def failure(self, task_id: str, message: str, details: str | None = None, *, retries: int,
                      retry_timeout_ms: int = 0) -> None:
        self.calls.append(("failure", (task_id, message, retries, retry_timeout_ms)))
        self.locked.discard(task_id)

    async def extend_lock(self, task_id: str, duration_ms: int) -> None:
        self.calls.append(("extend_lock", (task_id, duration_ms)))

    async def _poll_on(self, deadline: float) -> None:
        """The rest of an abandoned long poll: the engine locks what arrives; nobody reads the answer."""
        while asyncio.get_running_loop().time() < deadline:
            if self.queue:
                self.locked.add(self.queue.pop(0)["id"])
                return
            await asyncio.sleep(0.01)

    async def unlock(self, task_id: str) -> None:
        self.calls.append(("unlock", task_id))
        self.locked.discard(task_id)
        if self.engine_side_polls:  # available again, for any pending poll
            self.queue.append({**make_task("stuck"), "id": task_id})

    async def locked_by_me(self) -> list[str]:
        return sorted(self.locked)

    def of(self, kind: str) -> list[Any]:
        return [args for name, args in self.calls if name == kind]


@pytest.fixture
def api() -> FakeApi:
    return FakeApi()


def options(**kw: Any) -> WorkerOptions:
    base = dict(worker_id="unit", concurrency=2, lock_duration_ms=60_000, long_poll_ms=50, retry_backoff_ms=100,
                max_retries=3, grace_period_s=5, status_interval_s=60)
    base.update(kw)
    return WorkerOptions(**base)


async def serve(settings: Any, handlers: TopicHandlers, opts: WorkerOptions, until: Any, api: FakeApi,
                timeout: float = 10) -> Worker:
    """Run a worker over ``api`` until ``until(worker)`` holds, then stop it and wait for run() to return."""
    worker = Worker(settings, opts, handlers, api)
    job = asyncio.create_task(worker.run(install_signal_handlers=False))
    deadline = asyncio.get_running_loop().time() + timeout
    while not until(worker):
        assert asyncio.get_running_loop().time() < deadline, "condition not reached"
        assert not job.done(), job.exception() if job.done() else None
        await asyncio.sleep(0.01)
    worker.request_shutdown("test")
    await asyncio.wait_for(job, timeout)
    return worker


def sleepers(*, lock_duration_ms: int | None = None, **seconds: float) -> TopicHandlers:
    """Async handlers that only sleep, ``topic=seconds`` each, outcomes not recorded."""
    handlers = TopicHandlers()
    for name, duration in seconds.items():
        async def sleep(ctx, duration: float = duration) -> None:  # noqa: ANN001
            await asyncio.sleep(duration)

        handlers.topic(name, replay=False, lock_duration_ms=lock_duration_ms)(sleep)
    return handlers


class Gauge:
    """Counts the handlers running at once, and the most ever."""

    def __init__(self) -> None:
        self.running = self.peak = 0

    async def hold(self, seconds: float) -> None:
        self.running += 1
        self.peak = max(self.peak, self.running)
        await asyncio.sleep(seconds)
        self.running -= 1


def test_never_more_than_k_and_fetch_only_free_slots(settings, api) -> None:
    handlers = TopicHandlers()
    gauge = Gauge()

    @handlers.topic("t", replay=False)
    async def handler(ctx):  # noqa: ANN001
        await gauge.hold(0.03)
        return {"OK": ctx.task_id}

    api.queue = [make_task("t") for _ in range(12)]
    worker = asyncio.run(serve(settings, handlers, options(concurrency=3, prefetch=0), api=api,
                               until=lambda w: len(api.of("complete")) == 12))
    assert gauge.peak == 3
    assert max(api.fetch_sizes) == 3 and all(1 <= n <= 3 for n in api.fetch_sizes)
    assert worker.summary.completed == 12 and worker.in_flight == 0


def test_short_tasks_are_prefetched_into_a_queue_without_breaking_the_bound(settings, api) -> None:
    handlers = TopicHandlers()
    gauge = Gauge()

    @handlers.topic("t", replay=False)
    async def handler(ctx):  # noqa: ANN001
        await gauge.hold(0.01)

    api.queue = [make_task("t") for _ in range(40)]
    worker = asyncio.run(serve(settings, handlers, options(concurrency=2, prefetch=4), api=api,
                               until=lambda w: len(api.of("complete")) == 40))
    assert gauge.peak == 2 and worker.summary.completed == 40
    assert api.fetch_sizes[0] == 2  # nothing known of the task time yet: only the free slots
    assert max(api.fetch_sizes) == 6  # then the free slots and the queue
    assert len(api.fetch_sizes) < 20 and not api.locked


def test_long_tasks_are_not_prefetched(settings, api) -> None:
    handlers = sleepers(t=0.6)  # above PREFETCH_MAX_TASK_S

    api.queue = [make_task("t") for _ in range(3)]
    asyncio.run(serve(settings, handlers, options(concurrency=1, prefetch=4), api=api,
                      until=lambda w: len(api.of("complete")) == 3))
    assert max(api.fetch_sizes) == 1


def test_a_stop_unlocks_queued_tasks_without_running_them(settings, api) -> None:
    handlers = TopicHandlers()
    ran: list[str] = []

    @handlers.topic("t", replay=False)
    async def handler(ctx):  # noqa: ANN001
        ran.append(ctx.task_id)
        await asyncio.sleep(0.01 if len(ran) <= 4 else 0.3)

    api.queue = [make_task("t") for _ in range(12)]
    worker = asyncio.run(serve(settings, handlers, options(concurrency=1, prefetch=3), api=api,
                               until=lambda w: len(ran) == 6))
    unlocked = set(api.of("unlock"))
    assert unlocked and not unlocked & set(ran)  # queued ones went back unrun
    assert not api.locked and worker.summary.completed == 6


def test_a_slow_report_does_not_hold_the_slot_and_reports_are_bounded(settings, api) -> None:
    handlers = TopicHandlers()
    gauge = Gauge()
    overlapped = False

    @handlers.topic("t", replay=False)
    async def handler(ctx):  # noqa: ANN001
        nonlocal overlapped
        overlapped = overlapped or api.completing > 0  # an earlier task's report is still out
        await gauge.hold(0.01)

    api.complete_delay = 0.2
    api.queue = [make_task("t") for _ in range(6)]
    asyncio.run(serve(settings, handlers, options(concurrency=2, prefetch=0), api=api,
                      until=lambda w: len(api.of("complete")) == 6))
    assert gauge.peak <= 2 and overlapped
    assert api.peak_completing == 2  # at most `concurrency` reports at a time


def test_a_fetch_returning_more_than_asked_keeps_the_bound_and_unlocks_the_rest(settings, api) -> None:
    handlers = TopicHandlers()
    gauge = Gauge()

    @handlers.topic("t", replay=False)
    async def handler(ctx):  # noqa: ANN001
        await gauge.hold(0.05)

    api.overdeliver = 3
    api.queue = [make_task("t") for _ in range(5)]
    asyncio.run(serve(settings, handlers, options(concurrency=2), api=api, until=lambda w: not api.queue and w.in_flight == 0
                      and len(api.of("complete")) + len(api.of("unlock")) >= 5))
    assert gauge.peak <= 2
    assert len(api.of("unlock")) >= 3


def test_outcomes_complete_bpmn_error_and_failure_with_retries_counting_down(settings, api) -> None:
    handlers = TopicHandlers()

    @handlers.topic("t", replay=False)
    def handler(ctx):  # noqa: ANN001
        mode = ctx.get("MODE")
        if mode == "bpmn":
            raise BpmnError("MLC_JOB_FAILED", "bad data", variables={"EXTRA": 1})
        if mode == "fatal":
            raise TaskFailed("config missing", retryable=False)
        if mode == "later":
            raise TaskFailed("busy", retry_in=7)
        if mode == "boom":
            raise ValueError("boom")
        return {"DONE": True}

    ok, bpmn, fatal, later = (make_task("t", {"MODE": m}) for m in ("ok", "bpmn", "fatal", "later"))
    first, again, last = (make_task("t", {"MODE": "boom"}, retries=r) for r in (None, 2, 1))
    api.queue = [ok, bpmn, fatal, later, first, again, last]
    asyncio.run(serve(settings, handlers, options(), api=api, until=lambda w: len(api.calls) >= 7))

    assert api.of("complete")[0][0] == ok["id"]
    assert api.of("complete")[0][1]["DONE"] is True
    [(tid, code, message, variables)] = api.of("bpmn_error")
    assert (tid, code, message) == (bpmn["id"], "MLC_JOB_FAILED", "bad data")
    assert variables["MLC_ERROR_CODE"] == "MLC_JOB_FAILED"
    assert variables["MLC_ERROR_MESSAGE"] == "bad data" and variables["EXTRA"] == 1
    failures = {tid: (msg, retries, timeout) for tid, msg, retries, timeout in api.of("failure")}
    assert failures[fatal["id"]][:2] == ("config missing", 0)
    assert failures[later["id"]] == ("busy", 3, 7000)
    assert failures[first["id"]] == ("ValueError: boom", 3, 100)  # first failure: max retries, base backoff
    assert failures[again["id"]] == ("ValueError: boom", 1, 400)  # backoff doubles as retries run out
    assert failures[last["id"]][1] == 0  # the engine raises an incident


def test_keyboard_interrupt_in_a_handler_is_not_swallowed(settings, api) -> None:
    from workers.daemon import call_handler

    def handler(ctx):  # noqa: ANN001
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        call_handler(handler, None)  # type: ignore[arg-type]


def test_the_lock_is_extended_while_a_task_runs(settings, api) -> None:
    handlers = sleepers(t=0.4, lock_duration_ms=150)

    task = make_task("t")
    api.queue = [task]
    asyncio.run(serve(settings, handlers, options(), api=api, until=lambda w: api.of("complete")))
    extensions = api.of("extend_lock")
    assert len(extensions) >= 3 and all(args == (task["id"], 150) for args in extensions)


def test_stop_waits_for_running_tasks_then_unlocks_what_the_grace_period_cuts(settings, api) -> None:
    handlers = sleepers(quick=0.2, stuck=60)

    fast, slow = make_task("quick"), make_task("stuck")
    api.queue = [fast, slow]
    worker = asyncio.run(serve(settings, handlers, options(grace_period_s=0.5), api=api, until=lambda w: w.in_flight == 2))
    assert [c[0] for c in api.of("complete")] == [fast["id"]]
    assert slow["id"] in api.of("unlock")
    assert worker.summary.abandoned == 1 and not api.locked


def test_a_second_stop_request_skips_the_rest_of_the_grace_period(settings, api) -> None:
    handlers = sleepers(stuck=60)

    task = make_task("stuck")
    api.queue = [task]

    async def main() -> Worker:
        worker = Worker(settings, options(grace_period_s=60), handlers, api)
        job = asyncio.create_task(worker.run(install_signal_handlers=False))
        while worker.in_flight == 0:
            await asyncio.sleep(0.01)
        worker.request_shutdown("first")
        await asyncio.sleep(0.1)
        assert not job.done()  # the first request waits for the running task
        worker.request_shutdown("second")
        await asyncio.wait_for(job, 5)  # far inside the 60 s grace period
        return worker

    worker = asyncio.run(main())
    assert worker.summary.abandoned == 1 and task["id"] in api.of("unlock") and not api.locked


def test_a_forced_stop_outlasts_the_abandoned_long_poll_so_no_task_stays_locked(settings, api) -> None:
    """The engine keeps a cancelled long poll open and locks the task the stop just unlocked."""
    handlers = sleepers(stuck=60)
    api.engine_side_polls = True
    task = make_task("stuck")
    api.queue = [task]

    async def main() -> Worker:
        worker = Worker(settings, options(grace_period_s=60, long_poll_ms=1000), handlers, api)
        job = asyncio.create_task(worker.run(install_signal_handlers=False))
        while worker.in_flight == 0:
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)  # the second slot's long poll is pending
        worker.request_shutdown("first")
        worker.request_shutdown("second")
        await asyncio.wait_for(job, 5)
        return worker

    worker = asyncio.run(main())
    assert worker.summary.abandoned == 1
    assert not api.locked  # re-locked by the abandoned poll, then swept


def test_a_recorded_outcome_is_replayed_and_a_new_one_recorded(settings, api) -> None:
    handlers = TopicHandlers()
    runs: list[str] = []

    @handlers.topic("t")
    def handler(ctx):  # noqa: ANN001
        runs.append(ctx.task_id)
        return {"N": len(runs)}

    task = make_task("t")
    api.queue = [task]
    asyncio.run(serve(settings, handlers, options(), api=api, until=lambda w: api.of("complete")))
    redelivered = dict(task, id="task-again")  # same process instance and activity instance
    api.queue = [redelivered]
    api.calls.clear()
    worker = asyncio.run(serve(settings, handlers, options(), api=api, until=lambda w: api.of("complete")))
    assert runs == [task["id"]]
    assert api.of("complete")[0] == ("task-again", {"N": 1})
    assert worker.summary.replayed == 1


def test_a_result_the_engine_refuses_becomes_a_failure(settings, api) -> None:
    handlers = TopicHandlers()

    @handlers.topic("t")
    def handler(ctx):  # noqa: ANN001
        return {"X": 1}

    from workers import effects

    api.fail_complete_with = EngineError("cannot store variable", status=500, engine_type="ProcessEngineException")
    task = make_task("t")
    api.queue = [task]
    asyncio.run(serve(settings, handlers, options(), api=api, until=lambda w: api.of("failure")))
    [(tid, message, retries, _)] = api.of("failure")
    assert tid == task["id"] and "the engine refused the result" in message and retries == 3
    assert effects.lookup(settings, f"{task['processInstanceId']}:{task['activityInstanceId']}") is None


def test_lost_lock_on_report_is_logged_not_retried(settings, api, caplog: pytest.LogCaptureFixture) -> None:
    handlers = TopicHandlers()

    @handlers.topic("t", replay=False)
    def handler(ctx):  # noqa: ANN001
        return {}

    api.fail_complete_with = EngineError("ExternalTask x cannot be completed by worker 'unit'. It is locked by worker 'other'.",
                                         status=500, engine_type="BadUserRequestException")
    api.queue = [make_task("t")]
    with caplog.at_level("WARNING", logger="workers.daemon"):
        worker = asyncio.run(serve(settings, handlers, options(), api=api, until=lambda w: w.summary.lock_lost == 1))
    assert not api.of("failure")
    assert any(getattr(r, "event", None) == "task.lock_lost" for r in caplog.records)
    assert worker.summary.completed == 0


def test_an_unreachable_engine_is_retried_with_backoff(settings, api, caplog: pytest.LogCaptureFixture) -> None:
    handlers = TopicHandlers()
    handlers.topic("t", replay=False)(lambda ctx: {"OK": True})
    api.fetch_failures = 2
    api.queue = [make_task("t")]
    with caplog.at_level("WARNING", logger="workers.daemon"):
        worker = asyncio.run(serve(settings, handlers, options(), api=api, until=lambda w: api.of("complete")))
    assert worker.summary.completed == 1
    assert len([r for r in caplog.records if getattr(r, "event", None) == "worker.fetch_failed"]) == 2


def test_the_same_task_delivered_twice_while_running_holds_two_slots_and_frees_both(settings, api) -> None:
    handlers = sleepers(t=0.05)
    task = make_task("t")
    api.queue = [task, dict(task), make_task("t")]
    worker = asyncio.run(serve(settings, handlers, options(concurrency=2, prefetch=0), api=api,
                               until=lambda w: len(api.of("complete")) == 3 and api.fetch_sizes[-1] == 2))
    assert worker.in_flight == 0  # and the last fetch asked for both slots again


def test_old_outcome_records_are_pruned(settings) -> None:
    import datetime as dt

    from workers import effects
    from workers.models import TaskOutcomeRow

    effects.record(settings, "old", topic="t", kind="complete", payload={})
    effects.record(settings, "new", topic="t", kind="complete", payload={})
    with effects._store(settings).session() as s:
        s.get(TaskOutcomeRow, "old").created_at = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=31)
    assert effects.prune(settings) == 1
    assert effects.lookup(settings, "old") is None and effects.lookup(settings, "new") is not None
