"""The worker daemon against the real engine: concurrency bound, lock extension, kill -9,
SIGTERM, retries into an incident and back, BPMN errors, replay and `mlc worker status`.

Handlers are the custom topics of wt_handlers.py; lock durations and backoffs are short so the
module stays fast. No assertion is on wall-clock speed, only on order and counts.
"""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path
from typing import Any

import psutil
import pytest

from workers import effects

HANDLERS = ["--no-builtin", "--handlers", "wt_handlers:handlers"]


def _lines(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _wait_for(predicate: Any, timeout: float = 30, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def _max_overlap(intervals: list[dict[str, Any]]) -> int:
    """Most handlers running at one instant, from their start/end records."""
    points = sorted((r["t"], 1 if r["event"] == "start" else -1) for r in intervals)
    running = peak = 0
    for _, step in sorted(points, key=lambda p: (p[0], p[1])):  # an end before a start at the same instant
        running += step
        peak = max(peak, running)
    return peak


def test_concurrency_bound_holds_and_status_shows_tasks(start_worker, instances, tmp_path, wt_cli) -> None:
    k, n = 3, 8
    worker = start_worker(*HANDLERS, "--topic", "wt-slow", "--concurrency", str(k), "--long-poll", "2000")
    ids = [instances.start("wt-slow", {"LOG_DIR": str(tmp_path), "SLEEP": 1.0}) for _ in range(n)]

    _wait_for(lambda: len(_lines(tmp_path / "intervals.jsonl")) >= 2, what="first tasks to start")
    def mine() -> list:
        status = json.loads(wt_cli("worker", "status", "--json").stdout)
        return [w for w in status if w["worker_id"] == worker.worker_id and w["in_flight"]]

    mine = _wait_for(mine, timeout=10, what="the status file to show the running tasks")
    assert mine[0]["topics"] == ["wt-slow"] and mine[0]["concurrency"] == k
    assert 1 <= len(mine[0]["in_flight"]) <= k
    assert {t["topic"] for t in mine[0]["in_flight"]} == {"wt-slow"}

    for pi in ids:
        assert instances.wait_ended(pi, timeout=90) == "COMPLETED"
    assert worker.terminate() == 0  # logs are complete once it has stopped
    records = _lines(tmp_path / "intervals.jsonl")
    assert len([r for r in records if r["event"] == "end"]) == n
    assert _max_overlap(records) <= k
    assert _max_overlap(records) >= 2  # the slots were actually used in parallel
    completed = worker.events("task.completed")
    assert len(completed) == n
    assert all(e["topic"] == "wt-slow" and e["duration_ms"] > 0 and e["process_instance_id"] in ids for e in completed)
    assert not worker.status_file.exists()
    text = wt_cli("worker", "status").stdout + wt_cli("worker", "status").stderr
    assert worker.worker_id not in text


def test_lock_extension_keeps_a_long_task_with_its_worker(start_worker, instances, tmp_path) -> None:
    args = [*HANDLERS, "--topic", "wt-effect", "--lock-duration", "1000", "--long-poll", "1000"]
    first = start_worker(*args)
    pi = instances.start("wt-effect", {"LOG_DIR": str(tmp_path), "SLEEP": 4.0})
    _wait_for(lambda: _lines(tmp_path / "deliveries.jsonl"), what="the task to start")
    second = start_worker(*args)  # competes for the task while its lock is extended
    assert instances.wait_ended(pi, timeout=60) == "COMPLETED"
    assert first.terminate() == 0 and second.terminate() == 0
    assert len(_lines(tmp_path / "deliveries.jsonl")) == 1
    assert len(_lines(tmp_path / "effects.jsonl")) == 1
    assert len(first.events("task.completed")) == 1 and not second.events("task.started")
    assert not first.events("task.lock_lost")
    assert instances.variables(pi)["EFFECT_PID"] != first.proc.pid  # CPU-bound topics run in the process pool


def test_kill_9_mid_task_redelivers_and_the_effect_happens_once(start_worker, instances, tmp_path) -> None:
    args = [*HANDLERS, "--topic", "wt-effect", "--lock-duration", "2000", "--long-poll", "1000"]
    first = start_worker(*args)
    pi = instances.start("wt-effect", {"LOG_DIR": str(tmp_path), "SLEEP": 60})
    _wait_for(lambda: _lines(tmp_path / "working.jsonl"), what="the task to be mid-way")
    pool_pid = _lines(tmp_path / "deliveries.jsonl")[0]["pid"]
    first.kill9()
    _wait_for(lambda: not psutil.pid_exists(pool_pid), timeout=10, what="the orphaned pool process to exit")
    (tmp_path / "no-sleep").touch()
    second = start_worker(*args)
    assert instances.wait_ended(pi, timeout=60) == "COMPLETED"
    deliveries = _lines(tmp_path / "deliveries.jsonl")
    assert len(deliveries) == 2 and deliveries[0]["task"] == deliveries[1]["task"]
    assert {d["worker"] for d in deliveries} == {first.worker_id, second.worker_id}
    assert second.terminate() == 0
    assert len(_lines(tmp_path / "effects.jsonl")) == 1
    assert len(second.events("task.completed")) == 1


def test_sigterm_lets_running_tasks_finish_then_exits_0(start_worker, instances, tmp_path) -> None:
    worker = start_worker(*HANDLERS, "--topic", "wt-slow", "--concurrency", "2", "--long-poll", "2000")
    ids = [instances.start("wt-slow", {"LOG_DIR": str(tmp_path), "SLEEP": 2.5}) for _ in range(2)]
    _wait_for(lambda: len(_lines(tmp_path / "intervals.jsonl")) == 2, what="both tasks to start")
    assert worker.terminate(timeout=60) == 0
    assert [r["event"] for r in _lines(tmp_path / "intervals.jsonl")].count("end") == 2
    for pi in ids:
        assert instances.wait_ended(pi, timeout=10) == "COMPLETED"
    assert worker.events("worker.stopping") and worker.events("worker.stopped")
    assert not worker.events("task.abandoned")


def test_sigterm_to_the_whole_process_group_lets_a_cpu_bound_task_finish(
    start_worker, instances, tmp_path, wt_client
) -> None:
    worker = start_worker(*HANDLERS, "--topic", "wt-burn", "--long-poll", "1000", "--grace-period", "60")
    pi = instances.start("wt-burn", {"LOG_DIR": str(tmp_path), "SECONDS": 3})
    started = _wait_for(lambda: _lines(tmp_path / "burn.jsonl"), what="the task to start")
    pool_pid = started[0]["pid"]
    assert pool_pid != worker.proc.pid
    assert pool_pid in [p.pid for p in psutil.Process(worker.proc.pid).children(recursive=True)]
    worker.signal_group(signal.SIGTERM)  # the worker and its pool processes, all at once
    assert worker.proc.wait(timeout=60) == 0
    assert [r["event"] for r in _lines(tmp_path / "burn.jsonl")] == ["start", "end"]
    assert instances.wait_ended(pi, timeout=30) == "COMPLETED"
    assert instances.variables(pi)["BURN_PID"] == pool_pid
    failures = wt_client.request("GET", "/history/external-task-log",
                                 params={"processInstanceId": pi, "failureLog": "true"})
    assert failures == []  # no retry spent
    assert not wt_client.incidents(process_instance_id=pi)
    assert len(worker.events("task.completed")) == 1 and not worker.events("task.failed")
    assert not worker.events("task.abandoned")


def test_sigterm_after_the_grace_period_unlocks_the_task(start_worker, instances, tmp_path) -> None:
    worker = start_worker(*HANDLERS, "--topic", "wt-slow", "--grace-period", "1", "--lock-duration", "60000",
                          "--long-poll", "1000")
    pi = instances.start("wt-slow", {"LOG_DIR": str(tmp_path), "SLEEP": 60})
    _wait_for(lambda: _lines(tmp_path / "intervals.jsonl"), what="the task to start")
    assert instances.external_task(pi)["workerId"] == worker.worker_id
    assert worker.terminate(timeout=30) == 0
    task = instances.external_task(pi)
    assert task is not None and task["workerId"] is None and task["lockExpirationTime"] is None
    assert len(worker.events("task.abandoned")) == 1


def test_a_second_sigterm_stops_at_once_and_unlocks_the_task(start_worker, instances, tmp_path) -> None:
    worker = start_worker(*HANDLERS, "--topic", "wt-slow", "--grace-period", "300", "--long-poll", "1000")
    pi = instances.start("wt-slow", {"LOG_DIR": str(tmp_path), "SLEEP": 120})
    _wait_for(lambda: _lines(tmp_path / "intervals.jsonl"), what="the task to start")
    worker.proc.send_signal(signal.SIGTERM)
    _wait_for(lambda: worker.events("worker.stopping"), what="the graceful stop to begin")
    assert worker.proc.poll() is None  # still waiting for the task, as the first signal asks
    worker.proc.send_signal(signal.SIGTERM)
    assert worker.proc.wait(timeout=30) == 0  # long before the 300 s grace period, thread still sleeping
    task = instances.external_task(pi)
    assert task is not None and task["workerId"] is None  # unlocked for another worker
    assert worker.events("worker.force_stop") and len(worker.events("task.abandoned")) == 1


def test_failing_handler_becomes_an_incident_and_retrying_it_succeeds(
    start_worker, instances, tmp_path, wt_client, wt_cli
) -> None:
    (tmp_path / "broken").touch()
    worker = start_worker(*HANDLERS, "--topic", "wt-flaky", "--retries", "2", "--retry-backoff", "100",
                          "--long-poll", "1000")
    pi = instances.start("wt-flaky", {"LOG_DIR": str(tmp_path)})
    incident = _wait_for(lambda: wt_client.incidents(process_instance_id=pi), what="the incident")[0]
    attempts = _lines(tmp_path / "attempts.jsonl")
    assert len(attempts) == 3  # the first try and 2 retries
    assert [a["retries"] for a in attempts] == [None, 2, 1]
    assert "the backing service is down" in (incident.message or "")
    _wait_for(lambda: worker.events("task.incident"), what="the incident log line")
    assert [e["retries_left"] for e in worker.events("task.failed")] == [2, 1, 0]

    listed = wt_cli("incidents", "--json")
    assert listed.returncode == 0, listed.stderr
    assert incident.id in listed.stdout

    (tmp_path / "broken").unlink()
    retried = wt_cli("incidents", "--retry", incident.id)
    assert retried.returncode == 0, retried.stderr
    assert instances.wait_ended(pi, timeout=30) == "COMPLETED"
    assert instances.variables(pi)["FIXED"] is True
    assert len(_lines(tmp_path / "attempts.jsonl")) == 4
    assert worker.terminate() == 0
    assert len(worker.events("task.completed")) == 1


def test_bpmn_error_sets_code_and_message_and_results_are_typed(start_worker, instances) -> None:
    worker = start_worker(*HANDLERS, "--topic", "wt-echo", "--long-poll", "1000")
    ok = instances.start("wt-echo", {"MODE": "ok", "X": 42})
    refused = instances.start("wt-echo", {"MODE": "bpmn"})
    assert instances.wait_ended(ok) == "COMPLETED" and instances.wait_ended(refused) == "COMPLETED"
    assert instances.ended_at(ok) == "End_ok"
    out = instances.variables(ok)
    assert out["ECHO"] == 42 and out["ECHO_DICT"] == {"a": [1, 2]}
    assert out["DEDUPE_KEY"].startswith(f"{ok}:Task_wt_echo")
    assert instances.ended_at(refused) == "End_error"
    err = instances.variables(refused)
    assert err["MLC_ERROR_CODE"] == "MLC_JOB_FAILED"
    assert err["MLC_ERROR_MESSAGE"] == "echo refused"
    assert err["ECHO_EXTRA"] == 7
    assert worker.terminate() == 0
    [event] = worker.events("task.bpmn_error")
    assert event["error_code"] == "MLC_JOB_FAILED" and event["process_instance_id"] == refused


def test_a_recorded_outcome_is_replayed_without_running_the_handler(
    start_worker, instances, wt_settings
) -> None:
    pi = instances.start("wt-echo", {"MODE": "fail"})  # the handler would fail if it ran
    task = _wait_for(lambda: instances.external_task(pi), what="the external task")
    key = f"{pi}:{task['activityInstanceId']}"
    effects.record(wt_settings, key, topic="wt-echo", kind="complete", payload={"variables": {"ECHO": "recorded"}})
    worker = start_worker(*HANDLERS, "--topic", "wt-echo", "--long-poll", "1000")
    assert instances.wait_ended(pi) == "COMPLETED"
    assert instances.variables(pi)["ECHO"] == "recorded"
    assert worker.terminate() == 0
    [event] = worker.events("task.completed")
    assert event["replayed"] is True


@pytest.mark.parametrize("bad", [["--topic", "no-such-topic"], ["--handlers", "no_such_module"]])
def test_start_refuses_unknown_topics_and_handlers_in_one_line(wt_cli, bad) -> None:
    result = wt_cli("worker", "start", "--no-builtin", "--handlers", "wt_handlers:handlers", *bad)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().startswith("error:")
