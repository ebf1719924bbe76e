"""Threads that import MLflow at once never see it half made.

Two threads importing ``mlflow.pyfunc`` and ``mlflow.artifacts`` at once in a fresh interpreter fail,
often, with "cannot import name 'Run' from partially initialized module 'mlflow.entities'": each holds
one module's import lock and waits for the other's, and the import system breaks the deadlock by
handing one thread the half-made module. A runtime's first load failed so in CI. Whether MLflow itself
shows it depends on timing, so these tests build the same cycle on purpose: two modules that import
each other, slowly. ``registry.imports.import_mlflow_stack`` imports the stack for every thread, one
thread at a time; a worker's handler thread runs it before a task of a handler that may use MLflow
(here), and so do the runtime's warm-up thread and its loader.
"""

from __future__ import annotations

import asyncio
import importlib
import sys
import threading
import uuid
from pathlib import Path

import pytest

from modelops_mlc.config import Settings
from modelops_mlc.registry import imports
from workers.daemon.execution import Execution
from workers.daemon.options import WorkerOptions
from workers.handlers import TaskContext, TopicHandler


@pytest.fixture
def cyclic_stack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, str]:
    """A package whose modules ``x`` and ``y`` import each other after a pause; it is the stack to import."""
    name = f"cyc_{uuid.uuid4().hex[:8]}"
    pkg = tmp_path / name
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    # x pauses, then waits for y; y, still pausing, then asks for x: a deadlock the import system
    # breaks by handing y the half-made x, which has no VALUE_X yet
    (pkg / "x.py").write_text(f"import time\ntime.sleep(0.2)\nfrom {name}.y import VALUE_Y  # noqa\nVALUE_X = 'x'\n")
    (pkg / "y.py").write_text(f"import time\nVALUE_Y = 'y'\ntime.sleep(0.6)\nfrom {name}.x import VALUE_X  # noqa\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    stack = (f"{name}.x", f"{name}.y")
    monkeypatch.setattr(imports, "MLFLOW_STACK", stack)
    monkeypatch.setattr(imports, "_imported", False)  # an earlier test of this session may have imported the real one
    yield stack
    for mod in [m for m in sys.modules if m.startswith(name)]:
        del sys.modules[mod]


def _import(module: str) -> str:
    importlib.import_module(module)
    return module


def test_unlocked_the_cycle_hands_a_thread_a_half_made_module(cyclic_stack) -> None:
    """The hazard is real: without the helper, one of the two threads fails."""
    errors: list[BaseException] = []

    def run(module: str) -> None:
        try:
            _import(module)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(m,)) for m in cyclic_stack]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert errors and "partially initialized" in str(errors[0])


def _ctx(topic: str, tmp_path: Path) -> TaskContext:
    return TaskContext(topic=topic, task_id=f"task-{topic}", process_instance_id="pi", activity_id="a",
                       activity_instance_id="a:1", variables={},
                       settings=Settings(home=tmp_path, store_url=f"sqlite:///{tmp_path}/mlc.db"), worker_id="w")


def test_a_workers_handler_threads_import_the_stack_before_a_task_that_may_use_it(cyclic_stack, tmp_path) -> None:
    """Two tasks of different topics fetched together by a fresh worker each import their part."""
    handlers = [TopicHandler(topic=f"t{i}", func=lambda ctx, m=m: {"IMPORTED": _import(m)})
                for i, m in enumerate(cyclic_stack)]

    async def main() -> list:
        execution = Execution(WorkerOptions(concurrency=2))
        try:
            return await asyncio.gather(*(execution.run(h, _ctx(h.topic, tmp_path)) for h in handlers))
        finally:
            execution.shutdown(abandoned=False)

    outcomes = asyncio.run(main())
    assert [o.kind for o in outcomes] == ["complete", "complete"], [o.message for o in outcomes]
    assert [o.variables["IMPORTED"] for o in outcomes] == list(cyclic_stack)


def test_a_handler_declared_without_mlflow_does_not_load_the_stack(cyclic_stack, tmp_path) -> None:
    """`notify` and `create-ticket` are declared mlflow=False: a worker of only those never imports it."""
    from workers.handlers import load_builtin_handlers

    builtin = {h.topic: h.mlflow for h in load_builtin_handlers()}
    assert builtin["notify"] is False and builtin["create-ticket"] is False and builtin["get-model"] is True
    handler = TopicHandler(topic="plain", func=lambda ctx: {"OK": True}, mlflow=False)

    async def main():
        execution = Execution(WorkerOptions(concurrency=1))
        try:
            return await execution.run(handler, _ctx("plain", tmp_path))
        finally:
            execution.shutdown(abandoned=False)

    assert asyncio.run(main()).kind == "complete"
    assert not any(m in sys.modules for m in cyclic_stack)
