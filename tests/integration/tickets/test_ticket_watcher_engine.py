"""The ticket watcher resumes a real waiting process on the engine: Done -> retest, Rejected -> rejected."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from modelops_mlc.config import Settings
from modelops_mlc.engine import EngineClient, to_engine
from modelops_mlc.tickets import TicketContext, get_ticket_system
from modelops_mlc.tickets.watcher import TicketWatcher
from tests.unit.tickets.fake_saas import FakeJira

BPMN = Path(__file__).with_name("ticket-wait.bpmn")
PROCESS = "mlc-test-ticket-wait"
JIRA_TOKEN = "jira-token-never-in-variables-7c1e"


@pytest.fixture
def client(settings: Settings):
    with EngineClient(settings) as c:
        c.deploy_processes([BPMN], name="mlc-test-tickets")
        yield c


def _waiting_instance(client: EngineClient, settings: Settings, system: str) -> tuple[str, str]:
    """Start the process, open a ticket for it and set TICKET_KEY, as the create-ticket worker does."""
    started = client.request("POST", f"/process-definition/key/{PROCESS}/start", json={
        "businessKey": "churn:3", "variables": to_engine({"MODEL_ID": "churn", "MODEL_VERSION": "3"})})
    instance_id = started["id"]
    ticket = get_ticket_system(settings, system).create(
        "churn v3 rejected", "The test failed.", ["rejection"],
        TicketContext(model_id="churn", model_version="3", process_instance_id=instance_id),
        dedupe_key=f"{instance_id}:CreateTicket",
    )
    client.request("PUT", f"/process-instance/{instance_id}/variables/TICKET_KEY",
                   json={"value": ticket.key, "type": "String"})
    return instance_id, ticket.key


def _ended_at(client: EngineClient, instance_id: str) -> list[str]:
    return [a.activity_id for a in client.history_activities(instance_id) if a.activity_type == "noneEndEvent"]


def test_done_resumes_the_process_through_the_cli(client: EngineClient, settings: Settings, run_mlc) -> None:
    instance_id, key = _waiting_instance(client, settings, "local")
    first = json.loads(run_mlc("ticket", "watch", "--once", "--json").stdout)
    assert first["delivered"] == []  # still Open: the process keeps waiting
    assert _ended_at(client, instance_id) == []

    moved = run_mlc("ticket", "move", key, "Done", "--comment", "data fixed")
    assert moved.returncode == 0, moved.stderr
    watched = run_mlc("ticket", "watch", "--once", "--json")
    assert watched.returncode == 0, watched.stderr
    assert json.loads(watched.stdout)["delivered"] == [[key, "Done"]]
    assert _ended_at(client, instance_id) == ["Retest"]
    assert client.history_instance(instance_id).state == "COMPLETED"
    assert client.variables(instance_id)["TICKET_STATE"] == "Done"

    # a restarted watcher does not deliver the change again
    again = json.loads(run_mlc("ticket", "watch", "--once", "--json").stdout)
    assert again["delivered"] == [] and again["checked"] == 0


def test_rejected_in_jira_ends_the_process_rejected(
    client: EngineClient, mlc_env, monkeypatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    jira = FakeJira(user="bot@example.com", secret=JIRA_TOKEN).start()
    try:
        for name, value in {"MLC_JIRA_URL": jira.url, "MLC_JIRA_PROJECT": "OPS", "MLC_JIRA_USER": "bot@example.com",
                            "MLC_JIRA_TOKEN": JIRA_TOKEN}.items():
            monkeypatch.setenv(name, value)
        settings = Settings()
        instance_id, key = _waiting_instance(client, settings, "jira")
        watcher = TicketWatcher(settings, client, interval=1)
        assert watcher.run_once().delivered == []
        jira.set_status(key, "Rejected")  # a reviewer rejects it in Jira
        assert watcher.run_once().delivered == [(key, "Rejected")]
        watcher.close()
    finally:
        jira.stop()
    assert _ended_at(client, instance_id) == ["Rejected"]
    variables = client.variables(instance_id)
    assert variables["TICKET_STATE"] == "Rejected" and variables["TICKET_KEY"] == key
    assert JIRA_TOKEN not in json.dumps(variables, default=str)
    assert JIRA_TOKEN not in caplog.text
