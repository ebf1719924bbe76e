"""Helpers of the worker integration tests: a real `mlc worker start` subprocess, and a tracker
that starts test process instances, waits for their end and deletes leftovers."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

from modelops_mlc.engine import EngineClient
from modelops_mlc.engine.variables import to_engine
from tests.conftest import mlc_command

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
BPMN_DIR = HERE / "bpmn"
TEST_KEYS = sorted(p.stem for p in BPMN_DIR.glob("*.bpmn"))


class WorkerProcess:
    """One `mlc worker start` subprocess in its own session (so kill -9 takes its pool too)."""

    def __init__(self, env: dict[str, str], home: Path, args: list[str], log: Path) -> None:
        self.worker_id = f"wt-{uuid.uuid4().hex[:8]}"
        self.home = home
        self.log_path = log
        self._log = log.open("w")
        cmd = [*mlc_command(), "worker", "start", "--worker-id", self.worker_id, "--log-format", "json", *args]
        self.proc = subprocess.Popen(cmd, env=env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True,
                                     cwd=home)  # nothing MLflow writes relative to the cwd lands in the repo

    @property
    def status_file(self) -> Path:
        return self.home / "workers" / f"{self.worker_id}.json"

    def wait_ready(self, timeout: float = 60) -> "WorkerProcess":
        """Until the worker wrote its status file (it fetches right after)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.status_file.exists():
                return self
            if self.proc.poll() is not None:
                raise AssertionError(f"worker exited with {self.proc.returncode}:\n{self.output()}")
            time.sleep(0.1)
        raise AssertionError(f"worker not ready within {timeout} s:\n{self.output()}")

    def output(self) -> str:
        self._log.flush()
        return self.log_path.read_text()

    def events(self, name: str | None = None) -> list[dict[str, Any]]:
        found = []
        for line in self.output().splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if name is None or record.get("event") == name:
                found.append(record)
        return found

    def terminate(self, timeout: float = 60) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=timeout)

    def signal_group(self, sig: int = signal.SIGTERM) -> None:
        """Send ``sig`` to the worker's whole process group (it leads its own session), as
        systemd's ``KillMode=control-group`` or a forwarding container init would."""
        os.killpg(self.proc.pid, sig)

    def kill9(self) -> None:
        """``kill -9`` the worker process alone (its pool processes are left to notice)."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(timeout=30)
        self._log.close()


class Instances:
    """Starts test process instances, waits for them and deletes the unfinished ones at teardown."""

    def __init__(self, client: EngineClient) -> None:
        self.client = client
        self.started: list[str] = []

    def start(self, key: str, variables: dict[str, Any] | None = None) -> str:
        started = self.client.request("POST", f"/process-definition/key/{key}/start",
                                      json={"variables": to_engine(variables or {})})
        self.started.append(started["id"])
        return str(started["id"])

    def state(self, instance_id: str) -> str:
        return str(self.client.request("GET", f"/history/process-instance/{instance_id}")["state"])

    def wait_ended(self, instance_id: str, timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = self.state(instance_id)
            if state != "ACTIVE":
                return state
            time.sleep(0.2)
        raise AssertionError(f"instance {instance_id} still active after {timeout} s")

    def variables(self, instance_id: str) -> dict[str, Any]:
        return self.client.variables(instance_id)

    def ended_at(self, instance_id: str) -> str:
        """Id of the end event the instance finished in (End_ok or End_error)."""
        acts = self.client.history_activities(instance_id)
        ends = [a.activity_id for a in acts if a.activity_type == "noneEndEvent"]
        assert ends, f"instance {instance_id} has not reached an end event"
        return ends[-1]

    def external_task(self, instance_id: str) -> dict[str, Any] | None:
        tasks = self.client.request("GET", "/external-task", params={"processInstanceId": instance_id})
        return tasks[0] if tasks else None

    def cleanup(self) -> None:
        for instance_id in self.started:
            try:
                if self.state(instance_id) == "ACTIVE":
                    self.client.request("DELETE", f"/process-instance/{instance_id}",
                                        params={"skipCustomListeners": "true"})
            except Exception:  # already gone
                pass


