"""Custom topics the worker integration tests serve (``--handlers wt_handlers:handlers``).

Each writes what it did under the directory in process variable LOG_DIR, so the tests can see
when handlers ran, how often, and in which process.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from modelops_mlc.errors import BpmnError
from workers.effects import once
from workers.handlers import TaskContext, TopicHandlers

handlers = TopicHandlers()


def _append(path: Path, record: dict) -> None:
    with path.open("a") as fh:  # one small O_APPEND write per line: lines never interleave
        fh.write(json.dumps(record) + "\n")


@handlers.topic("wt-slow")
def slow(ctx: TaskContext) -> dict:
    """Sleep SLEEP seconds in a thread, logging when it started and ended."""
    log = Path(ctx.require("LOG_DIR")) / "intervals.jsonl"
    _append(log, {"event": "start", "task": ctx.task_id, "t": time.time()})
    time.sleep(float(ctx.get("SLEEP", 1)))
    _append(log, {"event": "end", "task": ctx.task_id, "t": time.time()})
    return {"SLOW_DONE": True}


@handlers.topic("wt-effect", cpu_bound=True)
def effect(ctx: TaskContext) -> dict:
    """One side effect (guarded by the dedupe key), then SLEEP seconds of work in a pool process."""
    folder = Path(ctx.require("LOG_DIR"))
    _append(folder / "deliveries.jsonl", {"task": ctx.task_id, "pid": os.getpid(), "worker": ctx.worker_id})
    once(ctx, "side-effect", lambda: _append(folder / "effects.jsonl", {"task": ctx.task_id, "pid": os.getpid()}))
    if not (folder / "no-sleep").exists():
        _append(folder / "working.jsonl", {"task": ctx.task_id})  # the effect is done and recorded
        time.sleep(float(ctx.get("SLEEP", 1)))
    return {"EFFECT_PID": os.getpid()}


@handlers.topic("wt-burn", cpu_bound=True)
def burn(ctx: TaskContext) -> dict:
    """Busy CPU work for SECONDS in a pool process, logging when it started and ended."""
    folder = Path(ctx.require("LOG_DIR"))
    _append(folder / "burn.jsonl", {"event": "start", "task": ctx.task_id, "pid": os.getpid()})
    deadline, spins = time.monotonic() + float(ctx.get("SECONDS", 2)), 0
    while time.monotonic() < deadline:
        spins += sum(i * i for i in range(10_000)) % 7 + 1
    _append(folder / "burn.jsonl", {"event": "end", "task": ctx.task_id, "pid": os.getpid()})
    return {"BURN_PID": os.getpid(), "SPINS": spins}


@handlers.topic("wt-flaky")
def flaky(ctx: TaskContext) -> dict:
    """Fails while LOG_DIR/broken exists; counts its attempts."""
    folder = Path(ctx.require("LOG_DIR"))
    _append(folder / "attempts.jsonl", {"task": ctx.task_id, "retries": ctx.retries, "t": time.time()})
    if (folder / "broken").exists():
        raise RuntimeError("the backing service is down")
    return {"FIXED": True}


@handlers.topic("wt-echo")
async def echo(ctx: TaskContext) -> dict:
    """MODE=ok echoes X; MODE=bpmn throws MLC_JOB_FAILED; MODE=fail raises."""
    mode = ctx.get("MODE", "ok")
    if mode == "bpmn":
        raise BpmnError("MLC_JOB_FAILED", "echo refused", variables={"ECHO_EXTRA": 7})
    if mode == "fail":
        raise RuntimeError("echo failed")
    return {"ECHO": ctx.get("X"), "ECHO_DICT": {"a": [1, 2]}, "DEDUPE_KEY": ctx.dedupe_key}
