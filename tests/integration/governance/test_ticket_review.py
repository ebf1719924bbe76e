"""Reviews by ticket on the real engine: the ticket system's resolver lands in APPROVED_BY, and
under separation of duties an approval by the submitter is refused (the ticket says why, the
process keeps waiting) until another reviewer resolves it. Jira and ServiceNow are the local
stand-ins of tests/unit/tickets; the local system is driven through `mlc ticket move`."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from modelops_mlc.config import Settings
from modelops_mlc.engine import EngineClient
from modelops_mlc.tickets import TicketContext, get_ticket_system
from modelops_mlc.tickets.watcher import TicketWatcher
from tests.support.cleanup import delete_unfinished
from tests.unit.tickets.fake_saas import FakeJira, FakeServiceNow
from workers.create_ticket import create_ticket
from workers.handlers import TaskContext

KEY = "mlc-deploy-with-test"
WAIT_BPMN = Path(__file__).resolve().parents[1] / "tickets" / "ticket-wait.bpmn"
BOT, SECRET = "mlc.bot", "ticket-review-secret-4d2a"


@pytest.fixture
def systems(mlc_env, monkeypatch: pytest.MonkeyPatch):
    jira = FakeJira(user=BOT, secret=SECRET).start()
    servicenow = FakeServiceNow(user=BOT, secret=SECRET).start()
    for name, value in {"MLC_JIRA_URL": jira.url, "MLC_JIRA_PROJECT": "OPS", "MLC_JIRA_USER": BOT,
                        "MLC_JIRA_TOKEN": SECRET, "MLC_SERVICENOW_URL": servicenow.url,
                        "MLC_SERVICENOW_USER": BOT, "MLC_SERVICENOW_PASSWORD": SECRET}.items():
        monkeypatch.setenv(name, value)
    yield jira, servicenow
    jira.stop()
    servicenow.stop()


@pytest.fixture
def watcher(systems):
    with EngineClient(Settings()) as client:
        w = TicketWatcher(Settings(), client, interval=1)
        yield w
        w.close()


@pytest.fixture
def started(driver, mlc_env):
    """Run tokens of the instances a test starts: those still waiting at its end are deleted, or the
    e2e stack's worker on the shared session engine would pick them up later."""
    tokens: list[str] = []
    yield tokens
    with EngineClient(Settings()) as client:
        delete_unfinished(client, [driver.instance(token) for token in tokens])


def review_ticket(driver, system: str, **variables) -> tuple[str, str]:
    """Start mlc-deploy-with-test without test or training, and open its review ticket with the
    real create-ticket handler; returns (run token, ticket key)."""
    token = driver.start(KEY, {"MODEL_ID": f"gov-ticket-{uuid.uuid4().hex[:8]}", "MODEL_VERSION": 2, **variables})
    driver.run("get-model", token, {"TRAIN": False, "RUN_TEST": False, "JIRA": system == "jira",
                                    "SERVICENOW": system == "servicenow"})
    task = driver.fetch("create-ticket", token)
    ctx = TaskContext(topic="create-ticket", task_id=task["id"], process_instance_id=task["processInstanceId"],
                      activity_id=task["activityId"], activity_instance_id=task["activityInstanceId"],
                      variables=task["vars"], settings=Settings(), process_definition_key=KEY)
    out = create_ticket(ctx)
    driver.complete(task, out)
    return token, out["TICKET_KEY"]


def waiting_for_ticket(driver, token: str) -> bool:
    r = driver.http.get("/event-subscription", params={"processInstanceId": driver.instance(token),
                                                        "eventType": "message"})
    return [s["activityId"] for s in r.json()] == ["catch_review_ticket_updated"]


def test_jira_submitter_is_refused_then_another_reviewer_approves(driver, systems, watcher, started) -> None:
    jira, _ = systems
    token, key = review_ticket(driver, "jira", SUBMITTED_BY="alice", SEPARATION_OF_DUTIES=True)
    started.append(token)

    jira.set_status(key, "Done", by="alice")
    report = watcher.run_once()
    assert report.delivered == []
    assert report.refused == [(key, f"Separation of duties: alice submitted {driver.variables(token)['MODEL_ID']}/2 "
                                    "and cannot approve it; another reviewer must")]
    [comment] = jira.comments[key]
    assert "alice submitted" in comment["body"] and "not counted" in comment["body"]
    assert waiting_for_ticket(driver, token)
    assert "APPROVED_BY" not in driver.variables(token) and "approved" not in driver.variables(token)
    assert watcher.run_once().refused == []  # said once
    assert len(jira.comments[key]) == 1

    jira.set_status(key, "To Do", by="bob")
    jira.set_status(key, "Done", by="bob")
    assert watcher.run_once().delivered == [(key, "Done")]
    assert driver.variables(token)["APPROVED_BY"] == "bob"
    assert driver.fetch("deploy", token)["vars"]["approved"] is True


