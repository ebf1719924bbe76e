"""mlc-deploy-with-test on the real engine, every path driven by hand."""

from __future__ import annotations

import time
import uuid

KEY = "mlc-deploy-with-test"  # called by mlc-productionize; started by key here
GOOD_METRICS = {"TASK_TYPE": "classification", "roc_auc": 0.91, "f1": 0.84, "accuracy": 0.9, "TEST_METRICS": {"f1": 0.84}}


def model_found(**flags) -> dict:
    """What get-model writes back."""
    values = {"TRAIN": False, "RUN_TEST": True, "JIRA": False, "DMN_KEY": "mlc-test-criteria", "HAS_TEST_DATA": True}
    values.update(flags)
    return values


def submit(driver, version=3) -> tuple[str, str]:
    model = f"bpmn-test-{uuid.uuid4().hex[:8]}"
    return model, driver.start(KEY, {"MODEL_ID": model, "MODEL_VERSION": version})


def test_happy_path_trains_tests_reviews_and_deploys(driver):
    model, token = submit(driver, version=3)
    task = driver.run("get-model", token, {"MODEL_ID": model, "MODEL_VERSION": 3, **model_found(TRAIN=True)})
    assert task["vars"]["MODEL_ID"] == model
    assert driver.business_key(token) == f"{model}:3"

    driver.run("train", token, {"MODEL_VERSION": 4, "PARENT_VERSION": 3, "TRAIN_RUN_ID": "r1"})
    task = driver.run("run-test", token, GOOD_METRICS)
    assert task["vars"]["MODEL_VERSION"] == 4

    review = driver.user_task(token)
    assert review["taskDefinitionKey"] == "task_review"
    assert driver.candidate_groups(review["id"]) == ["mlc-reviewers"]
    variables = driver.variables(token)
    assert variables["TEST_VERDICT"] == {"passed": True, "reason": "roc_auc 0.910 >= 0.75 and f1 0.840 >= 0.7"}
    assert "DECISION_RESULT" not in variables  # the java-serialized local is gone
    driver.complete_user_task(review["id"], {"approved": True, "review_comment": "looks good"})

    driver.run("deploy", token, {"DEPLOYMENT_ID": "d1", "DEPLOY_MODE": "online", "RUNTIME_NAME": "qa"})
    task = driver.run("notify", token, {"NOTIFICATION_ID": "n1"})
    assert task["vars"]["NOTIFY_LEVEL"] == "info"
    assert task["vars"]["NOTIFY_MESSAGE"] == f"Model {model} version 4 deployed (online)"
    assert driver.ended_at(token) == "end_deployed"


def test_no_train_no_test_goes_straight_to_review(driver):
    model, token = submit(driver, version="2")
    driver.run("get-model", token, {"MODEL_VERSION": "2", **model_found(RUN_TEST=False)})
    assert driver.business_key(token) == f"{model}:2"
    review = driver.user_task(token)
    driver.complete_user_task(review["id"], {"approved": True})
    driver.run("deploy", token, {"DEPLOY_MODE": "batch"})
    driver.run("notify", token)
    assert driver.ended_at(token) == "end_deployed"
    assert "task_run_test" not in driver.activities(token)
    assert "task_train" not in driver.activities(token)


def test_test_error_opens_rejection_ticket_and_done_runs_the_test_again(driver):
    _, token = submit(driver)
    driver.run("get-model", token, model_found(JIRA=True))
    driver.fail("run-test", token, "MLC_MISSING_TEST_DATA", "no TEST_DATA asset")
    ticket = driver.fetch("create-ticket", token)
    assert ticket["vars"]["TICKET_KIND"] == "rejection"
    assert ticket["vars"]["TICKET_REASON"] == "Test data is missing: no TEST_DATA asset"
    assert ticket["vars"]["MLC_ERROR_CODE"] == "MLC_MISSING_TEST_DATA"
    driver.complete(ticket, {"TICKET_KEY": "MLC-1", "TICKET_STATE": "Open"})

    driver.ticket_updated("MLC-1", "In Progress", token)  # not decided: keeps waiting
    driver.ticket_updated("MLC-1", "Done", token)
    driver.fail("run-test", token, "MLC_JOB_FAILED", "")  # second run fails differently
    ticket = driver.fetch("create-ticket", token)
    assert ticket["vars"]["TICKET_REASON"] == "The metrics test job failed"
    driver.complete(ticket, {"TICKET_KEY": "MLC-2"})
    driver.ticket_updated("MLC-2", "Done", token)
    driver.run("run-test", token, GOOD_METRICS)

    # jira: the review is a ticket; Done approves
    ticket = driver.fetch("create-ticket", token)
    assert ticket["vars"]["TICKET_KIND"] == "review"
    driver.complete(ticket, {"TICKET_KEY": "MLC-3"})
    driver.ticket_updated("MLC-3", "In Review", token)
    driver.ticket_updated("MLC-3", "Done", token)
    driver.run("deploy", token, {"DEPLOY_MODE": "online"})
    driver.run("notify", token)
    assert driver.ended_at(token) == "end_deployed"
    assert driver.activities(token).count("task_run_test") == 3


def test_rejected_test_ticket_ends_rejected(driver):
    _, token = submit(driver)
    driver.run("get-model", token, model_found())
    driver.fail("run-test", token, "MLC_JOB_FAILED", "boom")
    driver.run("create-ticket", token, {"TICKET_KEY": "MLC-9"})
    driver.ticket_updated("MLC-9", "Rejected", token)
    assert driver.ended_at(token) == "end_rejected"


