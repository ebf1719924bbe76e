"""Bad input to the engine by hand, on the real engine: malformed BPMN and DMN to `mlc deploy`,
and signals whose variables have the wrong type. Each gets one clear error line and leaves the
engine as it was (no deployment, no instance), or, where only a process can tell, the process
takes its own failure path and no instance is left waiting.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import httpx
import pytest

from modelops_mlc.errors import EngineError
from tests.integration.bpmn.conftest import driver  # noqa: F401  (the fixture: bpmn/ deployed)
from tests.integration.workers.wt_support import WorkerProcess

DEPLOYMENT = "mlc-bad-input-tests"
GOOD_BPMN = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:camunda="http://camunda.org/schema/1.0/bpmn"
    id="defs-good" targetNamespace="http://modelops-mlc/tests">
  <bpmn:process id="test-bad-input-good" isExecutable="true" camunda:historyTimeToLive="P1D">
    <bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="end" />
    <bpmn:endEvent id="end"><bpmn:incoming>f1</bpmn:incoming></bpmn:endEvent>
  </bpmn:process>
</bpmn:definitions>
"""
DUE_BPMN = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:camunda="http://camunda.org/schema/1.0/bpmn"
    xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" id="defs-due" targetNamespace="http://modelops-mlc/tests">
  <bpmn:process id="test-bad-input-due" isExecutable="true" camunda:historyTimeToLive="P1D">
    <bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing><bpmn:signalEventDefinition signalRef="sig" /></bpmn:startEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="due" />
    <bpmn:intermediateCatchEvent id="due"><bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing>
      <bpmn:timerEventDefinition><bpmn:timeDate xsi:type="bpmn:tFormalExpression">${DUE_DATE}</bpmn:timeDate></bpmn:timerEventDefinition>
    </bpmn:intermediateCatchEvent>
    <bpmn:sequenceFlow id="f2" sourceRef="due" targetRef="end" />
    <bpmn:endEvent id="end"><bpmn:incoming>f2</bpmn:incoming></bpmn:endEvent>
  </bpmn:process>
  <bpmn:signal id="sig" name="mlc.test-bad-input-due" />
