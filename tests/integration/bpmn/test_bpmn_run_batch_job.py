"""mlc-run-batch-job on the real engine, driven by hand."""

from __future__ import annotations

SIGNAL = "mlc.deployed-batch-job"


def test_scores_with_the_batch_deployment(driver):
    token = driver.signal(SIGNAL, {"TAG": "churn", "MODEL_STAGE": "PROD", "INPUT_FILE": "/in.csv", "OUTPUT_FILE": "/out.csv"})
    task = driver.run("get-model", token, {"MODEL_ID": "churn-model", "MODEL_VERSION": "7", "DEPLOYMENT_ID": "d7",
                                           "RUNTIME_NAME": "batch-prod"})
    assert (task["vars"]["LOOKUP"], task["vars"]["TAG"], task["vars"]["MODEL_STAGE"]) == ("batch-deployment", "churn", "PROD")
    assert driver.business_key(token) == "churn-model:7"
    task = driver.run("score", token, {"ROWS_SCORED": 120, "OUTPUT_SHA256": "abc"})
    assert (task["vars"]["MODEL_ID"], task["vars"]["INPUT_FILE"]) == ("churn-model", "/in.csv")
    assert "LOOKUP" not in task["vars"]  # an input of the lookup task only
    task = driver.run("notify", token)
    assert task["vars"]["NOTIFY_MESSAGE"] == "Batch job for tag churn scored 120 rows with churn-model version 7 into /out.csv"
    assert driver.ended_at(token) == "end_scored"


def test_no_batch_deployment_opens_error_ticket(driver):
    token = driver.signal(SIGNAL, {"TAG": "nothing-deployed"})
    driver.fail("get-model", token, "MLC_NO_RUNTIME", "no batch deployment for tag nothing-deployed")
    ticket = driver.fetch("create-ticket", token)
    assert ticket["vars"]["TICKET_KIND"] == "error"
    assert ticket["vars"]["TICKET_REASON"] == (
        "Batch job for tag nothing-deployed failed with MLC_NO_RUNTIME: no batch deployment for tag nothing-deployed")
    driver.complete(ticket, {"TICKET_KEY": "MLC-1"})
    assert driver.ended_at(token) == "end_failed"


def test_scoring_failure_opens_error_ticket(driver):
    token = driver.signal(SIGNAL, {"TAG": "churn"})
    driver.run("get-model", token, {"MODEL_ID": "churn-model", "MODEL_VERSION": "7"})
    driver.fail("score", token, "MLC_MISSING_TEST_DATA", "no INPUT_FILE")
    driver.run("create-ticket", token, {"TICKET_KEY": "MLC-2"})
    assert driver.ended_at(token) == "end_failed"


def test_business_key_never_breaks_get_model(driver):
    """A get-model result without MODEL_VERSION still completes (the key listener is null-safe)."""
    token = driver.signal(SIGNAL, {"TAG": "churn"})
    driver.run("get-model", token, {"MODEL_ID": "churn-model"})
    assert driver.business_key(token) == "churn-model:"
    driver.fail("score", token, "MLC_JOB_FAILED", "boom")
    driver.run("create-ticket", token)
    assert driver.ended_at(token) == "end_failed"
