"""Drive the MLC processes on the real engine by hand: deploy bpmn/, fire signals, fetch-and-lock
and complete external tasks as a test worker, correlate messages, read history.

No workers, MLflow or runtimes are involved: these tests check the BPMN alone.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from modelops_mlc.engine.variables import from_engine, to_engine

BPMN_DIR = Path(__file__).resolve().parents[3] / "bpmn"
WORKER_ID = "bpmn-test-worker"
WAIT = 20.0  # seconds a step may take before the test fails


class ProcessDriver:
    """A hand-cranked worker for one engine; every instance it starts carries a unique RUN_TOKEN."""

    def __init__(self, url: str) -> None:
        self.http = httpx.Client(base_url=url.rstrip("/"), timeout=30)
        self._instances: dict[str, str] = {}

    def close(self) -> None:
        self.http.close()

    # ---- deployment and start ------------------------------------------------------
    def deploy(self) -> dict[str, Any]:
        files = sorted([*BPMN_DIR.glob("*.bpmn"), *BPMN_DIR.glob("*.dmn")])
        r = self.http.post(
            "/deployment/create",
            data={"deployment-name": "mlc-bpmn-tests", "deploy-changed-only": "true", "enable-duplicate-filtering": "true"},
            files=[(p.name, (p.name, p.read_bytes(), "application/octet-stream")) for p in files],
        )
        assert r.status_code == 200, r.text
        return r.json()

    def signal(self, name: str, variables: dict[str, Any]) -> str:
        """Fire a start signal with a fresh RUN_TOKEN; returns the token (see :meth:`instance`)."""
        token = uuid.uuid4().hex
        r = self.http.post("/signal", json={"name": name, "variables": to_engine({**variables, "RUN_TOKEN": token})})
        assert r.status_code == 204, r.text
        return token

    def start(self, key: str, variables: dict[str, Any]) -> str:
        """Start the latest ``key`` by key with a fresh RUN_TOKEN; returns the token."""
        token = uuid.uuid4().hex
        r = self.http.post(f"/process-definition/key/{key}/start",
                           json={"variables": to_engine({**variables, "RUN_TOKEN": token})})
        assert r.status_code == 200, r.text
        self._instances[token] = r.json()["id"]
        return token

    def instance(self, token: str) -> str:
        """The one process instance started with ``token`` (running or finished)."""
        if token not in self._instances:
            r = self.http.post("/history/process-instance",
                               json={"variables": [{"name": "RUN_TOKEN", "operator": "eq", "value": token}]})
            assert r.status_code == 200, r.text
            found = r.json()
            assert len(found) == 1, f"expected one instance for the token, found {len(found)}"
            self._instances[token] = found[0]["id"]
        return self._instances[token]

    # ---- external tasks ------------------------------------------------------------
    def fetch(self, topic: str, token: str) -> dict[str, Any]:
        """Lock the next task of ``topic`` in the instance with ``token``; its variables come as python values."""
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            r = self.http.post("/external-task/fetchAndLock", json={
                "workerId": WORKER_ID,
                "maxTasks": 1,
                "asyncResponseTimeout": 2000,
                "topics": [{"topicName": topic, "lockDuration": 60000, "processVariables": {"RUN_TOKEN": token}}],
            })
            assert r.status_code == 200, r.text
            tasks = r.json()
            if tasks:
                task = tasks[0]
                task["vars"] = from_engine(task.get("variables"))
                return task
        self.fail_with_state(token, f"no {topic} task within {WAIT} s")
        raise AssertionError  # unreachable

    def complete(self, task: dict[str, Any], variables: dict[str, Any] | None = None) -> None:
        r = self.http.post(f"/external-task/{task['id']}/complete",
                           json={"workerId": WORKER_ID, "variables": to_engine(variables or {})})
        assert r.status_code == 204, r.text

    def bpmn_error(self, task: dict[str, Any], code: str, message: str) -> None:
        r = self.http.post(f"/external-task/{task['id']}/bpmnError",
                           json={"workerId": WORKER_ID, "errorCode": code, "errorMessage": message or None})
        assert r.status_code == 204, r.text

    def run(self, topic: str, token: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        """Fetch and complete one task; returns what the worker saw."""
        task = self.fetch(topic, token)
        self.complete(task, variables)
        return task

    def fail(self, topic: str, token: str, code: str, message: str = "") -> dict[str, Any]:
        task = self.fetch(topic, token)
        self.bpmn_error(task, code, message)
        return task

    # ---- user tasks and messages ---------------------------------------------------
    def user_task(self, token: str) -> dict[str, Any]:
        pid = self.instance(token)
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            r = self.http.get("/task", params={"processInstanceId": pid})
            assert r.status_code == 200, r.text
            if r.json():
                return r.json()[0]
            time.sleep(0.2)
        self.fail_with_state(token, "no user task")
        raise AssertionError

    def candidate_groups(self, task_id: str) -> list[str]:
        r = self.http.get(f"/task/{task_id}/identity-links", params={"type": "candidate"})
        return [link["groupId"] for link in r.json() if link.get("groupId")]

    def complete_user_task(self, task_id: str, variables: dict[str, Any]) -> None:
        r = self.http.post(f"/task/{task_id}/complete", json={"variables": to_engine(variables)})
        assert r.status_code == 204, r.text

    def ticket_updated(self, ticket_key: str, state: str, token: str) -> None:
        """What the ticket watcher does: correlate mlc.ticket-updated by TICKET_KEY, setting TICKET_STATE."""
        pid = self.instance(token)
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:  # wait until the instance subscribes to the message
            r = self.http.get("/event-subscription", params={"processInstanceId": pid, "eventType": "message"})
            if r.json():
                break
            time.sleep(0.2)
        r = self.http.post("/message", json={
            "messageName": "mlc.ticket-updated",
            "correlationKeys": to_engine({"TICKET_KEY": ticket_key}),
            "processVariables": to_engine({"TICKET_STATE": state}),
        })
        assert r.status_code == 204, r.text

    # ---- results -------------------------------------------------------------------
    def ended_at(self, token: str) -> str:
        """Wait for the instance to finish; returns the id of the none end event it finished in."""
        pid = self.instance(token)
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            state = self.http.get(f"/history/process-instance/{pid}").json()["state"]
            if state != "ACTIVE":
                break
            time.sleep(0.2)
        assert state == "COMPLETED", f"instance state {state}"
        r = self.http.get("/history/activity-instance", params={"processInstanceId": pid, "activityType": "noneEndEvent"})
        ends = [a["activityId"] for a in r.json()]
        assert len(ends) == 1, ends
        return ends[0]

    def variables(self, token: str) -> dict[str, Any]:
        pid = self.instance(token)
        r = self.http.get("/history/variable-instance", params={"processInstanceId": pid, "deserializeValues": "false"})
        return {v["name"]: from_engine({"v": v})["v"] for v in r.json()}

    def business_key(self, token: str) -> str | None:
        return self.http.get(f"/history/process-instance/{self.instance(token)}").json()["businessKey"]

    def activities(self, token: str) -> list[str]:
        r = self.http.get("/history/activity-instance", params={
            "processInstanceId": self.instance(token), "sortBy": "startTime", "sortOrder": "asc"})
        return [a["activityId"] for a in r.json()]

    def fail_with_state(self, token: str, why: str) -> None:
        """Fail with what the instance is doing: activities so far and open incidents."""
        pid = self.instance(token)
        incidents = self.http.get("/incident", params={"processInstanceId": pid}).json()
        pytest.fail(f"{why}; activities {self.activities(token)}; incidents "
                    f"{[(i['activityId'], i['incidentMessage']) for i in incidents]}")


@pytest.fixture(scope="module")
def driver(engine) -> Iterator[ProcessDriver]:
    d = ProcessDriver(engine.url)
    d.deploy()
    yield d
    d.close()
