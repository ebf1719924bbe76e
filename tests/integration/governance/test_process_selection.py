"""mlc-productionize on the real engine, driven by hand: the decision mlc-process-selection sends
each snapshot down the process it names, the scan and the production gate reject with a ticket,
and the review task records the approver and refuses the submitter (separation of duties)."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest

SIGNAL = "mlc.model-submitted"
GOOD = {"TASK_TYPE": "classification", "roc_auc": 0.91, "f1": 0.84, "TEST_METRICS": {"f1": 0.84}}
CLEAN = {"SCAN_PASSED": True, "SCAN_FINDINGS": [], "SCAN_SUMMARY": "no findings in 1 files scanned", "SCAN_RUN_ID": "r"}
WAIT = 20.0


def tags(**values: Any) -> dict[str, Any]:
    """What get-model writes back for a version with these governance variables."""
    found = {"TRAIN": False, "RUN_TEST": True, "JIRA": False, "SERVICENOW": False, "DMN_KEY": "mlc-test-criteria",
             "HAS_TEST_DATA": True, "BUSINESS_UNIT": None, "RISK_TIER": None, "FRAMEWORK": "sklearn",
             "GOVERNANCE_LEVEL": None, "HAS_MODEL_CARD": False, "SEPARATION_OF_DUTIES": False}
    found.update(values)
    return found


def submit(driver, submitter: str = "alice") -> tuple[str, str]:
    """Fire the snapshot signal; the token names the router instance for the driver's calls."""
    model = f"gov-{uuid.uuid4().hex[:8]}"
    token = driver.signal(SIGNAL, {"MODEL_ID": model, "MODEL_VERSION": 2, "SUBMITTED_BY": submitter})
    r = driver.http.post("/history/process-instance", json={
        "processDefinitionKey": "mlc-productionize",
        "variables": [{"name": "RUN_TOKEN", "operator": "eq", "value": token}]})
    [router] = r.json()
    driver._instances[token] = router["id"]
    return model, token


def child(driver, token: str) -> dict[str, Any]:
    """The process instance the router's call activity started."""
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        found = driver.http.get("/history/process-instance",
                                params={"superProcessInstanceId": driver.instance(token)}).json()
        if found:
            return found[0]
        time.sleep(0.2)
    driver.fail_with_state(token, "the call activity started nothing")
    raise AssertionError


def ended_at(driver, instance_id: str) -> str:
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        if driver.http.get(f"/history/process-instance/{instance_id}").json()["state"] != "ACTIVE":
            break
        time.sleep(0.2)
    ends = driver.http.get("/history/activity-instance", params={
        "processInstanceId": instance_id, "activityType": "noneEndEvent"}).json()
    return ends[0]["activityId"] if ends else "?"


def variables_of(driver, instance_id: str) -> dict[str, Any]:
    from modelops_mlc.engine.variables import from_engine

    r = driver.http.get("/history/variable-instance", params={"processInstanceId": instance_id,
                                                              "deserializeValues": "false"})
    return {v["name"]: from_engine({"v": v})["v"] for v in r.json()}