def test_failed_criteria_open_rejection_ticket(driver):
    _, token = submit(driver)
    driver.run("get-model", token, model_found())
    driver.run("run-test", token, {"TASK_TYPE": "classification", "roc_auc": 0.61, "f1": 0.9})
    ticket = driver.fetch("create-ticket", token)
    assert ticket["vars"]["TICKET_KIND"] == "rejection"
    assert ticket["vars"]["TICKET_REASON"] == "Test criteria not met: roc_auc 0.610 below 0.75"
    driver.complete(ticket, {"TICKET_KEY": "MLC-4"})
    assert driver.ended_at(token) == "end_rejected"


def test_rejected_review_opens_rejection_ticket(driver):
    _, token = submit(driver)
    driver.run("get-model", token, model_found(RUN_TEST=False))
    driver.complete_user_task(driver.user_task(token)["id"], {"approved": False, "review_comment": "not now"})
    ticket = driver.fetch("create-ticket", token)
    assert (ticket["vars"]["TICKET_KIND"], ticket["vars"]["TICKET_REASON"]) == (
        "rejection", "The review rejected the model: not now")
    driver.complete(ticket, {"TICKET_KEY": "MLC-5"})
    assert driver.ended_at(token) == "end_rejected"


def test_rejected_jira_review_opens_rejection_ticket(driver):
    _, token = submit(driver)
    driver.run("get-model", token, model_found(RUN_TEST=False, JIRA=True))
    driver.run("create-ticket", token, {"TICKET_KEY": "MLC-6"})
    driver.ticket_updated("MLC-6", "Rejected", token)
    ticket = driver.fetch("create-ticket", token)
    assert ticket["vars"]["TICKET_KIND"] == "rejection"
    driver.complete(ticket, {"TICKET_KEY": "MLC-7"})
    assert driver.ended_at(token) == "end_rejected"


def test_no_runtime_opens_error_ticket(driver):
    _, token = submit(driver)
    driver.run("get-model", token, model_found(RUN_TEST=False))
    driver.complete_user_task(driver.user_task(token)["id"], {"approved": True})
    driver.fail("deploy", token, "MLC_NO_RUNTIME", "no runtime with stage=QA")
    ticket = driver.fetch("create-ticket", token)
    assert ticket["vars"]["TICKET_KIND"] == "error"
    assert ticket["vars"]["TICKET_REASON"] == "Deploy with test failed with MLC_NO_RUNTIME: no runtime with stage=QA"
    driver.complete(ticket, {"TICKET_KEY": "MLC-8"})
    assert driver.ended_at(token) == "end_failed"
    assert driver.variables(token)["MLC_ERROR_CODE"] == "MLC_NO_RUNTIME"


def test_model_not_found_opens_error_ticket(driver):
    _, token = submit(driver)
    driver.fail("get-model", token, "MLC_MODEL_NOT_FOUND", "no such model")
    driver.run("create-ticket", token, {"TICKET_KEY": "MLC-10"})
    assert driver.ended_at(token) == "end_failed"


NO_MATCH_DMN = """<?xml version="1.0" encoding="UTF-8"?>
<definitions xmlns="https://www.omg.org/spec/DMN/20191111/MODEL/" id="bpmn_test_no_match" name="no match"
             namespace="http://modelops-mlc/tests">
  <decision id="bpmn-test-no-match" name="never matches">
    <decisionTable id="table" hitPolicy="FIRST">
      <input id="in"><inputExpression id="in_expr" typeRef="string"><text>TASK_TYPE</text></inputExpression></input>
      <output id="passed" name="passed" typeRef="boolean" />
      <output id="reason" name="reason" typeRef="string" />
      <rule id="rule"><inputEntry id="e1"><text>"no such task type"</text></inputEntry>
        <outputEntry id="o1"><text>true</text></outputEntry><outputEntry id="o2"><text>"never"</text></outputEntry></rule>
    </decisionTable>
  </decision>
</definitions>
"""


def test_models_own_decision_without_a_matching_rule_fails_the_criteria(driver):
    r = driver.http.post("/deployment/create", data={"deployment-name": "bpmn-test-no-match", "deploy-changed-only": "true"},
                         files=[("dmn", ("no-match.dmn", NO_MATCH_DMN.encode(), "application/octet-stream"))])
    assert r.status_code == 200, r.text
    _, token = submit(driver)
    driver.run("get-model", token, model_found(DMN_KEY="bpmn-test-no-match"))
    driver.run("run-test", token, GOOD_METRICS)
    ticket = driver.fetch("create-ticket", token)
    assert ticket["vars"]["TICKET_REASON"] == "Test criteria not met: decision bpmn-test-no-match matched no rule"
    driver.complete(ticket)
    assert driver.ended_at(token) == "end_rejected"


def test_unknown_decision_is_an_incident_on_the_rule_task_not_a_worker_error(driver):
    _, token = submit(driver)
    driver.run("get-model", token, model_found(DMN_KEY="bpmn-test-no-such-decision"))
    driver.run("run-test", token, GOOD_METRICS)  # the worker's complete succeeds
    pid = driver.instance(token)
    deadline = time.monotonic() + 60  # the job executor retries the job before it opens the incident
    incidents = []
    while time.monotonic() < deadline and not incidents:
        incidents = driver.http.get("/incident", params={"processInstanceId": pid}).json()
        time.sleep(0.3)
    assert [i["activityId"] for i in incidents] == ["task_evaluate_criteria"]
    assert "bpmn-test-no-such-decision" in incidents[0]["incidentMessage"]
    assert driver.http.delete(f"/process-instance/{pid}").status_code == 204
