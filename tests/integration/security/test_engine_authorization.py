"""Camunda's authorization on a real engine started with MLC_ENGINE_AUTH=basic: each MLC action
belongs to one group. Deploying (mlc-deployers), throwing a signal (mlc-operators) and completing
a review (mlc-reviewers) are refused for everyone else with a one-line "not allowed" and change
nothing; a member of the group does them. The groups are made on start, and making them again
changes nothing."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import httpx
import pytest

from modelops_mlc.engine.authorization import GROUPS, ensure_groups
from tests.integration.security.conftest import SecureEngine

DATA = Path(__file__).resolve().parents[2] / "data"


@pytest.fixture
def review_process(tmp_path: Path) -> tuple[Path, str, str]:
    """tests/data/signal_start.bpmn under a key and signal of this test's own."""
    suffix = uuid.uuid4().hex[:8]
    key, signal = f"sec-review-{suffix}", f"mlc.sec-review-{suffix}"
    text = (DATA / "signal_start.bpmn").read_text()
    text = text.replace("test-signal-review", key).replace("mlc.test-review-requested", signal)
    path = tmp_path / f"{key}.bpmn"
    path.write_text(text)
    return path, key, signal


def refused(r, missing: str) -> None:
    assert r.returncode == 6, (r.returncode, r.stderr)
    lines = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "not allowed" in lines[0], r.stderr
    assert missing in lines[0], lines[0]
    assert "mlc engine users add" in r.stderr and "Traceback" not in r.stderr


def test_the_groups_are_made_on_start_and_again_changes_nothing(secure_engine: SecureEngine, admin) -> None:
    found = {g["id"] for g in admin.request("GET", "/group", params={"type": "mlc"})}
    assert found == set(GROUPS)
    assert ensure_groups(admin) == []
    deployers = admin.request("GET", "/authorization", params={"groupIdIn": "mlc-deployers", "resourceType": 9})
    assert [sorted(a["permissions"]) for a in deployers] == [["CREATE", "READ"]]


def test_reviewers_may_use_tasklist(secure_engine: SecureEngine) -> None:
    def may_open_tasklist(user: str) -> bool:
        r = httpx.get(f"{secure_engine.url}/authorization/check", auth=(user, f"pw-{user}"), timeout=30, params={
            "permissionName": "ACCESS", "resourceName": "application", "resourceType": 0, "resourceId": "tasklist"})
        assert r.status_code == 200, r.text
        return r.json()["authorized"]

    assert may_open_tasklist("bob") and not may_open_tasklist("otto")
    filters = httpx.get(f"{secure_engine.url}/filter", auth=("bob", "pw-bob"), timeout=30).json()
    assert "All tasks" in [f["name"] for f in filters]


def test_only_deployers_deploy(secure_engine: SecureEngine, admin, review_process) -> None:
    path, key, _ = review_process
    for user in ("eve", "otto"):
        refused(secure_engine.mlc("deploy", str(path), user=user), "'CREATE' permission on resource 'Deployment'")
    assert admin.process_definitions(key=key) == []
    r = secure_engine.mlc("deploy", str(path), "--json", user="dora")
    assert r.returncode == 0, r.stderr
    assert [d["key"] for d in json.loads(r.stdout)["process_definitions"]] == [key]


def test_only_operators_throw_signals(secure_engine: SecureEngine, admin, review_process) -> None:
    path, key, signal = review_process
    admin.deploy_processes([path])
    for user in ("eve", "bob"):
        r = secure_engine.mlc("signal", signal, "-m", "sec-model", user=user)
        refused(r, "'CREATE' permission on resource 'ProcessInstance'")
    assert admin.count_instances(process_key=key) == 0
    r = secure_engine.mlc("signal", signal, "-m", "sec-model", user="otto")
    assert r.returncode == 0, r.stderr
    assert admin.count_instances(process_key=key) == 1


