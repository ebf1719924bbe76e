"""One monitor run per risk tier on the real engine, the topics run by their real handlers: the same
drift (a feature's PSI between 0.15 and 0.2) makes the engine's mlc-monitor-criteria ask a HIGH
model for an investigation and only notify about a model without a tier (MEDIUM's thresholds)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.integration.bpmn.conftest import ProcessDriver
from tests.integration.monitoring.test_monitor_process import FEATURES, shift_for_psi
from workers.drift import drift
from workers.get_model import get_model
from workers.handlers import TaskContext
from workers.monitor import monitor_check


@pytest.fixture(scope="module")
def driver(engine: Any, installation: Any):
    d = ProcessDriver(engine.url)  # bpmn/ is deployed by the installation
    yield d
    d.close()


@pytest.fixture(scope="module")
def drifted(data: dict[str, Any]) -> str:
    """Current data without labels whose noise feature f6 drifted to a PSI of about 0.175."""
    frame = data["current"].drop(columns=["target"])
    frame["f6"] = frame["f6"] + shift_for_psi(data, "f6", 0.175)
    path = data["dir"] / "tier-drift.csv"
    frame.to_csv(path, index=False)
    return str(path)


def register(installation: Any, data: dict[str, Any], tags: dict[str, str]) -> str:
    from sklearn.linear_model import LogisticRegression

    from modelops_mlc.registry import Registry

    name = f"tiered-{uuid.uuid4().hex[:6]}"
    train = data["train"]
    Registry(installation.settings).register(
        name, estimator=LogisticRegression(max_iter=500).fit(train[FEATURES], train["target"]),
        tags={"target": "target", **tags}, input_example=train[FEATURES].head(3),
        assets={"TRAINING_DATA": str(data["paths"]["train"])})
    installation.models.append(name)
    return name


def run_handler(driver: ProcessDriver, settings: Any, topic: str, token: str, handler: Any) -> dict[str, Any]:
    """Fetch the instance's task of ``topic`` and complete it with what the real handler returns."""
    task = driver.fetch(topic, token)
    out = handler(TaskContext(topic=topic, task_id=task["id"], process_instance_id=task["processInstanceId"],
                              activity_id=task["activityId"], activity_instance_id=task["activityInstanceId"],
                              variables=task["vars"], settings=settings, process_definition_key="mlc-monitor"))
    driver.complete(task, out)
    return out


def monitor(driver: ProcessDriver, installation: Any, model: str, current: str) -> dict[str, Any]:
    """Run mlc-monitor up to its record step; the variables the decision left."""
    token = driver.signal("mlc.monitor", {"MODEL_ID": model, "CURRENT_DATA": current, "MONITOR_TRIGGER": "test"})
    run_handler(driver, installation.settings, "get-model", token, get_model)
    run_handler(driver, installation.settings, "drift", token, drift)
    checked = run_handler(driver, installation.settings, "monitor-check", token, monitor_check)
    recorded = driver.fetch("monitor-record", token)  # after the engine evaluated the decision
    driver.http.delete(f"/process-instance/{driver.instance(token)}", params={"skipCustomListeners": "true"})
    return {**checked, **recorded["vars"]}


def test_a_high_risk_model_is_investigated_where_a_medium_one_is_notified(driver, installation, data,
                                                                         drifted) -> None:
    high = monitor(driver, installation, register(installation, data, {"risk_tier": "high"}), drifted)
    untiered = monitor(driver, installation, register(installation, data, {}), drifted)

    assert 0.15 < high["MONITOR_MAX_PSI"] <= 0.2 and high["MONITOR_MAX_PSI_FEATURE"] == "f6"
    assert untiered["MONITOR_MAX_PSI"] == pytest.approx(high["MONITOR_MAX_PSI"])
    assert (high["RISK_TIER"], untiered["RISK_TIER"]) == ("HIGH", None)
    assert high["MONITOR_VERDICT"] == "investigate"
    assert high["MONITOR_REASON"].endswith("above 0.15 (risk tier HIGH)")
    assert untiered["MONITOR_VERDICT"] == "notify"
    assert untiered["MONITOR_REASON"].endswith("between 0.1 and 0.2")
