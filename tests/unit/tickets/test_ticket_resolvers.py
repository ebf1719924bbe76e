"""Who resolved a ticket, as each system reports it: Jira's changelog, ServiceNow's resolved_by /
closed_by, the local ticket's audit trail. Open tickets name nobody."""

from __future__ import annotations

from conftest import JIRA_USER, SN_USER

from modelops_mlc.config import Settings
from modelops_mlc.insight.actor import acting_as
from modelops_mlc.tickets import TicketContext, TicketState, get_ticket_system

CTX = TicketContext(model_id="churn", model_version="3", process_instance_id="pi-1")


def test_jira_resolver_is_the_author_of_the_last_status_change(jira_env, fake_jira) -> None:
    jira = get_ticket_system(Settings(), "jira")
    key = jira.create("Review churn v3", "", ["mlc-review"], CTX).key
    assert jira.get(key).resolved_by is None
    fake_jira.set_status(key, "In Progress", by="carol")
    assert jira.get(key).resolved_by is None  # not decided yet
    fake_jira.set_status(key, "Done", by="dave")
    ticket = jira.get(key)
    assert ticket.state is TicketState.DONE and ticket.resolved_by == "dave"
    assert ticket.resolved_by_ids == ["dave", "dave@example.com", "JIRAUSER-dave"]
    assert ("GET", f"/rest/api/2/issue/{key}") in [(m, p) for m, p, *_ in fake_jira.requests]
    assert fake_jira.requests[-1][2]["expand"] == "changelog"

    moved = jira.transition(key, "Rejected")  # through the API: the account we use
    assert moved.resolved_by == JIRA_USER


def test_jira_batch_poll_reads_the_changelog_too(jira_env, fake_jira) -> None:
    jira = get_ticket_system(Settings(), "jira")
    keys = [jira.create(f"Review churn v{n}", "", ["mlc-review"], CTX).key for n in (1, 2)]
    fake_jira.set_status(keys[0], "Done", by="erin")
    found = jira.get_many(keys)
    assert found[keys[0]].resolved_by == "erin" and found[keys[1]].resolved_by is None


def test_jira_names_nobody_when_the_changelog_is_cut_short(jira_env, fake_jira) -> None:
    jira = get_ticket_system(Settings(), "jira")
    key = jira.create("Review churn v3", "", ["mlc-review"], CTX).key
    fake_jira.set_status(key, "Done", by="dave")
    original = fake_jira._view

    def paged(issue, fields, expand=None):  # Jira expands one page of a long changelog: the rest is missing
        view = original(issue, fields, expand)
        if "changelog" in view:
            view["changelog"] = {**view["changelog"], "total": 250}
        return view

    fake_jira._view = paged
    assert jira.get(key).resolved_by is None


def test_servicenow_resolver_is_resolved_by_then_closed_by(servicenow_env, fake_servicenow) -> None:
    sn = get_ticket_system(Settings(), "servicenow")
    key = sn.create("Review churn v3", "", ["mlc-review"], CTX).key
    assert sn.get(key).resolved_by is None
    fake_servicenow.set_state(key, "6", by="beth.anglin")
    assert sn.get(key).resolved_by == "beth.anglin"
    fake_servicenow.set_state(key, "7", by="fred.luddy")  # closing keeps who resolved it
    assert sn.get(key).resolved_by == "beth.anglin"
    fake_servicenow.set_state(key, "2", by="fred.luddy")
    assert sn.get(key).resolved_by is None
    assert sn.transition(key, "Rejected").resolved_by == SN_USER  # cancelled: the last writer
    fields = fake_servicenow.requests[-1][2]["sysparm_fields"].split(",")
    assert {"resolved_by.user_name", "closed_by.user_name", "sys_updated_by"} <= set(fields)


def test_servicenow_done_without_a_resolver_names_nobody(servicenow_env, fake_servicenow) -> None:
    """Not the last writer: after the watcher's own comment that is our integration account."""
    sn = get_ticket_system(Settings(), "servicenow")
    key = sn.create("Review churn v3", "", ["mlc-review"], CTX).key
    fake_servicenow.set_state(key, "6", by="beth.anglin")
    with fake_servicenow.lock:  # an instance whose business rule does not fill resolved_by
        next(r for r in fake_servicenow.records.values() if r["number"] == key)["resolved_by"] = ""
    assert sn.get(key).resolved_by is None
    sn.comment(key, "refused: the ticket system does not say who resolved the ticket")
    ticket = sn.get(key)
    assert ticket.state is TicketState.DONE and ticket.resolved_by is None and ticket.resolved_by_ids == []


def test_local_resolver_is_the_actor_who_moved_it(mlc_env) -> None:
    local = get_ticket_system(Settings(), "local")
    key = local.create("Review churn v3", "", ["mlc-review"], CTX).key
    with acting_as("user:gina"):
        local.transition(key, "In Progress")
    assert local.get(key).resolved_by is None
    with acting_as("user:hank"):
        local.transition(key, "Done", comment="fine by me")
    assert local.get(key).resolved_by == "hank"
