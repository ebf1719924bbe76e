"""Shared fixtures: one real Camunda engine per test session, a throwaway MLC_HOME per test,
and a runner for the real `mlc` command line.

The engine comes from, in order: ``MLC_TEST_ENGINE_URL`` (reuse a running engine while
developing), the stock ``camunda/camunda-bpm-platform:run-7.24.0`` image via testcontainers
when a Docker engine answers, else the local jar (built from engine/pom.xml) on a free port
with a throwaway H2 directory.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from modelops_mlc.config import Settings
from tests.support.postgres import postgres  # noqa: F401  (the session's PostgreSQL cluster, a fixture)

ROOT = Path(__file__).resolve().parents[1]
STOCK_IMAGE = "camunda/camunda-bpm-platform:run-7.24.0"
UNREACHABLE_ENGINE = "http://127.0.0.1:9/engine-rest"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class EngineHandle:
    url: str
    settings: Settings
    kind: str  # "url", "docker" or "local"


def _docker_answers() -> bool:
    if os.environ.get("MLC_TEST_NO_DOCKER") or shutil.which("docker") is None:
        return False
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def start_local_engine(home: Path, **overrides: object) -> tuple[EngineHandle, object]:
    """Start the local jar on a free port with its state under ``home``; returns (handle, LocalEngine)."""
    from modelops_mlc.engine.local import LocalEngine

    port = free_port()
    settings = Settings(home=home, engine_port=port, **overrides)
    local = LocalEngine(settings)
    local.start(timeout=240)
    return EngineHandle(url=local.url, settings=settings, kind="local"), local


@pytest.fixture(scope="session")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EngineHandle]:
    """A real Camunda 7.24 engine for the whole test session."""
    reuse = os.environ.get("MLC_TEST_ENGINE_URL")
    if reuse:
        yield EngineHandle(url=reuse, settings=Settings(engine_url=reuse), kind="url")
        return
    if _docker_answers():
        from testcontainers.core.container import DockerContainer
        from testcontainers.core.waiting_utils import wait_for_logs

        container = DockerContainer(STOCK_IMAGE).with_exposed_ports(8080)
        container.with_volume_mapping(str(ROOT / "bpmn"), "/camunda/configuration/resources", "ro")
        container.start()
        try:
            wait_for_logs(container, "Camunda Platform Run", timeout=180)
            url = f"http://{container.get_container_host_ip()}:{container.get_exposed_port(8080)}/engine-rest"
            _wait_until_answers(url)
            yield EngineHandle(url=url, settings=Settings(engine_url=url), kind="docker")
        finally:
            container.stop()
        return
    handle, local = start_local_engine(tmp_path_factory.mktemp("engine-home"))
    try:
        yield handle
    finally:
        local.stop()  # type: ignore[attr-defined]


def _wait_until_answers(url: str, timeout: float = 120) -> None:
    import time

    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/engine", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"engine at {url} did not answer within {timeout} s")


@pytest.fixture
def mlc_home(tmp_path: Path) -> Path:
    home = tmp_path / "mlc-home"
    home.mkdir()
    return home


@pytest.fixture
def mlc_env(request: pytest.FixtureRequest, mlc_home: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Environment of a throwaway installation; also applied to this process (monkeypatch).

    Integration and e2e tests (and any test asking for ``engine``) point at the session's engine;
    others at an address where nothing answers.
    """
    engine_url = UNREACHABLE_ENGINE
    node = request.node
    if "engine" in request.fixturenames or node.get_closest_marker("integration") or node.get_closest_marker("e2e"):
        engine_url = request.getfixturevalue("engine").url
    values = {
        "MLC_HOME": str(mlc_home),
        "MLC_ENGINE_URL": engine_url,
        "MLC_STORE_URL": f"sqlite:///{mlc_home / 'mlc.db'}",
        "MLFLOW_TRACKING_URI": f"sqlite:///{mlc_home / 'mlflow.db'}",
        "MLC_ENGINE_AUTH": "none",
    }
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    for key in ("MLC_ENGINE_PORT", "MLC_ENGINE_USER", "MLC_ENGINE_PASSWORD", "MLC_ENGINE_TOKEN", "MLC_CONFIG_FILE"):
        monkeypatch.delenv(key, raising=False)
    env = dict(os.environ)
    env.update(values)
    return env


@pytest.fixture
def settings(mlc_env: dict[str, str]) -> Settings:
    return Settings()


def mlc_command() -> list[str]:
    script = Path(sys.executable).parent / "mlc"
    return [str(script)] if script.exists() else [sys.executable, "-m", "modelops_mlc.cli.app"]


@pytest.fixture
def run_mlc(mlc_env: dict[str, str]):
    """Run the real `mlc` CLI in a subprocess with the test's environment."""

    def run(*args: str, env: dict[str, str] | None = None, input: str | None = None, timeout: float = 180,
            cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        full_env = dict(mlc_env)
        full_env.update(env or {})
        full_env.setdefault("COLUMNS", "200")
        return subprocess.run(
            [*mlc_command(), *map(str, args)], env=full_env, input=input, capture_output=True, text=True,
            timeout=timeout, cwd=cwd,
        )

    return run


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        path = str(item.fspath)
        if f"{os.sep}integration{os.sep}" in path:
            item.add_marker(pytest.mark.integration)
        elif f"{os.sep}e2e{os.sep}" in path:
            item.add_marker(pytest.mark.e2e)
