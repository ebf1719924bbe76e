"""The whole stack for e2e tests: the session's engine, bpmn/ deployed, and one worker, one
local runtime (stage=QA, stage=PROD) and the ticket watcher started by `Stack.up` — the same code
path as `mlc up` — sharing one MLC_HOME (MLflow registry and MLC store) for the session."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from modelops_mlc.config import Settings
from modelops_mlc.engine import EngineClient
from tests.conftest import EngineHandle, free_port


@dataclass
class StackHandle:
    home: Path
    settings: Settings
    runtime_url: str
    env: dict[str, str]


# Package scope: the worker is gone before other packages drive external tasks by hand.
@pytest.fixture(scope="package")
def stack(engine: EngineHandle, tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackHandle]:
    from modelops_mlc.stack import Stack

    home = tmp_path_factory.mktemp("e2e-home")
    port = free_port()
    env = {
        "MLC_HOME": str(home),
        "MLC_ENGINE_URL": engine.url,
        "MLC_STORE_URL": f"sqlite:///{home / 'mlc.db'}",
        "MLFLOW_TRACKING_URI": f"sqlite:///{home / 'mlflow.db'}",
        "MLC_TICKET_WATCH_INTERVAL": "1",
    }
    mp = pytest.MonkeyPatch()
    for key, value in env.items():
        mp.setenv(key, value)
    settings = Settings()
    stack = Stack(settings, runtime_port=port)
    try:
        parts = stack.up()
        assert all(p.healthy for p in parts), parts
        yield StackHandle(home=home, settings=settings, runtime_url=f"http://127.0.0.1:{port}", env=env)
    finally:
        stack.down()
        mp.undo()


@pytest.fixture
def mlc_home(stack: StackHandle) -> Path:
    """e2e tests share the stack's MLC_HOME, so the CLI sees the same registry and store."""
    return stack.home


@pytest.fixture
def client(stack: StackHandle) -> Iterator[EngineClient]:
    with EngineClient(stack.settings) as c:
        yield c


