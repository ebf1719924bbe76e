"""Helpers of the fault suite: the scenario record and its JSON summary, a worker that is killed
with -9 (its whole process group, pool included) while the engine shows it holding a task, and
counts of the effects a life cycle leaves in the MLC store and in MLflow."""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import signal
import subprocess
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench.lifecycle import TreeMemory
from modelops_mlc.engine import EngineClient
from tests.integration.workers.wt_support import WorkerProcess
from tests.support.waiting import wait_for

__all__ = [
    "KilledWorker", "Scenario", "ServerProcess", "TreeMemory", "effects_per_instance",
    "history_states", "write_summary",
]


@dataclass
class Scenario:
    """What one fault scenario did and what it left: the columns of docs/reliability.md."""

    name: str
    form: str  # short (make test) or full (make test-faults)
    instances_started: int = 0
    instances_completed: int = 0
    instances_lost: int = 0
    effects_duplicated: int = 0
    incidents: int = 0
    incidents_recovered: int = 0
    peak_memory_mib: float = 0.0
    faults: list[str] = field(default_factory=list)  # what was done to the system, one line each
    outcome: str = "error"

    def count(self, client: EngineClient, instance_ids: list[str]) -> dict[str, int]:
        """Fill in started/completed/lost from the engine's history; returns the states."""
        states = history_states(client, instance_ids)
        self.instances_started = len(instance_ids)
        self.instances_completed = states.get("COMPLETED", 0)
        self.instances_lost = len(instance_ids) - sum(states.values())
        return states


def write_summary(path: Path, suite: str, scenarios: list[Any]) -> None:
    """One JSON document: the run's date, machine and load, each scenario and the totals."""
    rows = [asdict(s) if hasattr(s, "__dataclass_fields__") else dict(s) for s in scenarios]
    totals = {key: sum(r.get(key, 0) for r in rows) for key in (
        "instances_started", "instances_completed", "instances_lost", "effects_duplicated", "incidents")}
    doc = {
        "suite": suite,
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": {"cores": os.cpu_count(), "load_average": [round(x, 2) for x in os.getloadavg()],
                    "python": platform.python_version()},
        "scenarios_run": len(rows),
        "scenarios_passed": sum(r.get("outcome") == "passed" for r in rows),
        "totals": {**totals, "peak_memory_mib": max((r.get("peak_memory_mib", 0) for r in rows), default=0)},
        "scenarios": rows,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=2) + "\n")


def history_states(client: EngineClient, instance_ids: list[str]) -> dict[str, int]:
    """How many of these instances the history holds in each state (ACTIVE, COMPLETED, ...)."""
    counts: dict[str, int] = {}
    for start in range(0, len(instance_ids), 200):
        rows = client.request("POST", "/history/process-instance", params={"maxResults": 1000},
                              json={"processInstanceIds": instance_ids[start:start + 200]})
        for row in rows:
            counts[row["state"]] = counts.get(row["state"], 0) + 1
    return counts


