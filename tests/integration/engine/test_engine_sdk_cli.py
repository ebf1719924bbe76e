"""The engine SDK and the process commands of `mlc` against a real engine."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import httpx
import pytest

from modelops_mlc.engine import EngineClient
from modelops_mlc.errors import EngineError, NotFoundError

DATA = Path(__file__).resolve().parents[2] / "data"


@pytest.fixture
def client(settings) -> EngineClient:
    with EngineClient(settings) as c:
        yield c


def test_deploy_signal_and_see_instance_with_variables(run_mlc, client: EngineClient) -> None:
    r = run_mlc("deploy", DATA / "signal_start.bpmn", "--force", "--json")
    assert r.returncode == 0, r.stderr
    deployed = json.loads(r.stdout)
    assert [d["key"] for d in deployed["process_definitions"]] == ["test-signal-review"]

    # unchanged resources are not deployed again
    again = json.loads(run_mlc("deploy", DATA / "signal_start.bpmn", "--json").stdout)
    assert again["created"] is False

    model = f"fraud-{uuid.uuid4().hex[:8]}"
    r = run_mlc("signal", "test-review-requested", "--model-id", model, "--var", "threshold=0.8", "--var", "note=hello")
    assert r.returncode == 0, r.stderr
    assert "mlc.test-review-requested" in r.stderr

    r = run_mlc("instances", "--model-id", model, "--json")
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)
    assert len(rows) == 1
    assert rows[0]["process_key"] == "test-signal-review"
    assert rows[0]["state"] == "ACTIVE"
    assert rows[0]["variables"] == {"MODEL_ID": model, "threshold": 0.8, "note": "hello"}
    assert client.count_instances(model_id=model, active_only=True) == 1

    r = run_mlc("processes", "--json")
    assert "test-signal-review" in {d["key"] for d in json.loads(r.stdout)}


def test_user_task_round_trip(run_mlc, client: EngineClient) -> None:
    client.deploy_processes([DATA / "signal_start.bpmn"])
    model = f"churn-{uuid.uuid4().hex[:8]}"
    client.signal("mlc.test-review-requested", {"MODEL_ID": model})
    [inst] = client.instances(model_id=model)

    r = run_mlc("tasks", "--instance", inst.id, "--json")
    [task] = json.loads(r.stdout)
    assert task["name"] == "Review model"

    r = run_mlc("tasks", "complete", task["id"], "--var", "approved=true", "--var", "review_comment=looks good",
                "--user", "alice")
    assert r.returncode == 0, r.stderr
    assert client.history_instance(inst.id).state == "COMPLETED"
    assert client.variables(inst.id)["approved"] is True
    review = [a for a in client.history_activities(inst.id) if a.activity_id == "review"]
    assert review and review[0].assignee == "alice"
    assert json.loads(run_mlc("instances", "--model-id", model, "--active", "--json").stdout) == []

    r = run_mlc("tasks", "complete", task["id"])
    assert r.returncode != 0
    assert "no open task" in r.stderr and "Traceback" not in r.stderr


def test_dmn_deploys_and_evaluates(client: EngineClient) -> None:
    result = client.deploy_processes([DATA / "approve.dmn"], changed_only=False)
    assert [d.key for d in result.decision_definitions] == ["test-approve"]
    assert client.evaluate_decision("test-approve", {"auc": 0.61}) == [{"passed": False, "reason": "auc below 0.75"}]
    assert client.evaluate_decision("test-approve", {"auc": 0.93}) == [{"passed": True, "reason": "ok"}]


def test_malformed_bpmn_is_refused_with_the_engines_reason(run_mlc) -> None:
    r = run_mlc("deploy", DATA / "broken.bpmn")
    assert r.returncode != 0
    assert "Traceback" not in r.stderr
    # the engine's own parser message names the dangling reference
    assert "does_not_exist" in r.stderr
    assert len([l for l in r.stderr.splitlines() if l.strip()]) <= 3


def test_bad_input_gives_one_line_errors(run_mlc, tmp_path: Path) -> None:
    r = run_mlc("deploy", tmp_path / "missing.bpmn")
    assert r.returncode == 2 and "no such file" in r.stderr and "Traceback" not in r.stderr
    txt = tmp_path / "notes.txt"
    txt.write_text("hi")
    r = run_mlc("deploy", txt)
    assert r.returncode == 2 and "not a BPMN" in r.stderr
    r = run_mlc("signal", "x", "--var", "novalue")
    assert r.returncode == 2 and "key=value" in r.stderr
    r = run_mlc("incidents", "--retry", "no-such-incident")
    assert r.returncode == 4 and "no incident" in r.stderr


def test_unreachable_engine_is_one_line(run_mlc) -> None:
    r = run_mlc("processes", env={"MLC_ENGINE_URL": "http://127.0.0.1:9/engine-rest"})
    assert r.returncode == 5
    assert "cannot reach the engine" in r.stderr and "Traceback" not in r.stderr


def test_message_correlation_and_errors(client: EngineClient) -> None:
    with pytest.raises(EngineError) as info:
        client.correlate_message("mlc.no-such-message", correlation_keys={"TICKET_KEY": "X-1"})
    assert "No process definition or execution matches" in info.value.message
    with pytest.raises(NotFoundError):
        client.history_instance("no-such-instance")


def test_cockpit_answers(engine) -> None:
    if engine.kind != "local":
        pytest.skip("webapps are checked on the local jar")
    base = engine.url.rsplit("/engine-rest", 1)[0]
    r = httpx.get(f"{base}/camunda/app/cockpit/", follow_redirects=True, timeout=10)
    assert r.status_code == 200 and "cockpit" in r.text.lower()


def test_start_by_key_with_business_key(client: EngineClient) -> None:
    client.deploy_processes([DATA / "signal_start.bpmn"])
    model = f"start-{uuid.uuid4().hex[:8]}"
    inst = client.start("test-signal-review", {"MODEL_ID": model}, business_key=f"{model}:1")
    assert inst.state == "ACTIVE" and inst.business_key == f"{model}:1" and inst.process_key == "test-signal-review"
    assert client.instances(business_key=f"{model}:1")[0].id == inst.id
    with pytest.raises(EngineError):
        client.start("no-such-process")
