"""Every file in bpmn/ deploys on the real engine, and the default decision decides as documented."""

from __future__ import annotations

import pytest

from modelops_mlc.engine.variables import from_engine, to_engine

PROCESSES = {
    "mlc-productionize": ("mlc.model-submitted", "start_submitted"),
    "mlc-run-back-test": ("mlc.run-back-test", "start_run_back_test"),
    "mlc-run-batch-job": ("mlc.deployed-batch-job", "start_batch_job"),
}


@pytest.mark.parametrize("key", sorted(PROCESSES))
def test_process_is_deployed_with_its_start_signal(driver, key):
    definition = driver.http.get(f"/process-definition/key/{key}").json()
    assert definition["historyTimeToLive"] == 30
    signal, start = PROCESSES[key]
    subs = driver.http.get("/event-subscription", params={"eventType": "signal", "eventName": signal}).json()
    assert any(s["activityId"] == start and s["processInstanceId"] is None for s in subs), subs


def test_decision_is_deployed(driver):
    definition = driver.http.get("/decision-definition/key/mlc-test-criteria").json()
    assert definition["historyTimeToLive"] == 30
    assert definition["resource"] == "mlc-test-criteria.dmn"


def test_redeploying_unchanged_files_creates_nothing(driver):
    assert driver.deploy()["deployedProcessDefinitions"] is None


@pytest.mark.parametrize(
    ("inputs", "passed", "reason"),
    [
        ({"TASK_TYPE": "classification", "roc_auc": 0.91, "f1": 0.8}, True, "roc_auc 0.910 >= 0.75 and f1 0.800 >= 0.7"),
        ({"TASK_TYPE": "classification", "roc_auc": 0.61234, "f1": 0.8}, False, "roc_auc 0.612 below 0.75"),
        ({"TASK_TYPE": "classification", "roc_auc": 0.9, "f1": 0.5}, False, "f1 0.500 below 0.7"),
        ({"TASK_TYPE": "classification", "roc_auc": 0.5, "f1": 0.5}, False, "roc_auc 0.500 below 0.75"),
        # no scores (no predict_proba): roc_auc is absent and does not count
        ({"TASK_TYPE": "classification", "f1": 0.75, "accuracy": 0.8}, True, "f1 0.750 >= 0.7 (no roc_auc)"),
        ({"TASK_TYPE": "classification", "roc_auc": 0.9}, False, "f1 missing from the test results of a classification model"),
        ({"TASK_TYPE": "regression", "r2": 0.62, "rmse": 53.1234, "mae": 40.0}, True, "r2 0.620 >= 0.5 (rmse 53.123)"),
        ({"TASK_TYPE": "regression", "r2": 0.5}, True, "r2 0.500 >= 0.5"),
        ({"TASK_TYPE": "regression", "r2": 0.2, "rmse": 80.0}, False, "r2 0.200 below 0.5"),
        ({"TASK_TYPE": "regression", "rmse": 1.0}, False, "r2 missing from the test results of a regression model"),
        ({"TASK_TYPE": "clustering"}, False, "no test criteria for task type clustering"),
        ({}, False, "TASK_TYPE missing from the test results"),
    ],
)
def test_default_criteria(driver, inputs, passed, reason):
    r = driver.http.post("/decision-definition/key/mlc-test-criteria/evaluate", json={"variables": to_engine(inputs)})
    assert r.status_code == 200, r.text
    results = [from_engine(row) for row in r.json()]
    assert results == [{"passed": passed, "reason": reason}]
