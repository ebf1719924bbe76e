"""Status files and `mlc worker status`: live workers are listed, dead ones dropped."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys

from modelops_mlc.daemon.status import running_workers, status_path, write_status


def _status(worker_id: str, pid: int) -> dict:
    return {
        "worker_id": worker_id, "pid": pid, "topics": ["notify", "score"], "concurrency": 4, "state": "running",
        "started_at": dt.datetime.now(dt.timezone.utc).isoformat(),  # after its process was created
        "heartbeat": dt.datetime.now(dt.timezone.utc).isoformat(),
        "in_flight": [{"task_id": "abcdef123456", "topic": "score", "process_instance_id": "pi", "model_id": "churn",
                       "started_at": dt.datetime.now(dt.timezone.utc).isoformat()}],
    }


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_running_workers_drops_dead_pids(tmp_path) -> None:  # noqa: ANN001
    write_status(status_path(tmp_path, "alive"), _status("alive", os.getpid()))
    dead = status_path(tmp_path, "dead/one")
    write_status(dead, _status("dead/one", _dead_pid()))
    assert dead.name == "dead_one.json"
    assert [w["worker_id"] for w in running_workers(tmp_path)] == ["alive"]
    assert not dead.exists()


def test_worker_status_cli_lists_live_workers(run_mlc, mlc_home) -> None:  # noqa: ANN001
    write_status(status_path(mlc_home, "w1"), _status("w1", os.getpid()))
    result = run_mlc("worker", "status", "--json")
    assert result.returncode == 0, result.stderr
    [worker] = json.loads(result.stdout)
    assert worker["worker_id"] == "w1" and worker["in_flight"][0]["topic"] == "score"
    table = run_mlc("worker", "status")
    assert table.returncode == 0 and "w1" in table.stdout and "score:abcdef12 (churn)" in table.stdout


def test_worker_status_with_no_worker(run_mlc) -> None:  # noqa: ANN001
    result = run_mlc("worker", "status")
    assert result.returncode == 0 and "no worker running" in result.stderr
