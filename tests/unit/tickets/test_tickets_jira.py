"""The Jira adapter against a local stand-in of Jira REST API v2."""

from __future__ import annotations

import base64
import logging

import pytest
from conftest import JIRA_PAT, JIRA_TOKEN, JIRA_USER

from modelops_mlc.config import Settings
from modelops_mlc.errors import ConfigError, TicketError
from modelops_mlc.tickets import (
    TicketContext,
    TicketNotFound,
    TicketState,
    TicketSystemUnavailable,
    get_ticket_system,
)

CTX = TicketContext(model_id="churn", model_version="3", metrics={"accuracy": 0.7},
                    verdict={"passed": False, "reason": "accuracy below 0.8"}, process_instance_id="pi-1")


def test_create_get_transition_comment(jira_env, fake_jira) -> None:
    jira = get_ticket_system(Settings(), "jira")
    ticket = jira.create("churn v3 rejected", "The test failed.", ["rejection"], CTX, dedupe_key="pi-1:Task")
    assert ticket.key == "OPS-1" and ticket.system == "jira"
    assert ticket.state is TicketState.OPEN and ticket.raw_state == "To Do"
    assert ticket.url == f"{fake_jira.url}/browse/OPS-1"
    assert ticket.model_id == "churn" and ticket.process_instance_id == "pi-1"
    assert "mlc-ref-" not in " ".join(ticket.labels)

    method, path, _q, headers = fake_jira.requests[0]
    assert (method, path) == ("POST", "/rest/api/2/issue")
    expected = base64.b64encode(f"{JIRA_USER}:{JIRA_TOKEN}".encode()).decode()
    assert headers["Authorization"] == f"Basic {expected}"
    fields = fake_jira.issues["OPS-1"]["fields"]
    assert fields["issuetype"] == {"name": "Task"}
    assert {"mlc", "rejection", "mlc-model-churn", "mlc-version-3"} <= set(fields["labels"])
    assert "Test verdict: failed (accuracy below 0.8)" in fields["description"]

    # idempotent: the same dedupe key does not create a second issue
    assert jira.create("again", "", [], CTX, dedupe_key="pi-1:Task").key == "OPS-1"
    assert len(fake_jira.issues) == 1

    done = jira.transition("OPS-1", "Done", comment="retest please")
    assert done.state is TicketState.DONE and done.raw_state == "Done"
    assert fake_jira.comments["OPS-1"][0]["body"] == "retest please"
    assert ("POST", "/rest/api/2/issue/OPS-1/transitions") in [(m, p) for m, p, _q, _h in fake_jira.requests]
    rejected = jira.transition("OPS-1", TicketState.REJECTED)
    assert rejected.state is TicketState.REJECTED and rejected.raw_state == "Rejected"
    jira.comment("OPS-1", "closing")
    assert len(fake_jira.comments["OPS-1"]) == 2

    # a reviewer moves it in the Jira UI
    fake_jira.set_status("OPS-1", "In Progress")
    assert jira.get("OPS-1").state is TicketState.IN_PROGRESS


def test_search_by_model_and_state(jira_env, fake_jira) -> None:
    jira = get_ticket_system(Settings(), "jira")
    jira.create("a", "", [], CTX)
    jira.create("b", "", [], TicketContext(model_id="fraud"))
    jira.create("c", "", [], CTX)
    jira.transition("OPS-3", "Done")
    assert [t.key for t in jira.search(model_id="churn")] == ["OPS-3", "OPS-1"]
    assert [t.key for t in jira.search(model_id="churn", state="Open")] == ["OPS-1"]
    assert [t.key for t in jira.search()] == ["OPS-3", "OPS-2", "OPS-1"]
    query = next(q for m, p, q, _h in fake_jira.requests if p == "/rest/api/2/search")
    assert 'labels = "mlc-model-churn"' in query["jql"] and 'project = "OPS"' in query["jql"]


def test_search_falls_back_to_search_jql_on_jira_cloud(jira_env, fake_jira) -> None:
    fake_jira.cloud = True
    jira = get_ticket_system(Settings(), "jira")
    for _ in range(3):
        jira.create("a", "", [], CTX)
    assert [t.key for t in jira.search(model_id="churn")] == ["OPS-3", "OPS-2", "OPS-1"]
    assert any(p == "/rest/api/2/search/jql" for _m, p, _q, _h in fake_jira.requests)