def effects_per_instance(store_url: str, table: str, instance_ids: list[str]) -> dict[str, int]:
    """Rows of an MLC store table (mlc_notifications, mlc_tickets, ...) per process instance."""
    from sqlalchemy import create_engine, text

    engine = create_engine(store_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(text(f"SELECT process_instance_id FROM {table}")).all()
    finally:
        engine.dispose()
    found = {i: 0 for i in instance_ids}
    for (pid,) in rows:
        if pid in found:
            found[pid] += 1
    return found


@dataclass
class KilledWorker:
    """Runs one instance (and the instances its call activities start) through its external tasks
    with a fresh `mlc worker start` for each, killing each worker with -9 as soon as the engine
    shows it holding a task of a topic not yet killed. The task stays locked until its lock
    expires, then the next worker gets it.

    ``killed`` lists the topics whose task was still open after the kill (the engine must
    redeliver it); ``missed`` those whose handler finished first (the kill came after it; the
    topic's next task in the instance, if any, gets another kill).
    """

    client: EngineClient
    env: dict[str, str]
    home: Path
    worker_args: list[str]
    log_dir: Path
    peak_memory_mib: float = 0.0
    killed: list[str] = field(default_factory=list)
    missed: list[str] = field(default_factory=list)
    instances: list[str] = field(default_factory=list)

    def _worker(self) -> WorkerProcess:
        n = len(list(self.log_dir.glob("worker-*.log")))
        return WorkerProcess(self.env, self.home, self.worker_args, self.log_dir / f"worker-{n}.log").wait_ready()

    def _tree(self, instance_id: str) -> set[str]:
        """The instance and the instances its call activities started, at any depth."""
        found, todo = {instance_id}, [instance_id]
        while todo:
            for sub in self.client.request("GET", "/process-instance", params={"superProcessInstance": todo.pop()}):
                found.add(sub["id"])
                todo.append(sub["id"])
        return found

    def _held(self, instance_id: str, worker_id: str, tree: set[str]) -> dict[str, Any] | None:
        """The task of the instance's ``tree`` the worker holds; the tree is refreshed (in place)
        only when the worker holds a task outside it, so the kill follows the lock without delay."""
        tasks = self.client.request("GET", "/external-task", params={"workerId": worker_id, "locked": "true"})
        if any(t["processInstanceId"] not in tree for t in tasks):
            tree |= self._tree(instance_id)
        return next((t for t in tasks if t["processInstanceId"] in tree), None)

    def _active(self, instance_id: str) -> bool:
        return self.client.history_instance(instance_id).state == "ACTIVE"

    def run(self, instance_id: str, topics: set[str], timeout: float = 600) -> None:
        """Until the instance ends: each topic in ``topics`` gets one kill with its task still open
        (a kill that came after the handler waits for the topic's next task). While a topic waits for
        its kill the worker's locks are polled back to back (a fast handler is done in a few tens of
        milliseconds); the instance's state and the memory are read every quarter second."""
        deadline = time.monotonic() + timeout
        pending = set(topics)
        tree = {instance_id}
        self.instances.append(instance_id)
        while self._active(instance_id):
            assert time.monotonic() < deadline, f"instance {instance_id} still active after {timeout} s"
            worker = self._worker()
            memory = TreeMemory(worker.proc.pid)
            checked = 0.0
            try:
                while True:
                    if time.monotonic() - checked >= 0.25:
                        if not self._active(instance_id) or time.monotonic() >= deadline:
                            break
                        memory.sample()
                        self.peak_memory_mib = max(self.peak_memory_mib, memory.peak)
                        assert worker.proc.poll() is None, f"worker exited:\n{worker.output()[-2000:]}"
                        checked = time.monotonic()
                    held = self._held(instance_id, worker.worker_id, tree) if pending else None
                    if held is not None and held["topicName"] in pending:
                        os.killpg(worker.proc.pid, signal.SIGKILL)
                        worker.proc.wait(timeout=30)
                        still = self.client.request("GET", "/external-task", params={"externalTaskId": held["id"]})
                        (self.killed if still else self.missed).append(held["topicName"])
                        if still:  # a miss stays pending: a later task of the topic (a polling loop) gets it
                            pending.discard(held["topicName"])
                        break
                    time.sleep(0.002 if pending else 0.02)
            finally:
                worker.close()


class ServerProcess:
    """A server the scenarios kill and start again (`mlflow server`, `mlc runtime serve`): run in
    its own session, so SIGKILL takes its whole process group; up once ``url + health`` answers 200."""

    def __init__(self, command: list[str], env: dict[str, str], url: str, health: str, log: Path,
                 cwd: Path | None = None) -> None:
        self.command, self.env, self.url, self.log, self.cwd = command, env, url, log, cwd
        self.health = url + health
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 120) -> None:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(self.command, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                         start_new_session=True, cwd=self.cwd)
        wait_for(self.answers, timeout=timeout, interval=0.5, what=f"{self.health} to answer")

    def answers(self) -> bool:
        try:
            return httpx.get(self.health, timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)