def review_task(driver, instance_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        tasks = driver.http.get("/task", params={"processInstanceId": instance_id}).json()
        if tasks:
            return tasks[0]
        time.sleep(0.2)
    raise AssertionError(f"no user task in {instance_id}")


def complete_as(driver, task_id: str, user: str | None, variables: dict[str, Any]):
    from modelops_mlc.engine.variables import to_engine

    driver.http.post(f"/task/{task_id}/unclaim")
    if user:
        assert driver.http.post(f"/task/{task_id}/claim", json={"userId": user}).status_code == 204
    return driver.http.post(f"/task/{task_id}/complete", json={"variables": to_engine(variables)})


def selection_history(driver, token: str) -> list[dict[str, Any]]:
    r = driver.http.get("/history/decision-instance", params={
        "processInstanceId": driver.instance(token), "decisionDefinitionKey": "mlc-process-selection",
        "includeOutputs": "true", "includeInputs": "true"})
    return r.json()


@pytest.mark.parametrize(("governance", "process", "rule"), [
    ({}, "mlc-deploy-with-test", "rule_default"),
    ({"RISK_TIER": "LOW", "BUSINESS_UNIT": "internal"}, "mlc-productionize-minimal", "rule_low_risk_internal"),
    ({"RISK_TIER": "LOW", "GOVERNANCE_LEVEL": "experimental"}, "mlc-productionize-minimal", "rule_low_risk_experimental"),
    ({"RISK_TIER": "LOW", "BUSINESS_UNIT": "internal", "GOVERNANCE_LEVEL": "production", "HAS_MODEL_CARD": True},
     "mlc-deploy-with-test", "rule_production"),
], ids=["default", "low-risk-internal", "low-risk-experimental", "production"])
def test_each_rule_sends_the_snapshot_down_the_process_it_names(driver, governance, process, rule):
    model, token = submit(driver)
    driver.run("get-model", token, {"MODEL_ID": model, "MODEL_VERSION": 2, **tags(**governance)})
    assert driver.business_key(token) == f"{model}:2"
    scan = driver.run("scan", token, CLEAN)
    assert scan["vars"]["MODEL_ID"] == model

    called = child(driver, token)
    assert called["processDefinitionKey"] == process
    assert called["businessKey"] == f"{model}:2"
    router = driver.variables(token)
    assert router["PRODUCTIONIZE_PROCESS"] == process
    assert router["PRODUCTIONIZE_RULE"].startswith(rule + ":")
    assert "DECISION_RESULT" not in router
    [decision] = selection_history(driver, token)  # the engine's own record of the choice
    assert [o["ruleId"] for o in decision["outputs"]] == [rule, rule]
    assert {o["variableName"]: o["value"] for o in decision["outputs"]}["process"] == process

    # the called process runs with the router's variables: drive it to its end
    driver.run("get-model", token, {"MODEL_ID": model, "MODEL_VERSION": 2, **tags(**governance)})
    driver.run("run-test", token, GOOD)
    if process == "mlc-productionize-minimal":
        driver.run("deploy", token, {"DEPLOY_MODE": "online"})
        notify = driver.run("notify", token)
        assert notify["vars"]["NOTIFY_MESSAGE"] == f"Model {model} version 2 deployed (online) without review"
        assert ended_at(driver, called["id"]) == "end_deployed"
        activities = [a["activityId"] for a in driver.http.get(
            "/history/activity-instance", params={"processInstanceId": called["id"]}).json()]
        assert "task_review" not in activities
    else:
        task = review_task(driver, called["id"])
        assert task["taskDefinitionKey"] == "task_review"
        assert complete_as(driver, task["id"], "carol", {"approved": False}).status_code == 204
        assert variables_of(driver, called["id"])["APPROVED_BY"] == "carol"
        driver.run("create-ticket", token, {"TICKET_KEY": "MLC-1"})
        assert ended_at(driver, called["id"]) == "end_rejected"
    assert driver.ended_at(token) == "end_productionized"


def test_scan_findings_reject_with_a_ticket_that_lists_them(driver):
    model, token = submit(driver)
    driver.run("get-model", token, {"MODEL_ID": model, "MODEL_VERSION": 2, **tags()})
    summary = "unsafe-pickle in model.pkl: imports posix.system"
    driver.run("scan", token, {"SCAN_PASSED": False, "SCAN_SUMMARY": summary,
                               "SCAN_FINDINGS": [{"kind": "unsafe-pickle", "file": "model.pkl", "detail": "x"}]})
    ticket = driver.fetch("create-ticket", token)
    assert ticket["vars"]["TICKET_KIND"] == "rejection"
    assert ticket["vars"]["TICKET_REASON"] == f"Security scan found problems: {summary}"
    driver.complete(ticket, {"TICKET_KEY": "MLC-2"})
    assert driver.ended_at(token) == "end_rejected"
    assert not driver.http.get("/history/process-instance",
                               params={"superProcessInstanceId": driver.instance(token)}).json()


@pytest.mark.parametrize(("governance", "reason"), [
    ({"GOVERNANCE_LEVEL": "production"}, "governance_level production needs a model card"),
])
def test_production_without_a_model_card_is_not_deployed(driver, governance, reason):
    model, token = submit(driver)
    driver.run("get-model", token, {"MODEL_ID": model, "MODEL_VERSION": 2, **tags(**governance)})
    driver.run("scan", token, CLEAN)
    ticket = driver.fetch("create-ticket", token)
    assert ticket["vars"]["TICKET_KIND"] == "rejection"
    assert ticket["vars"]["TICKET_REASON"].startswith(reason)
    driver.complete(ticket, {"TICKET_KEY": "MLC-3"})
    assert driver.ended_at(token) == "end_rejected"


def test_separation_of_duties_refuses_the_submitter_and_changes_nothing(driver):
    governance = {"GOVERNANCE_LEVEL": "production", "HAS_MODEL_CARD": True, "SEPARATION_OF_DUTIES": True}
    model, token = submit(driver, submitter="alice")
    driver.run("get-model", token, {"MODEL_ID": model, "MODEL_VERSION": 2, **tags(**governance)})
    driver.run("scan", token, CLEAN)
    called = child(driver, token)
    driver.run("get-model", token, {"MODEL_ID": model, "MODEL_VERSION": 2, **tags(**governance, RUN_TEST=False)})
    task = review_task(driver, called["id"])

    refused = complete_as(driver, task["id"], "Alice", {"approved": True})
    assert refused.status_code == 500
    assert f"Separation of duties: Alice submitted {model}/2 and cannot approve it" in refused.json()["message"]
    unknown = complete_as(driver, task["id"], None, {"approved": True})
    assert "Separation of duties: the approver of" in unknown.json()["message"]
    assert review_task(driver, called["id"])["id"] == task["id"]  # still open
    assert {"approved", "APPROVED_BY"}.isdisjoint(variables_of(driver, called["id"]))

    assert complete_as(driver, task["id"], "bob", {"approved": True}).status_code == 204
    assert variables_of(driver, called["id"])["APPROVED_BY"] == "bob"
    driver.run("deploy", token, {"DEPLOY_MODE": "online"})
    driver.run("notify", token)
    assert ended_at(driver, called["id"]) == "end_deployed"


def test_servicenow_tag_reviews_by_ticket(driver):
    model, token = submit(driver)
    driver.run("get-model", token, {"MODEL_ID": model, "MODEL_VERSION": 2, **tags()})
    driver.run("scan", token, CLEAN)
    child(driver, token)
    driver.run("get-model", token, {"MODEL_ID": model, "MODEL_VERSION": 2, **tags(RUN_TEST=False, SERVICENOW=True)})
    ticket = driver.fetch("create-ticket", token)
    assert ticket["vars"]["TICKET_KIND"] == "review" and ticket["vars"]["SERVICENOW"] is True
    driver.complete(ticket, {"TICKET_KEY": "INC0010001"})
    assert driver.http.delete(f"/process-instance/{driver.instance(token)}").status_code == 204  # no one answers it


CUSTOM_PROCESS = """<?xml version="1.0" encoding="UTF-8"?>
<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:camunda="http://camunda.org/schema/1.0/bpmn"
             id="defs_{key}" targetNamespace="http://example.com/credit">
  <process id="{key}" name="Credit path" isExecutable="true" camunda:historyTimeToLive="P1D">
    <startEvent id="start" />
    <sequenceFlow id="f1" sourceRef="start" targetRef="end_credit" />
    <endEvent id="end_credit" />
  </process>
</definitions>
"""


def test_a_process_of_your_own_joins_the_decision_without_python(driver, run_mlc, tmp_path):
    """bpmn/README.md's recipe, followed with files and `mlc deploy` only: a process of one's own, a row
    added to mlc-process-selection above the catch-all, and the next snapshot of such a model goes there."""
    from pathlib import Path

    key = f"my-credit-path-{uuid.uuid4().hex[:6]}"
    unit = f"credit-{uuid.uuid4().hex[:6]}"  # only this test's model matches the new row
    (tmp_path / "my_process.bpmn").write_text(CUSTOM_PROCESS.format(key=key))
    original = (Path(__file__).resolve().parents[3] / "bpmn" / "mlc-process-selection.dmn").read_text()
    row = f"""      <rule id="rule_credit">
        <inputEntry id="rule_credit_business_unit"><text>"{unit}"</text></inputEntry>
        <inputEntry id="rule_credit_risk_tier"><text>-</text></inputEntry>
        <inputEntry id="rule_credit_framework"><text>"xgboost"</text></inputEntry>
        <inputEntry id="rule_credit_governance_level"><text>-</text></inputEntry>
        <outputEntry id="rule_credit_process"><text>"{key}"</text></outputEntry>
        <outputEntry id="rule_credit_rule"><text>"rule_credit: credit models take the credit path"</text></outputEntry>
      </rule>
"""
    assert original.count('      <rule id="rule_default">') == 1
    edited = tmp_path / "mlc-process-selection.dmn"  # the file's own name, as `mlc deploy bpmn/` knows it
    edited.write_text(original.replace('      <rule id="rule_default">', row + '      <rule id="rule_default">'))
    try:
        for path in (tmp_path / "my_process.bpmn", edited):
            deployed = run_mlc("deploy", path)
            assert deployed.returncode == 0, deployed.stderr

        model, token = submit(driver)
        driver.run("get-model", token, {"MODEL_ID": model, "MODEL_VERSION": 2,
                                        **tags(BUSINESS_UNIT=unit, FRAMEWORK="xgboost")})
        driver.run("scan", token, CLEAN)
        called = child(driver, token)
        assert called["processDefinitionKey"] == key
        assert ended_at(driver, called["id"]) == "end_credit"
        assert driver.variables(token)["PRODUCTIONIZE_RULE"] == "rule_credit: credit models take the credit path"
        assert driver.ended_at(token) == "end_productionized"
    finally:  # the shipped decision is the latest again, whatever deployed the edited one
        r = driver.http.post("/deployment/create", data={"deployment-name": "mlc-bpmn-tests-restore"},
                             files=[("mlc-process-selection.dmn",
                                     ("mlc-process-selection.dmn", original.encode(), "application/octet-stream"))])
        assert r.status_code == 200, r.text
