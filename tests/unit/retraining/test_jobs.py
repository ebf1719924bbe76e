"""Training jobs as detached processes, on a real sqlite MLC store and MLflow registry: a
redelivered submit starts nothing new, a dead or silent job is declared crashed, a second
runner of a job does nothing, and a failing job says why."""

from __future__ import annotations

import datetime as dt
import socket
import subprocess
import sys
import time

from modelops_mlc.retraining.jobs import STALE_AFTER_S, status, submit
from modelops_mlc.retraining.models import TrainingJobRow
from modelops_mlc.retraining.runner import run_job
from modelops_mlc.store import open_store, utcnow


def _row(settings, **values) -> str:
    job_id = values.setdefault("id", f"job-{time.monotonic_ns()}")
    with open_store(settings).session() as s:
        s.add(TrainingJobRow(key=f"key-{job_id}", model_name="m", parent_version=1, **values))
    return job_id


def test_a_redelivered_submit_finds_its_job_and_a_failing_job_says_why(settings, registry) -> None:
    first = submit(settings, "pi-1:task_submit:1", model_name="no-such-model", parent_version=1,
                   process_instance_id="pi-1")
    again = submit(settings, "pi-1:task_submit:1", model_name="no-such-model", parent_version=1,
                   process_instance_id="pi-1")
    assert again.id == first.id and first.pid is not None
    with open_store(settings).session() as s:
        assert s.query(TrainingJobRow).count() == 1

    deadline = time.monotonic() + 120
    job = status(settings, first.id)
    while not job.done and time.monotonic() < deadline:
        time.sleep(0.2)
        job = status(settings, first.id)
    assert job.state == "failed"
    assert "no-such-model" in job.error and "not found" in job.error
    assert (settings.home / "jobs" / f"{first.id}.log").exists()


def test_a_job_whose_process_died_without_a_result_has_crashed(settings) -> None:
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    job_id = _row(settings, state="running", pid=gone.pid, host=socket.gethostname(), heartbeat_at=utcnow())
    job = status(settings, job_id)
    assert job.state == "crashed" and job.error == f"training process {gone.pid} exited without a result"
    assert status(settings, job_id).state == "crashed"  # stays so


def test_a_silent_job_on_another_host_has_crashed_and_a_live_one_has_not(settings) -> None:
    old = utcnow() - dt.timedelta(seconds=STALE_AFTER_S + 5)
    silent = _row(settings, state="running", pid=1, host="elsewhere", heartbeat_at=old)
    assert status(settings, silent).state == "crashed"
    beating = _row(settings, state="running", pid=1, host="elsewhere", heartbeat_at=utcnow())
    assert status(settings, beating).state == "running"


def test_a_second_runner_of_a_job_does_nothing(settings) -> None:
    job_id = _row(settings, state="running", pid=123)
    assert run_job(settings, job_id) is None
    with open_store(settings).session() as s:
        assert s.get(TrainingJobRow, job_id).pid == 123


def test_a_job_running_past_its_timeout_is_stopped_and_fails(settings) -> None:
    hung = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"], start_new_session=True)
    try:
        import psutil

        started = psutil.Process(hung.pid).create_time()
        job_id = _row(settings, state="running", pid=hung.pid, pid_started=started, host=socket.gethostname(),
                      heartbeat_at=utcnow(), created_at=utcnow() - dt.timedelta(seconds=30))
        assert status(settings, job_id, timeout_s=60).state == "running"  # inside its timeout: left alone
        job = status(settings, job_id, timeout_s=10)
        assert job.state == "failed" and "longer than its timeout of 10 s" in job.error
        assert hung.wait(timeout=10) != 0  # the hung training was stopped
    finally:
        if hung.poll() is None:
            hung.kill()
