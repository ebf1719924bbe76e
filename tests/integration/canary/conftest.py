"""Drive mlc-canary-rollout on the real engine by hand (the external tasks completed by the test),
and evaluate its decision mlc-canary-slo; no workers, MLflow or runtimes."""

from __future__ import annotations

import uuid
from typing import Any

from modelops_mlc.engine.variables import from_engine, to_engine
from tests.integration.bpmn.conftest import ProcessDriver, driver  # noqa: F401  (the fixture: bpmn/ deployed)


def start(driver: ProcessDriver, variables: dict[str, Any]) -> str:
    """Start the process by key, as a call activity or `POST .../start` would; returns its RUN_TOKEN."""
    token = uuid.uuid4().hex
    r = driver.http.post("/process-definition/key/mlc-canary-rollout/start",
                         json={"variables": to_engine({**variables, "RUN_TOKEN": token})})
    assert r.status_code == 200, r.text
    return token


def decide(driver: ProcessDriver, variables: dict[str, Any]) -> dict[str, Any]:
    """The single result of mlc-canary-slo for ``variables``."""
    r = driver.http.post("/decision-definition/key/mlc-canary-slo/evaluate", json={"variables": to_engine(variables)})
    assert r.status_code == 200, r.text
    (result,) = [from_engine(row) for row in r.json()]
    return result
