"""The local ticket system, the description template and dedupe records."""

from __future__ import annotations

import logging

import pytest

from modelops_mlc.config import Settings
from modelops_mlc.errors import UsageError
from modelops_mlc.tickets import (
    TicketContext,
    TicketNotFound,
    TicketState,
    TicketSystem,
    cockpit_link,
    get_ticket_system,
    normalise_state,
    render_description,
    system_for_key,
)


def _context(**kw) -> TicketContext:
    base = dict(
        model_id="churn",
        model_version="3",
        tags={"team": "risk", "run_test": "true"},
        metrics={"accuracy": 0.712345, "f1": 0.6},
        verdict={"passed": False, "reason": "accuracy below 0.8"},
        reason="the metrics test failed",
        error_code="MLC_JOB_FAILED",
        error_message="scoring raised ValueError",
        process_instance_id="pi-123",
        kind="rejection",
    )
    base.update(kw)
    return TicketContext(**base)


def test_factory_and_protocol(settings: Settings) -> None:
    system = get_ticket_system(settings)
    assert system.name == "local"
    assert isinstance(system, TicketSystem)
    with pytest.raises(UsageError):
        get_ticket_system(settings, "trello")


def test_states_normalise() -> None:
    assert normalise_state("done") is TicketState.DONE
    assert normalise_state("In progress") is TicketState.IN_PROGRESS
    assert normalise_state("Won't Do") is TicketState.REJECTED
    with pytest.raises(UsageError):
        normalise_state("maybe")


def test_cockpit_link() -> None:
    assert (
        cockpit_link("http://h:8080/engine-rest", "abc")
        == "http://h:8080/camunda/app/cockpit/default/#/process-instance/abc"
    )


def test_template_renders_the_whole_context() -> None:
    ctx = _context(cockpit_url="http://h/camunda/app/cockpit/default/#/process-instance/pi-123")
    text = render_description(ctx, intro="Please look at this.", labels=["mlc", "mlc-model-churn"])
    for expected in [
        "Please look at this.",
        "Model: churn version 3",
        "Reason: the metrics test failed",
        "Error: MLC_JOB_FAILED: scoring raised ValueError",
        "Test verdict: failed (accuracy below 0.8)",
        "- accuracy: 0.7123",
        "- f1: 0.6",
        "- team: risk",
        "Process instance: pi-123",
        "Cockpit: http://h/camunda/app/cockpit/default/#/process-instance/pi-123",
        "Labels: mlc, mlc-model-churn",
    ]:
        assert expected in text
    # a verdict given as the JSON the engine stores works too
    assert "Test verdict: passed" in render_description(TicketContext(verdict='{"passed": true}'))


def test_create_get_transition_comment_search(settings: Settings) -> None:
    system = get_ticket_system(settings, "local")
    ticket = system.create("churn v3 rejected", "The test failed.", ["rejection"], _context())
    assert ticket.key == "MLC-1" and ticket.state is TicketState.OPEN
    assert ticket.model_id == "churn" and ticket.model_version == "3"
    assert ticket.process_instance_id == "pi-123"
    assert {"mlc", "rejection", "mlc-model-churn", "mlc-version-3"} <= set(ticket.labels)
    assert "/camunda/app/cockpit/default/#/process-instance/pi-123" in ticket.description

    other = system.create("fraud v1 error", "", ["error"], _context(model_id="fraud", model_version="1"))
    assert other.key == "MLC-2"

    moved = system.transition("mlc-1", "in progress", comment="looking")
    assert moved.state is TicketState.IN_PROGRESS
    system.comment("MLC-1", "data fixed")
    done = system.transition("MLC-1", TicketState.DONE)
    kinds = [(e["kind"], e["to_state"], e["text"]) for e in done.history]
    assert kinds == [
        ("created", "Open", None),
        ("transition", "In Progress", None),
        ("comment", None, "looking"),
        ("comment", None, "data fixed"),
        ("transition", "Done", None),
    ]
    assert [t.key for t in system.search(model_id="churn")] == ["MLC-1"]
    assert [t.key for t in system.search(state="Open")] == ["MLC-2"]
    assert [t.key for t in system.search()] == ["MLC-2", "MLC-1"]
    with pytest.raises(TicketNotFound):
        system.get("MLC-99")
    assert system_for_key(settings, "MLC-2").name == "local"


def test_create_is_idempotent_per_dedupe_key(settings: Settings) -> None:
    system = get_ticket_system(settings)
    first = system.create("t", "d", [], _context(), dedupe_key="pi-123:CreateTicket")
    again = system.create("t", "d", [], _context(), dedupe_key="pi-123:CreateTicket")
    assert again.key == first.key
    assert len(system.search()) == 1
    # once its decision reached the process, a loop back to the same activity gets a new ticket
    from sqlalchemy import update

    from modelops_mlc.store import open_store
    from modelops_mlc.tickets.models import TicketLinkRow

    with open_store(settings).session() as s:
        s.execute(update(TicketLinkRow).values(watch="delivered"))
    third = system.create("t", "d", [], _context(), dedupe_key="pi-123:CreateTicket")
    assert third.key != first.key
    assert system.create("t", "d", [], _context(), dedupe_key="pi-123:CreateTicket").key == third.key


def test_secrets_never_reach_ticket_text_or_logs(
    mlc_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "s3cr3t-jira-token-value"
    monkeypatch.setenv("MLC_JIRA_TOKEN", secret)
    monkeypatch.setenv("MLC_ENGINE_PASSWORD", "engine-pass-123456")
    settings = Settings()
    caplog.set_level(logging.DEBUG)
    system = get_ticket_system(settings)
    ctx = _context(error_message=f"401 from https://jira?token={secret} (engine-pass-123456)")
    ticket = system.create(f"failed with {secret}", "", [], ctx)
    system.transition(ticket.key, "Done", comment=f"token {secret}")
    stored = system.get(ticket.key)
    blob = stored.model_dump_json()
    assert secret not in blob and "engine-pass-123456" not in blob
    assert "***" in stored.description
    assert secret not in caplog.text
