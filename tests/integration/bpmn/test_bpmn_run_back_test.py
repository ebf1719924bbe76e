"""mlc-run-back-test on the real engine, every path driven by hand."""

from __future__ import annotations

import uuid

SIGNAL = "mlc.run-back-test"
FOUND = {"MODEL_VERSION": "5", "DMN_KEY": "mlc-test-criteria", "HAS_TEST_DATA": True}


def request(driver, **variables) -> tuple[str, str]:
    model = f"bpmn-test-{uuid.uuid4().hex[:8]}"
    return model, driver.signal(SIGNAL, {"MODEL_ID": model, "TICKET_SYSTEM": "local", **variables})


def test_pass_notifies(driver):
    model, token = request(driver, INPUT_FILE="/data/new.csv")
    driver.run("get-model", token, {**FOUND, "HAS_TEST_DATA": False})  # INPUT_FILE is enough
    assert driver.business_key(token) == f"{model}:5"
    task = driver.run("run-test", token, {"TASK_TYPE": "regression", "r2": 0.8, "rmse": 3.2, "OUTPUT_FILE": "/o.csv"})
    assert task["vars"]["INPUT_FILE"] == "/data/new.csv"
    task = driver.run("notify", token)
    assert task["vars"]["NOTIFY_LEVEL"] == "info"
    assert task["vars"]["NOTIFY_MESSAGE"] == f"Back test of {model} version 5 passed: r2 0.800 >= 0.5 (rmse 3.200)"
    assert driver.ended_at(token) == "end_passed"


def test_failing_criteria_open_ticket_in_ticket_system(driver):
    _, token = request(driver, TICKET_SYSTEM="jira")
    driver.run("get-model", token, FOUND)
    driver.run("run-test", token, {"TASK_TYPE": "classification", "roc_auc": 0.9, "f1": 0.42})
    ticket = driver.fetch("create-ticket", token)
    assert ticket["vars"]["TICKET_SYSTEM"] == "jira"
    assert ticket["vars"]["TICKET_KIND"] == "rejection"
    assert ticket["vars"]["TICKET_REASON"] == "Back test criteria not met: f1 0.420 below 0.7"
    driver.complete(ticket, {"TICKET_KEY": "MLC-1"})
    assert driver.ended_at(token) == "end_failed"
    assert driver.variables(token)["TEST_VERDICT"]["passed"] is False


def test_no_input_and_no_test_data_is_rejected(driver):
    _, token = request(driver)
    driver.run("get-model", token, {**FOUND, "HAS_TEST_DATA": False})
    ticket = driver.fetch("create-ticket", token)
    assert ticket["vars"]["TICKET_KIND"] == "rejection"
    assert ticket["vars"]["TICKET_REASON"].startswith("No test data")
    driver.complete(ticket, {"TICKET_KEY": "MLC-2"})
    assert driver.ended_at(token) == "end_rejected"
    assert "task_run_test" not in driver.activities(token)


def test_missing_test_data_from_the_job_is_rejected(driver):
    _, token = request(driver, INPUT_FILE="/nope.csv")
    driver.run("get-model", token, FOUND)
    driver.fail("run-test", token, "MLC_MISSING_TEST_DATA", "/nope.csv does not exist")
    ticket = driver.fetch("create-ticket", token)
    assert ticket["vars"]["TICKET_REASON"] == "Test data is missing: /nope.csv does not exist"
    driver.complete(ticket, {"TICKET_KEY": "MLC-3"})
    assert driver.ended_at(token) == "end_rejected"


def test_job_exception_opens_review_ticket(driver):
    _, token = request(driver)
    driver.run("get-model", token, FOUND)
    driver.fail("run-test", token, "MLC_JOB_FAILED", "ValueError: X has 3 features, expected 4")
    ticket = driver.fetch("create-ticket", token)
    assert ticket["vars"]["TICKET_KIND"] == "review"
    assert ticket["vars"]["TICKET_REASON"] == "The back test job failed: ValueError: X has 3 features, expected 4"
    assert ticket["vars"]["MLC_ERROR_MESSAGE"] == "ValueError: X has 3 features, expected 4"
    driver.complete(ticket, {"TICKET_KEY": "MLC-4"})
    assert driver.ended_at(token) == "end_job_failed"


def test_other_error_notifies_the_reason(driver):
    model, token = request(driver)
    driver.fail("get-model", token, "MLC_MODEL_NOT_FOUND", "no registered model")
    task = driver.run("notify", token)
    assert task["vars"]["NOTIFY_LEVEL"] == "error"
    assert task["vars"]["NOTIFY_MESSAGE"] == f"Back test of {model} failed with MLC_MODEL_NOT_FOUND: no registered model"
    assert driver.ended_at(token) == "end_error"
