"""What bpmn/retrain.bpmn and mlc-retrain-decision.dmn promise in docs/process-contract.md, read
statically; and `mlc retrain`'s answers to bad input (one line, non-zero exit)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from modelops_mlc.errors import UsageError

ROOT = Path(__file__).resolve().parents[3]
NS = {"bpmn": "http://www.omg.org/spec/BPMN/20100524/MODEL", "camunda": "http://camunda.org/schema/1.0/bpmn"}
CAMUNDA = "{http://camunda.org/schema/1.0/bpmn}"
DMN = "{https://www.omg.org/spec/DMN/20191111/MODEL/}"


def process() -> ET.Element:
    return ET.parse(ROOT / "bpmn" / "retrain.bpmn").getroot().find("bpmn:process", NS)


def node(element_id: str) -> ET.Element:
    found = process().find(f".//*[@id='{element_id}']")
    assert found is not None, element_id
    return found


def test_the_canary_is_called_by_key_with_the_challenger_and_its_outcome_comes_back() -> None:
    call = node("call_canary")
    assert call.tag.endswith("callActivity") and call.get("calledElement") == "mlc-canary-rollout"
    ins = {i.get("source") for i in call.findall("bpmn:extensionElements/camunda:in", NS) if i.get("source")}
    outs = {o.get("source") for o in call.findall("bpmn:extensionElements/camunda:out", NS)}
    assert {"MODEL_ID", "MODEL_VERSION", "CANARY_WEIGHT", "CANARY_WINDOW"} <= ins
    assert outs == {"CANARY_OUTCOME", "CANARY_FIGURES", "DEPLOYMENT_ID"}


def test_approval_is_a_reviewers_task_or_a_ticket() -> None:
    task = node("task_review")
    assert task.get(f"{CAMUNDA}candidateGroups") == "mlc-reviewers"
    fields = {f.get("id"): f.get("type") for f in task.findall(".//camunda:formField", NS)}
    assert fields == {"approved": "boolean", "review_comment": "string"}
    catch = node("catch_review_ticket_updated")
    assert catch.find("bpmn:messageEventDefinition", NS) is not None


def test_the_job_is_polled_by_a_timer_loop_and_the_decision_is_the_engines() -> None:
    timer = node("timer_job").find(".//bpmn:timeDuration", NS).text
    assert "TRAIN_POLL_INTERVAL" in timer and "PT10S" in timer
    loop = [f for f in process().findall("bpmn:sequenceFlow", NS) if f.get("sourceRef") == "gw_job_done"]
    assert {f.get("targetRef") for f in loop} == {"gw_poll_join", "task_compare"}
    rule = node("task_decide")
    assert rule.get(f"{CAMUNDA}decisionRef") == "${RETRAIN_DMN_KEY}"
    assert rule.get(f"{CAMUNDA}asyncBefore") == "true"


def test_every_path_after_the_claim_releases_it() -> None:
    flows = process().findall(".//bpmn:sequenceFlow", NS)
    into = {f.get("targetRef"): f.get("sourceRef") for f in flows}
    ends = [e.get("id") for e in process().iter("{http://www.omg.org/spec/BPMN/20100524/MODEL}endEvent")]
    for end in ends:
        source = into[end]
        if end == "end_refused":
            assert source == "task_notify_refused"
        elif end == "end_failed":
            assert source == "task_release_failed"
        else:
            assert source == "gw_outcome" and into["gw_outcome"] == "task_release", end


def test_the_decision_table() -> None:
    root = ET.parse(ROOT / "bpmn" / "mlc-retrain-decision.dmn").getroot()
    (decision,) = root.findall(f"{DMN}decision")
    assert decision.get("id") == "mlc-retrain-decision"
    table = decision.find(f"{DMN}decisionTable")
    assert table.get("hitPolicy") == "FIRST"
    assert [o.get("name") for o in table.findall(f"{DMN}output")] == ["deploy", "reason"]
    assert [i.find(f"{DMN}inputExpression/{DMN}text").text for i in table.findall(f"{DMN}input")] == [
        "COMPARE_GUARD_LOSSES", "COMPARE_IMPROVEMENT", "IMPROVEMENT_MARGIN"]
    assert root.find("{https://www.omg.org/spec/DMN/20191111/DMNDI/}DMNDI") is not None


def test_mlc_retrain_refuses_bad_input_in_one_line(run_mlc, registry, tmp_path) -> None:
    r = run_mlc("retrain", "no-such-model")
    assert r.returncode == 4 and r.stderr.strip().startswith("error: model 'no-such-model' not found")
    assert "Traceback" not in r.stderr
    r = run_mlc("retrain", "no-such-model", "--data", str(tmp_path / "missing.csv"))  # checked first
    assert r.returncode == 2 and r.stderr.count("\n") <= 2 and "training data not found" in r.stderr


def test_a_negative_margin_is_refused_before_anything_is_thrown(settings) -> None:
    from modelops_mlc.retraining.trigger import request_retrain

    with pytest.raises(UsageError, match="must be 0 or more"):
        request_retrain(settings, "any", improvement_margin=-0.5)  # neither registry nor engine asked
