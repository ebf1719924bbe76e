"""Ticket systems (local store, Jira, ServiceNow) behind one protocol, and notifications.

    system = get_ticket_system(settings)            # settings.ticket_system, or name="jira"...
    ticket = system.create(title, text, labels, TicketContext(model_id="churn", ...),
                           dedupe_key=f"{process_instance_id}:{activity_id}")
    system.transition(ticket.key, "Done", comment="retest please")

``create`` renders ``description`` plus the model context through one template and is idempotent
per ``dedupe_key``. The ticket watcher (:mod:`modelops_mlc.tickets.watcher`) brings state changes
back into waiting processes as message ``mlc.ticket-updated``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from modelops_mlc.errors import TicketError, UsageError
from modelops_mlc.tickets._http import TicketAuthError, TicketNotFound
from modelops_mlc.tickets.base import (
    SYSTEMS,
    Ticket,
    TicketContext,
    TicketState,
    TicketSystem,
    TicketSystemUnavailable,
    choose_system,
    cockpit_link,
    normalise_state,
    run_link,
)
from modelops_mlc.tickets.template import redact, render_description

if TYPE_CHECKING:
    from modelops_mlc.config import Settings

__all__ = [
    "SYSTEMS",
    "Ticket",
    "TicketContext",
    "TicketAuthError",
    "TicketError",
    "TicketNotFound",
    "TicketState",
    "TicketSystem",
    "TicketSystemUnavailable",
    "choose_system",
    "cockpit_link",
    "get_ticket_system",
    "normalise_state",
    "redact",
    "render_description",
    "run_link",
    "system_for_key",
]


def get_ticket_system(settings: "Settings", name: str | None = None) -> TicketSystem:
    """The ticket system called ``name`` (local, jira, servicenow); default ``settings.ticket_system``."""
    chosen = (name or settings.ticket_system or "local").strip().lower()
    if chosen == "local":
        from modelops_mlc.tickets.local import LocalTicketSystem

        return LocalTicketSystem(settings)
    if chosen == "jira":
        from modelops_mlc.tickets.jira import JiraTicketSystem

        return JiraTicketSystem(settings)
    if chosen == "servicenow":
        from modelops_mlc.tickets.servicenow import ServiceNowTicketSystem

        return ServiceNowTicketSystem(settings)
    raise UsageError(f"unknown ticket system {name!r}; use one of: {', '.join(SYSTEMS)}")


def system_for_key(settings: "Settings", key: str, name: str | None = None) -> TicketSystem:
    """The system a ticket key belongs to: ``name`` when given, else the store's record of the
    ticket, else its shape (``MLC-7`` local, ``INC0010001`` ServiceNow), else the default system."""
    import re

    from sqlalchemy import select

    from modelops_mlc.store import open_store
    from modelops_mlc.tickets.models import TicketLinkRow

    if name:
        return get_ticket_system(settings, name)
    with open_store(settings).session() as s:
        known = s.scalars(select(TicketLinkRow.system).where(TicketLinkRow.key == key.strip())).first()
    if known:
        return get_ticket_system(settings, known)
    if re.fullmatch(r"(?i)(MLC-)?\d+", key.strip()):
        return get_ticket_system(settings, "local")
    if re.fullmatch(r"(?i)INC\d+", key.strip()):
        return get_ticket_system(settings, "servicenow")
    return get_ticket_system(settings)

