"""The engine killed with -9 mid-process and started again on the same database: every back test
started before the kill resumes and completes, none is lost, and each notifies exactly once.

The worker keeps running through the outage (its fetches and completions fail, then it finds the
engine again); tasks it had locked come back when their lock expires. Short form: the H2 file
(the default database). Full form: PostgreSQL too, and more instances.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from modelops_mlc.config import Settings
from modelops_mlc.engine import EngineClient
from modelops_mlc.engine.local import LocalEngine
from tests.conftest import free_port
from tests.faults.lifecycle import make_home
from tests.faults.support import Scenario, TreeMemory, effects_per_instance, history_states
from tests.integration.workers.wt_support import WorkerProcess
from tests.support.waiting import wait_for

JAVA_OPTS = "-Xms128m -Xmx512m -XX:+UseSerialGC -XX:TieredStopAtLevel=1"


def _restart_mid_process(tmp_path: Path, scenario: Scenario, count: int, **engine_settings: object) -> None:
    engine_home = tmp_path / "engine-home"
    settings = Settings(home=engine_home, engine_port=free_port(), **engine_settings)
    engine = LocalEngine(settings)
    engine.start(timeout=300)
    worker = None
    try:
        home = make_home(tmp_path / "home", engine.url)
        with EngineClient(home.settings) as client:
            started = [home.back_test(client, home.good) for _ in range(count)]
            worker = WorkerProcess(home.env, home.path, [
                "--process-key", "mlc-run-back-test", "--concurrency", "2", "--lock-duration", "5000",
                "--long-poll", "1000"], tmp_path / "worker.log").wait_ready()
            memory = TreeMemory(worker.proc.pid)
            wait_for(lambda: history_states(client, started).get("COMPLETED"), timeout=180, interval=0.2,
                     what="a first completed back test")
            pid = engine.running_pid()
            assert pid is not None
            done_at_kill = history_states(client, started).get("COMPLETED", 0)  # just before the kill
            os.kill(pid, signal.SIGKILL)
            wait_for(lambda: engine.answering(timeout=1) is None, timeout=30, what="the engine gone")
            scenario.faults = [f"engine kill -9 with {count - done_at_kill} of {count} back tests running",
                               "engine started again on the same database"]
            memory.sample()
            LocalEngine(settings).start(timeout=300)

            def ended() -> bool:
                memory.sample()
                return "ACTIVE" not in history_states(client, started)

            wait_for(ended, timeout=300, interval=1, what=f"all {count} back tests to end")
            assert worker.proc.poll() is None, "the worker died with the engine"
            states = scenario.count(client, started)
            incidents = [i for i in client.incidents() if i.process_instance_id in started]
            scenario.incidents = len(incidents)
        notified = effects_per_instance(home.env["MLC_STORE_URL"], "mlc_notifications", started)
        scenario.effects_duplicated = sum(max(0, n - 1) for n in notified.values())
        scenario.peak_memory_mib = round(memory.peak, 1)
        assert done_at_kill < count, "every back test ended before the kill: nothing was tested"
        assert states == {"COMPLETED": count}
        assert incidents == []
        assert set(notified.values()) == {1}, notified
    finally:
        if worker is not None:
            worker.terminate()
            worker.close()
        engine.stop()


@pytest.fixture(autouse=True)
def _quick_jvm(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLC_ENGINE_JAVA_OPTS", JAVA_OPTS)


def test_engine_killed_and_restarted_on_h2_resumes_every_instance(tmp_path: Path, scenario: Scenario) -> None:
    _restart_mid_process(tmp_path, scenario, 6)


@pytest.mark.faults
def test_engine_killed_and_restarted_on_postgres_resumes_every_instance(postgres, tmp_path: Path,
                                                                         scenario: Scenario) -> None:
    db = postgres.database(f"restart_{os.getpid()}_{free_port()}")
    _restart_mid_process(tmp_path, scenario, 20, postgres_url=db.url)


@pytest.mark.faults
def test_engine_killed_and_restarted_on_h2_resumes_twenty_instances(tmp_path: Path, scenario: Scenario) -> None:
    _restart_mid_process(tmp_path, scenario, 20)