def test_only_reviewers_complete_reviews(secure_engine: SecureEngine, admin, review_process) -> None:
    path, key, signal = review_process
    admin.deploy_processes([path])
    admin.signal(signal, {"MODEL_ID": "sec-model"})
    [instance] = admin.instances(process_key=key)
    [task] = admin.tasks(process_instance_id=instance.id)

    r = secure_engine.mlc("tasks", "complete", task.id, "--var", "approved=true", "--user", "otto", user="otto")
    refused(r, "'TASK_WORK' permission on resource")
    # a user in no MLC group does not even see the task
    r = secure_engine.mlc("tasks", "complete", task.id, "--var", "approved=true", "--user", "eve", user="eve")
    assert r.returncode != 0 and f"no open task {task.id}" in r.stderr and "Traceback" not in r.stderr
    # the REST API refuses the same: completing needs TASK_WORK
    denied = httpx.post(f"{secure_engine.url}/task/{task.id}/complete", json={}, auth=("otto", "pw-otto"), timeout=30)
    assert denied.status_code == 403 and "TASK_WORK" in denied.json()["message"]
    still = admin.request("GET", f"/task/{task.id}")
    assert still["assignee"] is None and admin.history_instance(instance.id).state == "ACTIVE"

    # signed in as bob, nobody completes it as someone else: the approver is who signed in
    r = secure_engine.mlc("tasks", "complete", task.id, "--var", "approved=true", "--user", "alice", user="bob")
    assert r.returncode == 2 and "signed in to the engine as bob" in r.stderr and "Traceback" not in r.stderr
    assert admin.request("GET", f"/task/{task.id}")["assignee"] is None

    r = secure_engine.mlc("tasks", "complete", task.id, "--var", "approved=true", user="bob")
    assert r.returncode == 0, r.stderr
    assert admin.history_instance(instance.id).state == "COMPLETED"
    [done] = admin.history("task", query={"processInstanceId": instance.id})
    assert done["assignee"] == "bob"


def test_wrong_password_is_refused_as_credentials(secure_engine: SecureEngine) -> None:
    r = secure_engine.mlc("processes", env={"MLC_ENGINE_USER": "mallory", "MLC_ENGINE_PASSWORD": "guess"})
    assert r.returncode == 6 and "refused the credentials (401)" in r.stderr


def test_a_reviewer_approves_as_themselves_whoever_the_task_is_claimed_for(
        secure_engine: SecureEngine, admin, review_process, tmp_path: Path) -> None:
    """The review listeners of the generated processes: with authentication on, the approver is
    the signed-in user, so claiming a task for someone else does not dodge separation of duties."""
    import xml.etree.ElementTree as ET

    path, key, signal = review_process
    ns = {"bpmn": "http://www.omg.org/spec/BPMN/20100524/MODEL", "camunda": "http://camunda.org/schema/1.0/bpmn"}
    review = ET.parse(DATA.parents[1] / "bpmn" / "deploy_with_test.bpmn").find(".//bpmn:userTask[@id='task_review']", ns)
    listeners = "".join(f'<camunda:taskListener expression="{el.get("expression").replace(chr(34), "&quot;")}" '
                        f'event="{el.get("event")}" />' for el in review.iterfind(".//camunda:taskListener", ns))
    text = path.read_text()
    start = text.index('<bpmn:userTask id="review"')
    end = text.index(">", start) + 1
    path.write_text(f"{text[:end]}<bpmn:extensionElements>{listeners}</bpmn:extensionElements>{text[end:]}")
    admin.deploy_processes([path])

    def review_task(**variables) -> tuple[str, str]:
        before = {i.id for i in admin.instances(process_key=key)}
        admin.signal(signal, {"MODEL_ID": "sec-model", "MODEL_VERSION": "1", **variables})
        [instance] = [i for i in admin.instances(process_key=key) if i.id not in before]
        [task] = admin.tasks(process_instance_id=instance.id)
        return instance.id, task.id

    def as_bob_for_carol(task_id: str) -> httpx.Response:
        bob = {"auth": ("bob", "pw-bob"), "timeout": 30}
        assert httpx.post(f"{secure_engine.url}/task/{task_id}/claim", json={"userId": "carol"}, **bob).status_code == 204
        return httpx.post(f"{secure_engine.url}/task/{task_id}/complete", json={}, **bob)

    instance_id, task_id = review_task()
    assert as_bob_for_carol(task_id).status_code == 204
    approver = admin.history("variable-instance", query={"processInstanceId": instance_id, "variableName": "APPROVED_BY"})
    assert [v["value"] for v in approver] == ["bob"]

    # bob submitted this one: claimed for carol or not, bob cannot approve it
    instance_id, task_id = review_task(SUBMITTED_BY="bob", SEPARATION_OF_DUTIES=True)
    refused = as_bob_for_carol(task_id)
    assert refused.status_code == 500 and "Separation of duties: bob submitted sec-model/1" in refused.json()["message"]
    assert admin.history_instance(instance_id).state == "ACTIVE"