</bpmn:definitions>
"""


@pytest.fixture
def http(engine):
    with httpx.Client(base_url=engine.url, timeout=30) as client:
        yield client
        for dep in client.get("/deployment", params={"name": DEPLOYMENT}).json():
            client.delete(f"/deployment/{dep['id']}", params={"cascade": "true"})


def _state(http: httpx.Client) -> tuple[int, int, int]:
    """Deployments, process definitions and decision definitions the engine holds."""
    return tuple(http.get(f"/{what}/count").json()["count"]  # type: ignore[return-value]
                 for what in ("deployment", "process-definition", "decision-definition"))


def _one_error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert "Traceback" not in stderr and len([l for l in lines if l.startswith("error:")]) == 1, stderr
    assert all(l.startswith(("error:", "hint:")) for l in lines), stderr
    return next(l for l in lines if l.startswith("error:"))


def _bad_feel_dmn() -> str:
    dmn = (Path(__file__).resolve().parents[3] / "bpmn" / "mlc-test-criteria.dmn").read_text()
    dmn = dmn.replace("mlc-test-criteria", "test-bad-input-feel")
    return dmn.replace('<text>"HIGH"</text>', '<text>&gt;&gt; "HIGH" ((</text>', 1)


@pytest.mark.parametrize("name, content, reason", [
    ("notxml.bpmn", "hello, this is not XML", "Content is not allowed in prolog"),
    ("notbpmn.bpmn", '<?xml version="1.0"?><model><step/></model>', "Cannot find the declaration of element 'model'"),
    ("dangling.bpmn", GOOD_BPMN.replace('targetRef="end"', 'targetRef="nowhere"'),
     "Invalid destination 'nowhere' of sequence flow 'f1'"),
    ("notdmn.dmn", '<?xml version="1.0"?><definitions xmlns="https://www.omg.org/spec/DMN/20191111/MODEL/"><decision/>'
                   "</definitions>", "notdmn.dmn"),
])
def test_malformed_process_files_are_refused_and_nothing_is_deployed(run_mlc, http, tmp_path, name, content, reason):
    good = tmp_path / "good.bpmn"
    good.write_text(GOOD_BPMN)
    bad = tmp_path / name
    bad.write_text(content)
    before = _state(http)
    r = run_mlc("deploy", "--name", DEPLOYMENT, good, bad)
    assert r.returncode == 3, r.stderr
    line = _one_error_line(r.stderr)
    assert name in line and reason in line, line
    assert _state(http) == before  # the good file beside it was not deployed either
    assert http.get("/process-definition/count", params={"key": "test-bad-input-good"}).json()["count"] == 0


def test_a_dmn_with_a_bad_feel_expression_fails_where_it_is_evaluated(run_mlc, http, tmp_path):
    """Camunda 7 parses FEEL when a decision is evaluated, not when it is deployed: the deploy
    succeeds, and the evaluation (a business rule task, or the REST call) fails with one line that
    names the decision (the engine's REST answer does not quote the expression)."""
    from modelops_mlc.engine import EngineClient
    from modelops_mlc.config import Settings

    dmn = tmp_path / "badfeel.dmn"
    dmn.write_text(_bad_feel_dmn())
    r = run_mlc("deploy", "--name", DEPLOYMENT, dmn)
    assert r.returncode == 0, r.stderr
    with EngineClient(Settings()) as client, pytest.raises(EngineError) as info:
        client.evaluate_decision("test-bad-input-feel", {"RISK_TIER": "HIGH", "TASK_TYPE": "classification",
                                                         "roc_auc": 0.9, "f1": 0.9, "r2": None, "rmse": None})
    message = info.value.message
    assert "Cannot evaluate decision test-bad-input-feel" in message and "\n" not in message.strip(), message


def test_a_signal_with_a_date_that_is_not_a_date_starts_nothing(run_mlc, http, tmp_path):
    due = tmp_path / "due.bpmn"
    due.write_text(DUE_BPMN)
    assert run_mlc("deploy", "--name", DEPLOYMENT, due).returncode == 0
    for value, reason in [("not-a-date", "Invalid format"), ("2024-13-45", "monthOfYear"), ("5", "valid duration/time")]:
        r = run_mlc("signal", "test-bad-input-due", "--var", f"DUE_DATE={value}")
        assert r.returncode == 3, r.stderr
        line = _one_error_line(r.stderr)
        assert "signal mlc.test-bad-input-due" in line and reason in line, line
    count = http.get("/history/process-instance/count", params={"processDefinitionKey": "test-bad-input-due"}).json()
    assert count["count"] == 0
    good = run_mlc("signal", "test-bad-input-due", "--var", 'DUE_DATE="2099-01-01T00:00:00"')
    assert good.returncode == 0, good.stderr  # the same signal with a date starts one instance
    assert http.get("/process-instance/count", params={"processDefinitionKey": "test-bad-input-due"}).json()["count"] == 1


def test_a_json_variable_that_is_not_json_is_refused_before_anything_starts(run_mlc, driver, http):  # noqa: F811
    token = uuid.uuid4().hex
    for raw in ['{"threshold": 0.8', "[1, 2", "{not json}"]:
        r = run_mlc("signal", "run-back-test", "--model-id", "m", "--var", f"RUN_TOKEN={token}",
                    "--var", f"OPTIONS={raw}")
        assert r.returncode == 2, r.stderr
        assert "--var OPTIONS" in _one_error_line(r.stderr) and "is not valid JSON" in r.stderr
    found = http.post("/history/process-instance/count",
                      json={"variables": [{"name": "RUN_TOKEN", "operator": "eq", "value": token}]}).json()
    assert found["count"] == 0


def test_a_model_id_that_is_a_number_ends_in_the_back_tests_failure_path(run_mlc, driver, http, mlc_env,  # noqa: F811
                                                                         mlc_home):
    """MODEL_ID=12345 is typed as a number by --var; the worker looks up model "12345", finds none
    and the process takes its error end (a notification saying why), leaving nothing waiting."""
    token = uuid.uuid4().hex
    worker = WorkerProcess(mlc_env, mlc_home, ["--topic", "get-model", "--topic", "notify", "--process-key",
                                               "mlc-run-back-test"], mlc_home / "worker.log").wait_ready()
    try:
        r = run_mlc("signal", "run-back-test", "--var", "MODEL_ID=12345", "--var", f"RUN_TOKEN={token}")
        assert r.returncode == 0, r.stderr
        query = {"variables": [{"name": "RUN_TOKEN", "operator": "eq", "value": token}]}
        deadline = time.monotonic() + 90
        ended: list[dict] = []
        while time.monotonic() < deadline:
            ended = http.post("/history/process-instance", json={**query, "finished": True}).json()
            if ended:
                break
            time.sleep(0.5)
        assert len(ended) == 1, worker.output()[-3000:]
        activities = http.get("/history/activity-instance", params={"processInstanceId": ended[0]["id"]}).json()
        assert "end_error" in {a["activityId"] for a in activities}
        assert http.get("/incident/count", params={"processInstanceId": ended[0]["id"]}).json()["count"] == 0
    finally:
        worker.terminate()
    alerts = run_mlc("alerts", "--model-id", "12345", "--json")
    assert alerts.returncode == 0 and "MLC_MODEL_NOT_FOUND" in alerts.stdout, alerts.stdout + alerts.stderr
