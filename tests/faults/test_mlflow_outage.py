"""MLflow unreachable: a real `mlflow server` (the command `mlc up --mlflow-server` runs) is killed
while back tests wait for the worker, and started again after the outage. The worker's handlers
retry with backoff; a task whose retries ran out is an incident, which `mlc incidents --retry`
recovers. In the end every back test has passed, with one notification each and no open incident.

Short form: a 10 s outage; full form (``make test-faults``): 30 s.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from modelops_mlc.engine import EngineClient
from tests.conftest import free_port, mlc_command
from tests.faults.lifecycle import Home, make_home
from tests.faults.support import (
    Scenario, ServerProcess, TreeMemory, effects_per_instance, history_states,
)
from tests.integration.workers.wt_support import WorkerProcess
from tests.support.cleanup import delete_unfinished
from tests.support.waiting import wait_for


def _mlflow_server(home: Home, port: int) -> ServerProcess:
    """`mlflow server` over the home's registry database, as `mlc up --mlflow-server` starts it."""
    artifacts = (home.path / "mlartifacts").resolve()
    artifacts.mkdir(exist_ok=True)
    backend = home.env["MLFLOW_TRACKING_URI"]
    return ServerProcess(
        [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", backend, "--default-artifact-root",
         artifacts.as_uri(), "--no-serve-artifacts", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
        home.env, f"http://127.0.0.1:{port}", "/health", home.path / "mlflow-server.log", cwd=home.path)


def _outage(engine, tmp_path: Path, scenario: Scenario, count: int, outage_s: float) -> None:
    home = make_home(tmp_path / "home", engine.url)
    server = _mlflow_server(home, free_port())
    server.start()
    env = {**home.env, "MLFLOW_TRACKING_URI": server.url}
    worker = None
    started: list[str] = []
    try:
        with EngineClient(home.settings) as client:
            worker = WorkerProcess(env, home.path, [
                "--process-key", "mlc-run-back-test", "--concurrency", "2", "--retries", "2",
                "--retry-backoff", "2000"], tmp_path / "worker.log").wait_ready()
            memory = TreeMemory(worker.proc.pid)
            warm = home.back_test(client, home.good)  # the worker has reached the server once
            wait_for(lambda: history_states(client, [warm]).get("COMPLETED"), timeout=180, what="a first back test")

            server.kill()
            down_at = time.monotonic()
            started += [home.back_test(client, home.good) for _ in range(count)]

            def lasted() -> bool:  # the worker is at the back tests' tasks, and the outage has lasted
                memory.sample()
                tasks = client.request("GET", "/external-task", params={"processDefinitionKey": "mlc-run-back-test",
                                                                         "locked": "true"})
                busy = any(t["processInstanceId"] in started for t in tasks)
                return busy and time.monotonic() - down_at >= outage_s

            wait_for(lasted, timeout=outage_s + 300, interval=0.5, what="the worker at work through the outage")
            scenario.faults = [f"mlflow server kill -9, down {time.monotonic() - down_at:.0f} s, then started again"]
            server.start()

            def settled() -> bool:  # every instance ended, or waits in an incident
                memory.sample()
                open_ = {i.process_instance_id for i in client.incidents()}
                states = history_states(client, started)
                active = states.get("ACTIVE", 0)
                return active == len([i for i in started if i in open_])

            wait_for(settled, timeout=400, interval=1, what="the back tests to end or stop in an incident")
            incidents = [i for i in client.incidents() if i.process_instance_id in started]
            scenario.incidents = len(incidents)
            for incident in incidents:
                retried = subprocess.run([*mlc_command(), "incidents", "--retry", incident.id, "--json"], env=env,
                                         capture_output=True, text=True, timeout=120)
                assert retried.returncode == 0, retried.stderr
                assert json.loads(retried.stdout)[0]["id"] == incident.id
            wait_for(lambda: "ACTIVE" not in history_states(client, started), timeout=300, interval=1,
                     what="every back test to end after the retries")
            states = scenario.count(client, [warm, *started])
            left = [i for i in client.incidents() if i.process_instance_id in started]
            scenario.incidents_recovered = len(incidents) - len(left)
            ends = {i: [a.activity_id for a in client.history_activities(i) if a.activity_type == "noneEndEvent"]
                    for i in started}
        notified = effects_per_instance(home.env["MLC_STORE_URL"], "mlc_notifications", started)
        scenario.effects_duplicated = sum(max(0, n - 1) for n in notified.values())
        scenario.peak_memory_mib = round(memory.peak, 1)
        assert states == {"COMPLETED": count + 1}
        assert left == []
        assert all(e == ["end_passed"] for e in ends.values()), ends
        assert set(notified.values()) == {1}, notified
    finally:
        if worker is not None:
            worker.terminate()
            worker.close()
        with EngineClient(home.settings) as client:
            delete_unfinished(client, started)
        server.kill()


def test_mlflow_down_ten_seconds_back_tests_retry_and_pass(engine, tmp_path: Path, scenario: Scenario) -> None:
    _outage(engine, tmp_path, scenario, 3, 10)


@pytest.mark.faults
def test_mlflow_down_thirty_seconds_back_tests_retry_or_recover_and_pass(engine, tmp_path: Path,
                                                                         scenario: Scenario) -> None:
    _outage(engine, tmp_path, scenario, 10, 30)
