"""bpmn/retrain.bpmn on the real engine, driven by hand (no worker, no MLflow): every path to its
end event, the claim released on each path after the claim, the decision run by the engine."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from rt_support import PROCESS_FILES
from tests.integration.bpmn.conftest import ProcessDriver

SIGNAL = "mlc.retrain"


@pytest.fixture(scope="module")
def driver(engine) -> Iterator[ProcessDriver]:
    d = ProcessDriver(engine.url)
    r = d.http.post("/deployment/create", data={"deployment-name": "mlc-retrain-bpmn-tests",
                                                "deploy-changed-only": "true", "enable-duplicate-filtering": "true"},
                    files=[(p.name, (p.name, p.read_bytes(), "application/octet-stream")) for p in PROCESS_FILES])
    assert r.status_code == 200, r.text
    yield d
    d.close()


def claimed(model: str, **more: Any) -> dict[str, Any]:
    """What retrain-claim writes back when it got the claim."""
    return {"MODEL_ID": model, "MODEL_VERSION": 3, "CHAMPION_VERSION": 3, "RETRAIN_CLAIMED": True,
            "RETRAIN_HOLDER": "me", "REVIEW_IN_TICKET": False, "RETRAIN_DMN_KEY": "mlc-retrain-decision", **more}


def to_compare(driver: ProcessDriver, token: str, model: str, **claim: Any) -> None:
    """Claim, valid data, a job that runs one poll and then succeeds with version 4."""
    driver.run("retrain-claim", token, claimed(model, **claim))
    driver.run("validate-data", token, {"DATA_VALID": True, "DATA_PROBLEMS": ""})
    driver.run("train-submit", token, {"TRAIN_JOB_ID": "job-1", "TRAIN_JOB_STATE": "submitted"})
    task = driver.run("train-status", token, {"TRAIN_JOB_STATE": "running"})
    assert task["vars"]["TRAIN_JOB_ID"] == "job-1"
    driver.run("train-status", token, {"TRAIN_JOB_STATE": "succeeded", "MODEL_VERSION": 4, "CHALLENGER_VERSION": 4})


def compared(improvement: float, losses: str = "") -> dict[str, Any]:
    return {"COMPARE_WINNER": "challenger" if improvement > 0 else "champion", "COMPARE_PRIMARY_METRIC": "roc_auc",
            "COMPARE_IMPROVEMENT": improvement, "COMPARE_GUARD_LOSSES": losses}


def start(driver: ProcessDriver, **variables: Any) -> tuple[str, str]:
    model = f"rt-bpmn-{uuid.uuid4().hex[:8]}"
    return model, driver.signal(SIGNAL, {"MODEL_ID": model, "TRAIN_POLL_INTERVAL": "PT0S", **variables})


def released(driver: ProcessDriver, token: str) -> None:
    task = driver.run("retrain-release", token)
    assert task["processInstanceId"] == driver.instance(token)


def test_refused_when_another_retrain_holds_the_model(driver) -> None:
    model, token = start(driver)
    driver.run("retrain-claim", token, claimed(model, RETRAIN_CLAIMED=False, RETRAIN_HOLDER="other-instance"))
    note = driver.fetch("notify", token)
    assert (note["vars"]["NOTIFY_LEVEL"], note["vars"]["NOTIFY_MESSAGE"]) == (
        "warning", f"Retrain of {model} refused: retrain other-instance is still running")
    driver.complete(note)
    assert driver.ended_at(token) == "end_refused"
    assert "task_release" not in driver.activities(token)  # the claim is not ours to release


def test_invalid_data_opens_a_rejection_ticket_and_releases(driver) -> None:
    model, token = start(driver, TRAINING_DATA="/data/new.csv")
    task = driver.run("retrain-claim", token, claimed(model))
    assert task["vars"]["TRAINING_DATA"] == "/data/new.csv"
    assert driver.business_key(token) == f"{model}:3"
    driver.run("validate-data", token, {"DATA_VALID": False, "DATA_PROBLEMS": "missing columns: age"})
    ticket = driver.fetch("create-ticket", token)
    assert (ticket["vars"]["TICKET_KIND"], ticket["vars"]["TICKET_REASON"]) == (
        "rejection", f"Training data for {model} rejected: missing columns: age")
    driver.complete(ticket, {"TICKET_KEY": "MLC-1"})
    released(driver, token)
    assert driver.ended_at(token) == "end_invalid_data"
    assert driver.variables(token)["RETRAIN_OUTCOME"] == "invalid-data"


def test_a_challenger_short_of_the_margin_is_not_deployed(driver) -> None:
    model, token = start(driver, IMPROVEMENT_MARGIN=0.05)
    to_compare(driver, token, model)
    task = driver.run("compare", token, compared(0.02))
    assert (task["vars"]["CHAMPION_VERSION"], task["vars"]["CHALLENGER_VERSION"]) == (3, 4)
    note = driver.fetch("notify", token)
    assert note["vars"]["NOTIFY_MESSAGE"] == (f"challenger version 4 of {model} not deployed: roc_auc changes by "
                                              "2.00 %, less than the margin of 5.00 %")
    driver.complete(note)
    released(driver, token)
    assert driver.ended_at(token) == "end_not_improved"
    assert driver.variables(token)["RETRAIN_DECISION"] == {
        "deploy": False, "reason": "roc_auc changes by 2.00 %, less than the margin of 5.00 %"}
    assert driver.activities(token).count("task_job_status") == 2  # polled until the job was done


def test_a_lost_guard_metric_keeps_the_champion_despite_the_improvement(driver) -> None:
    model, token = start(driver)
    to_compare(driver, token, model)
    driver.run("compare", token, compared(0.2, losses="f1"))
    note = driver.run("notify", token)
    assert note["vars"]["NOTIFY_MESSAGE"].endswith("not deployed: the challenger loses on guard metric f1")
    released(driver, token)
    assert driver.ended_at(token) == "end_not_improved"


def test_the_review_rejects_the_challenger(driver) -> None:
    model, token = start(driver)
    to_compare(driver, token, model)
    driver.run("compare", token, compared(0.0105))  # above the default margin of 0.01
    review = driver.user_task(token)
    assert driver.variables(token)["RETRAIN_DECISION"]["deploy"] is True
    assert review["taskDefinitionKey"] == "task_review"
    assert driver.candidate_groups(review["id"]) == ["mlc-reviewers"]
    driver.complete_user_task(review["id"], {"approved": False, "review_comment": "not before the audit"})
    note = driver.run("notify", token)
    assert note["vars"]["NOTIFY_MESSAGE"] == f"challenger version 4 of {model} rejected in review: not before the audit"
    released(driver, token)
    assert driver.ended_at(token) == "end_rejected"


def test_governed_models_are_reviewed_by_ticket(driver) -> None:
    model, token = start(driver)
    to_compare(driver, token, model, REVIEW_IN_TICKET=True)
    driver.run("compare", token, compared(0.3))
    ticket = driver.fetch("create-ticket", token)
    assert ticket["vars"]["TICKET_KIND"] == "review"
    assert ticket["vars"]["TICKET_REASON"] == (f"Approve the canary rollout of challenger version 4 of {model}: "
                                               "roc_auc improves by 30.00 % (margin 1.00 %)")
    driver.complete(ticket, {"TICKET_KEY": "MLC-7"})
    driver.ticket_updated("MLC-7", "In Progress", token)  # not decided: keeps waiting
    driver.ticket_updated("MLC-7", "Rejected", token)
    driver.run("notify", token)
    released(driver, token)
    assert driver.ended_at(token) == "end_rejected"
    assert "task_review" not in driver.activities(token)


def test_a_failed_training_job_opens_an_error_ticket_and_releases(driver) -> None:
    model, token = start(driver)
    driver.run("retrain-claim", token, claimed(model))
    driver.run("validate-data", token, {"DATA_VALID": True})
    driver.run("train-submit", token, {"TRAIN_JOB_ID": "job-9"})
    driver.fail("train-status", token, "MLC_JOB_FAILED", "training job job-9 crashed: process 42 exited without a result")
    ticket = driver.fetch("create-ticket", token)
    assert (ticket["vars"]["TICKET_KIND"], ticket["vars"]["TICKET_REASON"]) == (
        "error", f"Retrain of {model} failed with MLC_JOB_FAILED: training job job-9 crashed: process 42 exited "
                 "without a result")
    driver.complete(ticket, {"TICKET_KEY": "MLC-9"})
    released(driver, token)
    assert driver.ended_at(token) == "end_failed"
