"""The approval of mlc-retrain (task_review) has the deploy review's listeners: it records
APPROVED_BY, and under separation of duties the engine refuses the submitter and the task stays
open; another reviewer's approval goes on to the canary rollout."""

from __future__ import annotations

import uuid

from modelops_mlc.engine.variables import to_engine


def review_task(driver, **variables) -> tuple[str, dict]:
    """mlc-retrain driven by hand to its user task: claim, valid data, a finished job, a winning challenger."""
    model = f"gov-retrain-{uuid.uuid4().hex[:8]}"
    token = driver.signal("mlc.retrain", {"MODEL_ID": model, "TRAIN_POLL_INTERVAL": "PT0S", **variables})
    driver.run("retrain-claim", token, {"MODEL_ID": model, "MODEL_VERSION": 3, "CHAMPION_VERSION": 3,
                                        "RETRAIN_CLAIMED": True, "RETRAIN_HOLDER": "me", "REVIEW_IN_TICKET": False,
                                        "RETRAIN_DMN_KEY": "mlc-retrain-decision"})
    driver.run("validate-data", token, {"DATA_VALID": True, "DATA_PROBLEMS": ""})
    driver.run("train-submit", token, {"TRAIN_JOB_ID": "job-1", "TRAIN_JOB_STATE": "submitted"})
    driver.run("train-status", token, {"TRAIN_JOB_STATE": "succeeded", "MODEL_VERSION": 4, "CHALLENGER_VERSION": 4})
    driver.run("compare", token, {"COMPARE_WINNER": "challenger", "COMPARE_PRIMARY_METRIC": "roc_auc",
                                  "COMPARE_IMPROVEMENT": 0.2, "COMPARE_GUARD_LOSSES": ""})
    task = driver.user_task(token)
    assert task["taskDefinitionKey"] == "task_review"
    return token, task


def complete_as(driver, task: dict, user: str, approved: bool):
    assert driver.http.post(f"/task/{task['id']}/claim", json={"userId": user}).status_code == 204
    return driver.http.post(f"/task/{task['id']}/complete", json={"variables": to_engine({"approved": approved})})


def test_the_submitter_cannot_approve_the_challenger(driver) -> None:
    token, task = review_task(driver, SUBMITTED_BY="alice", SEPARATION_OF_DUTIES=True)
    refused = complete_as(driver, task, "alice", True)
    assert refused.status_code >= 400
    assert "Separation of duties: alice submitted" in refused.json()["message"]
    assert driver.http.get(f"/task/{task['id']}").status_code == 200  # still open
    assert "approved" not in driver.variables(token) and "APPROVED_BY" not in driver.variables(token)

    assert driver.http.post(f"/task/{task['id']}/unclaim").status_code == 204
    assert complete_as(driver, task, "bob", True).status_code == 204
    assert driver.variables(token)["APPROVED_BY"] == "bob"
    # approved: the challenger goes to its canary (mlc-canary-rollout's first step)
    assert driver.http.get("/history/activity-instance", params={
        "processInstanceId": driver.instance(token), "activityId": "call_canary"}).json()


def test_without_separation_of_duties_the_approver_is_recorded(driver) -> None:
    token, task = review_task(driver, SUBMITTED_BY="alice")
    assert complete_as(driver, task, "alice", False).status_code == 204
    assert driver.variables(token)["APPROVED_BY"] == "alice"
    driver.run("notify", token)
    driver.run("retrain-release", token)
    assert driver.ended_at(token) == "end_rejected"
