"""The ServiceNow adapter against a local stand-in of the Table API (incident)."""

from __future__ import annotations

import base64
import logging

import pytest
from conftest import SN_PASSWORD, SN_TOKEN, SN_USER

from modelops_mlc.config import Settings
from modelops_mlc.errors import ConfigError, TicketError
from modelops_mlc.tickets import (
    TicketContext,
    TicketNotFound,
    TicketState,
    TicketSystemUnavailable,
    get_ticket_system,
    system_for_key,
)

CTX = TicketContext(model_id="churn", model_version="3", error_code="MLC_DEPLOY_FAILED",
                    error_message="no runtime answered", process_instance_id="pi-9")


def test_create_get_transition_comment(servicenow_env, fake_servicenow) -> None:
    sn = get_ticket_system(Settings(), "servicenow")
    ticket = sn.create("churn v3 deploy failed", "Deployment failed.", ["error"], CTX, dedupe_key="pi-9:Err")
    assert ticket.key == "INC0010001" and ticket.system == "servicenow"
    assert ticket.state is TicketState.OPEN and ticket.raw_state == "New"
    assert ticket.model_id == "churn" and ticket.process_instance_id == "pi-9"
    record = next(iter(fake_servicenow.records.values()))
    assert ticket.url.endswith(record["sys_id"])
    assert record["correlation_id"] == "pi-9:Err" and record["correlation_display"] == "modelops-mlc"
    assert record["short_description"] == "churn v3 deploy failed"
    assert "Error: MLC_DEPLOY_FAILED: no runtime answered" in record["description"]
    method, path, _q, headers = fake_servicenow.requests[0]
    assert (method, path) == ("POST", "/api/now/table/incident")
    assert headers["Authorization"] == "Basic " + base64.b64encode(f"{SN_USER}:{SN_PASSWORD}".encode()).decode()

    assert sn.create("again", "", [], CTX, dedupe_key="pi-9:Err").key == "INC0010001"
    assert len(fake_servicenow.records) == 1

    moved = sn.transition("INC0010001", "In Progress", comment="on it")
    assert moved.state is TicketState.IN_PROGRESS and record["state"] == "2"
    done = sn.transition("INC0010001", "Done")  # the stand-in enforces close_code + close_notes
    assert done.state is TicketState.DONE and record["state"] == "6" and record["close_code"]
    sn.comment("INC0010001", "retested")
    assert fake_servicenow.journal[record["sys_id"]] == [("work_notes", "on it"), ("work_notes", "retested")]
    assert sn.transition("INC0010001", "Rejected").state is TicketState.REJECTED and record["state"] == "8"

    for code, state in [("3", TicketState.IN_PROGRESS), ("7", TicketState.DONE), ("1", TicketState.OPEN)]:
        fake_servicenow.set_state("INC0010001", code)
        assert sn.get("INC0010001").state is state
    assert sn.get(record["sys_id"]).key == "INC0010001"
    assert system_for_key(Settings(), "INC0010001").name == "servicenow"


def test_search_by_model_and_state(servicenow_env, fake_servicenow) -> None:
    sn = get_ticket_system(Settings(), "servicenow")
    sn.create("a", "", [], CTX)
    sn.create("b", "", [], TicketContext(model_id="churn-v2"))  # LIKE would match churn too
    sn.create("c", "", [], CTX)
    sn.transition("INC0010003", "Done")
    assert [t.key for t in sn.search(model_id="churn")] == ["INC0010003", "INC0010001"]
    assert [t.key for t in sn.search(state="Done")] == ["INC0010003"]
    assert len(sn.search()) == 3


def test_bearer_token(servicenow_env, fake_servicenow, monkeypatch) -> None:
    monkeypatch.delenv("MLC_SERVICENOW_USER")
    monkeypatch.delenv("MLC_SERVICENOW_PASSWORD")
    monkeypatch.setenv("MLC_SERVICENOW_TOKEN", SN_TOKEN)
    assert get_ticket_system(Settings(), "servicenow").create("a", "", [], CTX).key == "INC0010001"
    assert fake_servicenow.requests[-1][3]["Authorization"] == f"Bearer {SN_TOKEN}"


def test_wrong_credentials_refused(servicenow_env, fake_servicenow, monkeypatch, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("MLC_SERVICENOW_PASSWORD", "not-the-password-42")
    with pytest.raises(TicketError) as info:
        get_ticket_system(Settings(), "servicenow").create("a", "", [], CTX)
    assert "401" in info.value.message and "not-the-password-42" not in caplog.text
    assert not fake_servicenow.records


def test_errors(servicenow_env, fake_servicenow, monkeypatch) -> None:
    sn = get_ticket_system(Settings(), "servicenow")
    with pytest.raises(TicketNotFound):
        sn.get("INC0099999")
    with pytest.raises(TicketNotFound):
        sn.get("0" * 32)
    fake_servicenow.down_status = 502
    with pytest.raises(TicketSystemUnavailable):
        sn.search()
    fake_servicenow.down_status = None
    monkeypatch.delenv("MLC_SERVICENOW_URL")
    with pytest.raises(ConfigError):
        get_ticket_system(Settings(), "servicenow")


def test_get_many_in_one_query(servicenow_env, fake_servicenow) -> None:
    sn = get_ticket_system(Settings(), "servicenow")
    for _ in range(3):
        sn.create("a", "", [], CTX)
    fake_servicenow.requests.clear()
    found = sn.get_many(["INC0010001", "inc0010003", "INC0099999"])
    assert sorted(found) == ["INC0010001", "INC0010003"] and len(fake_servicenow.requests) == 1