def test_bearer_token_for_data_center(jira_env, fake_jira, monkeypatch) -> None:
    monkeypatch.delenv("MLC_JIRA_USER")
    monkeypatch.delenv("MLC_JIRA_TOKEN")
    monkeypatch.setenv("MLC_JIRA_BEARER_TOKEN", JIRA_PAT)
    jira = get_ticket_system(Settings(), "jira")
    assert jira.create("a", "", [], CTX).key == "OPS-1"
    assert fake_jira.requests[-1][3]["Authorization"] == f"Bearer {JIRA_PAT}"


def test_wrong_credentials_are_refused_without_leaking_them(jira_env, fake_jira, monkeypatch, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("MLC_JIRA_TOKEN", "wrong-token-123456")
    jira = get_ticket_system(Settings(), "jira")
    with pytest.raises(TicketError) as info:
        jira.create("a", "", [], CTX)
    assert "401" in info.value.message
    assert "wrong-token-123456" not in info.value.message and "wrong-token-123456" not in caplog.text
    assert not fake_jira.issues


def test_missing_configuration(mlc_env, monkeypatch) -> None:
    with pytest.raises(ConfigError):
        get_ticket_system(Settings(), "jira")
    monkeypatch.setenv("MLC_JIRA_URL", "http://127.0.0.1:9")
    with pytest.raises(ConfigError):
        get_ticket_system(Settings(), "jira")


def test_not_found_unavailable_and_bad_transition(jira_env, fake_jira, monkeypatch) -> None:
    jira = get_ticket_system(Settings(), "jira")
    with pytest.raises(TicketNotFound):
        jira.get("OPS-77")
    jira.create("a", "", [], CTX)
    fake_jira.down_status = 503
    with pytest.raises(TicketSystemUnavailable):
        jira.get("OPS-1")
    fake_jira.down_status = None
    monkeypatch.setenv("MLC_JIRA_URL", "http://127.0.0.1:9")
    with pytest.raises(TicketSystemUnavailable):
        get_ticket_system(Settings(), "jira").get("OPS-1")


def test_custom_status_names_map_through_settings(jira_env, fake_jira, monkeypatch) -> None:
    monkeypatch.setenv("MLC_JIRA_STATUS_MAP", '{"Rejected": "Done"}')
    jira = get_ticket_system(Settings(), "jira")
    jira.create("a", "", [], CTX)
    fake_jira.set_status("OPS-1", "Rejected")
    assert jira.get("OPS-1").state is TicketState.DONE
    # without a transition to a Rejected status Jira cannot reject: one clear error
    with pytest.raises(TicketError, match="no transition"):
        jira.transition("OPS-1", "Rejected")


def test_rejected_create_request_reports_jira_errors(jira_env, fake_jira, monkeypatch) -> None:
    monkeypatch.setenv("MLC_JIRA_ISSUE_TYPE", "Epic Saga")
    jira = get_ticket_system(Settings(), "jira")
    with pytest.raises(TicketError, match="valid issue type is required"):
        jira.create("a", "", [], CTX, dedupe_key="k1")
    # the failed create released its dedupe claim: a corrected retry creates the issue
    monkeypatch.setenv("MLC_JIRA_ISSUE_TYPE", "Bug")
    assert get_ticket_system(Settings(), "jira").create("a", "", [], CTX, dedupe_key="k1").key == "OPS-1"


def test_get_many_in_one_search(jira_env, fake_jira) -> None:
    jira = get_ticket_system(Settings(), "jira")
    for _ in range(3):
        jira.create("a", "", [], CTX)
    fake_jira.requests.clear()
    found = jira.get_many(["OPS-1", "OPS-3"])
    assert sorted(found) == ["OPS-1", "OPS-3"] and len(fake_jira.requests) == 1
    del fake_jira.issues["OPS-2"]  # deleted in Jira: the JQL is refused, the caller asks one by one
    assert jira.get_many(["OPS-1", "OPS-2"]) == {}


def test_keys_are_checked_before_they_reach_a_url(jira_env, fake_jira) -> None:
    from modelops_mlc.errors import UsageError

    jira = get_ticket_system(Settings(), "jira")
    for bad in ["../../admin", "OPS 1", "OPS-1?x=1"]:
        with pytest.raises(UsageError):
            jira.get(bad)
    assert not fake_jira.requests