def test_servicenow_resolver_is_the_approver_and_the_submitter_is_refused(driver, systems, watcher,
                                                                          started) -> None:
    _, servicenow = systems
    token, key = review_ticket(driver, "servicenow", SUBMITTED_BY="alice", SEPARATION_OF_DUTIES=True)
    started.append(token)

    servicenow.set_state(key, "6", by="alice")
    assert [k for k, _ in watcher.run_once().refused] == [key]
    [record] = servicenow.records.values()
    assert any("alice submitted" in text for field, text in servicenow.journal[record["sys_id"]]
               if field == "work_notes")
    assert waiting_for_ticket(driver, token)

    servicenow.set_state(key, "2", by="carol")
    servicenow.set_state(key, "6", by="carol")
    assert watcher.run_once().delivered == [(key, "Done")]
    assert driver.variables(token)["APPROVED_BY"] == "carol"
    assert driver.fetch("deploy", token)["vars"]["approved"] is True


def test_without_separation_of_duties_the_resolver_is_recorded_and_a_rejection_counts(driver, systems,
                                                                                         watcher) -> None:
    jira, _ = systems
    token, key = review_ticket(driver, "jira", SUBMITTED_BY="alice")
    jira.set_status(key, "Rejected", by="alice")  # rejecting your own model is always allowed
    assert watcher.run_once().delivered == [(key, "Rejected")]
    variables = driver.variables(token)
    assert variables["APPROVED_BY"] == "alice" and variables["approved"] is False
    driver.run("create-ticket", token, {"TICKET_KEY": "OPS-999"})  # the rejection ticket
    assert driver.ended_at(token) == "end_rejected"


def test_local_ticket_moved_by_the_submitter_is_refused(driver, systems, run_mlc) -> None:
    """A local review ticket (the default system, as a production retrain's review is) on the
    test process that waits for a ticket: the resolver comes from the ticket's audit trail."""
    with EngineClient(Settings()) as client:
        client.deploy_processes([WAIT_BPMN], name="mlc-test-tickets")
        pid = client.start("mlc-test-ticket-wait", {"MODEL_ID": "gov-local", "MODEL_VERSION": "5",
                                                    "SUBMITTED_BY": "alice", "SEPARATION_OF_DUTIES": True}).id
        key = get_ticket_system(Settings(), "local").create(
            "Review model gov-local v5", "", ["mlc", "mlc-review"],
            TicketContext(model_id="gov-local", model_version="5", process_instance_id=pid, kind="review"),
            dedupe_key=f"{pid}:review").key
        client.request("PUT", f"/process-instance/{pid}/variables/TICKET_KEY", json={"value": key, "type": "String"})

        assert run_mlc("--user", "alice", "ticket", "move", key, "Done").returncode == 0
        r = run_mlc("ticket", "watch", "--once", "--json")
        assert r.returncode == 0, r.stderr
        report = json.loads(r.stdout)
        assert report["delivered"] == [] and "alice submitted gov-local/5" in report["refused"][0][1]
        shown = json.loads(run_mlc("ticket", "show", key, "--json").stdout)
        assert any("alice submitted" in (e.get("text") or "") for e in shown["history"])
        assert client.history_instance(pid).state == "ACTIVE" and "APPROVED_BY" not in client.variables(pid)

        assert run_mlc("--user", "bob", "ticket", "move", key, "In Progress").returncode == 0
        assert run_mlc("--user", "bob", "ticket", "move", key, "Done").returncode == 0
        assert json.loads(run_mlc("ticket", "watch", "--once", "--json").stdout)["delivered"] == [[key, "Done"]]
        assert client.variables(pid)["APPROVED_BY"] == "bob"
        assert client.history_instance(pid).state == "COMPLETED"
    audit = json.loads(run_mlc("audit", "--json").stdout)
    delivered = [a for a in audit
                 if a["target"] == f"local:{key}" and (a.get("after") or {}).get("watch") == "delivered"]
    assert [a["actor"] for a in delivered] == ["user:bob"]
