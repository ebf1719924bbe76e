"""Fixtures of the worker integration tests: real `mlc worker start` processes on the session's
engine, the small BPMNs in ./bpmn, and the environment they share within a test module.

Every worker is started with ``--process-key`` for the test processes only, so it never takes a
task of another test's process on the shared engine.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from modelops_mlc.config import Settings
from modelops_mlc.engine import EngineClient
from tests.support.home import home_env
from wt_support import BPMN_DIR, HERE, ROOT, TEST_KEYS, Instances, WorkerProcess, mlc_command


@pytest.fixture(scope="module")
def wt_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("wt-home")


@pytest.fixture(scope="module")
def wt_env(engine: Any, wt_home: Path) -> dict[str, str]:
    """Environment of the workers (and of Settings in this process) for one test module."""
    path = os.pathsep.join([str(HERE), str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return home_env(wt_home, engine.url, PYTHONPATH=path)


@pytest.fixture(scope="module")
def wt_settings(wt_env: dict[str, str]) -> Settings:
    return Settings(
        home=Path(wt_env["MLC_HOME"]),
        engine_url=wt_env["MLC_ENGINE_URL"],
        store_url=wt_env["MLC_STORE_URL"],
        mlflow_tracking_uri=wt_env["MLFLOW_TRACKING_URI"],
        engine_auth="none",
    )


@pytest.fixture(scope="module")
def wt_client(wt_settings: Settings) -> Iterator[EngineClient]:
    client = EngineClient(wt_settings)
    client.deploy_processes([BPMN_DIR], name="mlc-worker-tests")
    yield client
    client.close()


@pytest.fixture
def instances(wt_client: EngineClient) -> Iterator[Instances]:
    tracker = Instances(wt_client)
    yield tracker
    tracker.cleanup()


@pytest.fixture
def start_worker(wt_env: dict[str, str], wt_home: Path, tmp_path: Path) -> Iterator[Any]:
    """``start_worker(*args, ready=True)`` -> a running WorkerProcess, killed at teardown if still alive."""
    started: list[WorkerProcess] = []

    def start(*args: str, ready: bool = True, env: dict[str, str] | None = None) -> WorkerProcess:
        full_env = {**wt_env, **(env or {})}
        keys = [a for k in TEST_KEYS for a in ("--process-key", k)]
        worker = WorkerProcess(full_env, wt_home, [*keys, *args], tmp_path / f"worker-{len(started)}.log")
        started.append(worker)
        return worker.wait_ready() if ready else worker

    yield start
    for worker in started:
        worker.close()


@pytest.fixture(scope="module")
def wt_cli(wt_env: dict[str, str]) -> Any:
    """``wt_cli("worker", "status", "--json")``: the real CLI with the module's environment."""

    def run(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*mlc_command(), *args], env=wt_env, capture_output=True, text=True, timeout=timeout,
                              cwd=wt_env["MLC_HOME"])

    return run
