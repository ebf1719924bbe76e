"""`mlc history` on a review by ticket, on the real engine with the real ticket watcher (Jira is the
local stand-in): the ticket is opened by its worker, alice's approval of her own model is refused
under separation of duties and shown as such, bob's approval is an approval event with his name,
the time the watcher delivered it and a link to the ticket."""

from __future__ import annotations

import json
import uuid

from sklearn.linear_model import LogisticRegression

from modelops_mlc.config import Settings
from modelops_mlc.engine import EngineClient
from modelops_mlc.insight.actor import acting_as, current_actor
from modelops_mlc.insight.audit import audit_entries
from modelops_mlc.insight.facts import iso
from modelops_mlc.insight.history import model_history
from modelops_mlc.registry import Registry
from tests.integration.bpmn.conftest import driver  # noqa: F401  (fixture: bpmn/ deployed)
from tests.integration.governance.test_ticket_review import started, systems, watcher  # noqa: F401  (fixtures)
from workers.create_ticket import create_ticket
from workers.handlers import TaskContext


def test_history_shows_the_refused_and_the_counted_ticket_approval(driver, systems, watcher, run_mlc,
                                                                   started) -> None:
    jira, _ = systems
    model = f"hist-review-{uuid.uuid4().hex[:8]}"
    Registry(Settings()).register(model, estimator=LogisticRegression().fit([[0.0], [1.0]], [0, 1]))
    token = driver.start("mlc-deploy-with-test", {"MODEL_ID": model, "MODEL_VERSION": 1, "SUBMITTED_BY": "alice",
                                                  "SEPARATION_OF_DUTIES": True})
    started.append(token)  # it ends waiting at deploy
    driver.run("get-model", token, {"TRAIN": False, "RUN_TEST": False, "JIRA": True, "SERVICENOW": False})
    task = driver.fetch("create-ticket", token)
    pid = task["processInstanceId"]
    with acting_as("worker:w-review", pid):
        out = create_ticket(TaskContext(
            topic="create-ticket", task_id=task["id"], process_instance_id=pid, activity_id=task["activityId"],
            activity_instance_id=task["activityInstanceId"], variables=task["vars"], settings=Settings(),
            process_definition_key="mlc-deploy-with-test"))
    driver.complete(task, out)
    key = out["TICKET_KEY"]

    jira.set_status(key, "Done", by="alice")
    assert [k for k, _ in watcher.run_once().refused] == [key]
    jira.set_status(key, "To Do", by="bob")
    jira.set_status(key, "Done", by="bob")
    assert watcher.run_once().delivered == [(key, "Done")]

    with EngineClient(Settings()) as client:
        events = model_history(client, Registry(Settings()), model)
    [ticket] = [e for e in events if e.kind == "ticket"]
    assert ticket.actor == "worker:w-review"  # who opened it, not the watcher that saw it move
    approvals = [e for e in events if e.kind == "approval"]
    # the refusal is the watcher's (it acts as this process's actor); the counted approval is bob's
    assert [(e.state, e.actor) for e in approvals] == [("refused", current_actor().name), ("Done", "user:bob")]
    refused, approved = approvals
    assert "alice submitted" in refused.what and refused.details["refusal"].startswith("Separation of duties:")
    assert approved.what == f"review ticket {key} approved by bob" and approved.details["approved"] is True
    assert approved.link == ticket.link == f"{jira.url}/browse/{key}"
    assert approved.instance_id == pid and approved.version == 1
    [delivered] = [a for a in audit_entries(Settings(), model_id=model)
                   if a["target"] == f"jira:{key}" and (a["after"] or {}).get("last_delivered_state") == "Done"]
    assert approved.time == iso(delivered["at"])

    shown = json.loads(run_mlc("history", model, "--json").stdout)  # the CLI shows the same events
    assert [(e["kind"], e["state"], e["actor"]) for e in shown if e["kind"] == "approval"] == [
        ("approval", e.state, e.actor) for e in approvals]
