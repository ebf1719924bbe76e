"""The paths of mlc-monitor the worker tests do not take, driven by hand on the real engine (no
worker, no MLflow): a `notify` verdict, a failed step, a retrain without labels."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration.bpmn.conftest import ProcessDriver

FOUND = {"MODEL_VERSION": 2}
DRIFT = {"DRIFT_RESULTS": {"features": {"age": {"psi": 0.15}}, "drifted_features": ["age"]}}


@pytest.fixture(scope="module")
def driver(engine: Any) -> Iterator[ProcessDriver]:
    d = ProcessDriver(engine.url)
    d.deploy()
    yield d
    d.close()


def checked(**figures: Any) -> dict[str, Any]:
    return {"MONITOR_DMN_KEY": "mlc-monitor-criteria", "MONITOR_MAX_PSI": 0.05, "MONITOR_MAX_PSI_FEATURE": "age",
            "MONITOR_PREDICTION_PSI": None, "MONITOR_ACCURACY_DROP": None, "MONITOR_FAIRNESS_GAP": None,
            "HAS_LABELS": False, "MONITOR_SUMMARY": "largest PSI 0.150 (age)", **figures}


def start(driver: ProcessDriver) -> tuple[str, str]:
    model = f"paths-{uuid.uuid4().hex[:8]}"
    return model, driver.signal("mlc.monitor", {"MODEL_ID": model, "CURRENT_DATA": "/data/current.csv"})


def test_a_notify_verdict_sends_a_warning(driver) -> None:
    model, token = start(driver)
    driver.run("get-model", token, FOUND)
    assert driver.business_key(token) == f"{model}:2"
    task = driver.run("drift", token, DRIFT)
    assert task["vars"]["PREDICTION_DRIFT"] is True and task["vars"]["CURRENT_DATA"] == "/data/current.csv"
    driver.run("monitor-check", token, checked(MONITOR_MAX_PSI=0.15))
    record = driver.run("monitor-record", token, {"MONITOR_RECORD_ID": 1})
    assert (record["vars"]["MONITOR_VERDICT"], record["vars"]["MONITOR_REASON"]) == (
        "notify", "PSI 0.150 of feature age between 0.1 and 0.2")
    task = driver.run("notify", token)
    assert task["vars"]["NOTIFY_LEVEL"] == "warning"
    assert task["vars"]["NOTIFY_MESSAGE"] == f"Monitor of {model} version 2: PSI 0.150 of feature age between 0.1 and 0.2"
    assert driver.ended_at(token) == "end_notified"
    assert "DECISION_RESULT" not in driver.variables(token)


def test_a_failed_step_ends_in_an_error_notification(driver) -> None:
    model, token = start(driver)
    driver.run("get-model", token, FOUND)
    driver.fail("drift", token, "MLC_MISSING_TEST_DATA", "current data not found: /data/current.csv")
    task = driver.run("notify", token)
    assert task["vars"]["NOTIFY_LEVEL"] == "error"
    assert task["vars"]["NOTIFY_MESSAGE"] == (f"Monitor of {model} failed with MLC_MISSING_TEST_DATA: "
                                              "current data not found: /data/current.csv")
    assert driver.ended_at(token) == "end_failed"


def test_a_retrain_without_labels_passes_no_training_data(driver) -> None:
    model, token = start(driver)
    driver.run("get-model", token, FOUND)
    driver.run("drift", token, DRIFT)
    driver.run("monitor-check", token, checked(MONITOR_MAX_PSI=0.4))
    driver.run("monitor-record", token)
    task = driver.run("notify", token)
    assert task["vars"]["NOTIFY_MESSAGE"].startswith(f"Monitor of {model} version 2 asks for retraining: PSI 0.400")
    assert driver.ended_at(token) == "end_retrain"
    variables = driver.variables(token)
    assert variables["TRAINING_DATA"] is None and variables["RETRAIN_TRIGGER"] == "monitor"
    for instance in driver.http.post("/history/process-instance", json={
            "processDefinitionKey": "mlc-retrain", "unfinished": True,
            "variables": [{"name": "MODEL_ID", "operator": "eq", "value": model}]}).json():
        driver.http.delete(f"/process-instance/{instance['id']}", params={"skipCustomListeners": "true"})
