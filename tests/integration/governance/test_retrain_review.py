"""The approval of mlc-retrain (task_review) has the deploy review's listeners: it records
APPROVED_BY, and under separation of duties the engine refuses the submitter and the task stays
open; another reviewer's approval goes on to the canary rollout. A governance_level=production
model's retrain, fired by `mlc retrain` as alice, turns separation of duties on by itself and is
reviewed by ticket: alice's resolution is refused, bob's goes on (the Jira stand-in, the real
retrain-claim and create-ticket handlers, the real ticket watcher)."""

from __future__ import annotations

import uuid

from sklearn.linear_model import LogisticRegression

from modelops_mlc.config import Settings
from modelops_mlc.engine.variables import to_engine
from modelops_mlc.insight.actor import acting_as
from modelops_mlc.registry import Registry
from modelops_mlc.retraining.trigger import request_retrain
from tests.integration.governance.test_ticket_review import (  # noqa: F401  (fixtures)
    started, systems, waiting_for_ticket, watcher,
)
from workers.create_ticket import create_ticket
from workers.handlers import TaskContext
from workers.retrain import retrain_claim


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


def test_the_submitter_cannot_approve_the_challenger(driver, started) -> None:
    token, task = review_task(driver, SUBMITTED_BY="alice", SEPARATION_OF_DUTIES=True)
    started.append(token)  # it ends waiting in its canary
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


def run_handler(driver, topic: str, token: str, handler) -> dict:
    """Fetch the instance's task of ``topic`` and complete it with what the real handler returns."""
    task = driver.fetch(topic, token)
    out = handler(TaskContext(topic=topic, task_id=task["id"], process_instance_id=task["processInstanceId"],
                              activity_id=task["activityId"], activity_instance_id=task["activityInstanceId"],
                              variables=task["vars"], settings=Settings(), process_definition_key="mlc-retrain"))
    driver.complete(task, out)
    return out


def registered(tags: dict | None = None) -> str:
    model = f"gov-retrain-{uuid.uuid4().hex[:8]}"
    estimator = LogisticRegression().fit([[0.0], [1.0], [2.0], [3.0]], [0, 0, 1, 1])
    Registry(Settings()).register(model, estimator=estimator, tags=tags)
    return model


def test_a_production_retrain_requested_by_alice_is_not_approved_by_alice(driver, systems, watcher,
                                                                            started) -> None:
    jira, _ = systems
    model = registered({"governance_level": "production", "jira": "true"})
    token = uuid.uuid4().hex
    started.append(token)  # it ends waiting in its canary
    with acting_as("user:alice"):  # what `mlc --user alice retrain MODEL` sets
        started = request_retrain(Settings(), model, extra={"RUN_TOKEN": token, "TRAIN_POLL_INTERVAL": "PT0S",
                                                            "SUBMITTED_BY": "mallory"})  # a --var cannot pass it on
    assert started.variables["SUBMITTED_BY"] == "alice"
    claimed = run_handler(driver, "retrain-claim", token, retrain_claim)
    assert claimed["SEPARATION_OF_DUTIES"] is True and claimed["REVIEW_IN_TICKET"] is True
    driver.run("validate-data", token, {"DATA_VALID": True, "DATA_PROBLEMS": ""})
    driver.run("train-submit", token, {"TRAIN_JOB_ID": "job-1", "TRAIN_JOB_STATE": "submitted"})
    driver.run("train-status", token, {"TRAIN_JOB_STATE": "succeeded", "MODEL_VERSION": 2, "CHALLENGER_VERSION": 2})
    driver.run("compare", token, {"COMPARE_WINNER": "challenger", "COMPARE_PRIMARY_METRIC": "roc_auc",
                                  "COMPARE_IMPROVEMENT": 0.2, "COMPARE_GUARD_LOSSES": ""})
    key = run_handler(driver, "create-ticket", token, create_ticket)["TICKET_KEY"]
    assert key in jira.issues  # the production retrain's review is a Jira ticket (tag jira=true)

    jira.set_status(key, "Done", by="alice")
    report = watcher.run_once()
    assert report.delivered == [] and [k for k, _ in report.refused] == [key]
    assert f"alice submitted {model}/2 and cannot approve it" in report.refused[0][1]
    assert waiting_for_ticket(driver, token)  # refused: the review stays open, nothing recorded
    assert "APPROVED_BY" not in driver.variables(token) and "approved" not in driver.variables(token)

    jira.set_status(key, "To Do", by="bob")
    jira.set_status(key, "Done", by="bob")
    assert watcher.run_once().delivered == [(key, "Done")]
    assert driver.variables(token)["APPROVED_BY"] == "bob" and driver.variables(token)["approved"] is True
    assert driver.http.get("/history/activity-instance", params={  # bob's approval goes on to the canary
        "processInstanceId": driver.instance(token), "activityId": "call_canary"}).json()


def test_a_retrain_fired_by_a_worker_has_no_submitter(driver, mlc_env) -> None:
    """The monitor's or a schedule's retrain: no human submitted it, so no one is excluded from
    approving it (a production model's review still needs a named reviewer)."""
    model = registered({"governance_level": "production"})
    token = uuid.uuid4().hex
    with acting_as("worker:host-1"):
        started = request_retrain(Settings(), model, trigger="monitor", extra={"RUN_TOKEN": token})
    claimed = run_handler(driver, "retrain-claim", token, retrain_claim)
    assert claimed["SEPARATION_OF_DUTIES"] is True
    assert "SUBMITTED_BY" not in started.variables and "SUBMITTED_BY" not in driver.variables(token)
    assert driver.http.delete(f"/process-instance/{driver.instance(token)}").status_code == 204
