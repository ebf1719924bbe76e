"""Records of the tickets processes created, in any system: the dedupe claim that makes ``create``
idempotent, and the watch state the ticket watcher follows."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from modelops_mlc.store import Store, utcnow
from modelops_mlc.tickets.base import Ticket, TicketContext, TicketSystemUnavailable
from modelops_mlc.tickets.models import TicketLinkRow, as_utc

__all__ = ["Claim", "claim", "existing_ticket", "finish_claim", "finish_claim_in", "link_for", "release_claim"]

if TYPE_CHECKING:
    from modelops_mlc.config import Settings

# A claim older than this is taken over: the creator died between claiming and recording.
STALE_CLAIM = dt.timedelta(minutes=2)


@dataclass
class Claim:
    """Either an existing ticket for the dedupe key (``existing``) or the right to create one."""

    link_id: int | None = None
    existing: tuple[str, str] | None = None  # (system, key)
    taken_over: bool = False


def existing_ticket(settings: "Settings", existing: tuple[str, str]) -> Ticket:
    """The ticket a claim found already created (``Claim.existing``), read from its own system."""
    from modelops_mlc.tickets import get_ticket_system

    system, key = existing
    return get_ticket_system(settings, system).get(key)


def claim(store: Store, system: str, dedupe_key: str | None) -> Claim:
    """Reserve ``dedupe_key`` for a new ticket, or name the ticket it already stands for.

    A ticket whose final state was already delivered to its process (or whose process is gone)
    no longer answers for the key: a process that loops back to the same activity gets a new one.
    """
    for _attempt in range(3):
        with store.session() as s:
            row = None
            if dedupe_key:
                row = s.scalars(select(TicketLinkRow).where(TicketLinkRow.dedupe_key == dedupe_key)).first()
            if row is not None and row.watch == "creating":
                if utcnow() - as_utc(row.updated_at) < STALE_CLAIM:
                    raise TicketSystemUnavailable(
                        f"a ticket for {dedupe_key!r} is being created by another worker; retry shortly"
                    )
                row.updated_at = utcnow()
                return Claim(link_id=row.id, taken_over=True)
            if row is not None and row.watch not in ("delivered", "closed"):
                return Claim(existing=(row.system, row.key))
            if row is not None:
                row.dedupe_key = None
                s.flush()
            new = TicketLinkRow(
                system=system, key=f"pending:{uuid.uuid4().hex}", dedupe_key=dedupe_key, watch="creating"
            )
            s.add(new)
            try:
                s.flush()
            except IntegrityError:
                s.rollback()
                continue
            return Claim(link_id=new.id)
    raise TicketSystemUnavailable(f"could not reserve ticket creation for {dedupe_key!r}; retry")


def finish_claim(
    store: Store, link_id: int, ticket: Ticket, context: TicketContext, *, remote_id: str | None = None
) -> None:
    """Record the created ticket; a process instance in the context makes it watched."""
    with store.session() as s:
        finish_claim_in(s, link_id, ticket, context, remote_id=remote_id)


def finish_claim_in(
    s: Session, link_id: int, ticket: Ticket, context: TicketContext, *, remote_id: str | None = None
) -> None:
    """:func:`finish_claim` inside the caller's transaction (the local system creates both at once)."""
    row = s.get(TicketLinkRow, link_id)
    if row is not None:
        row.system = ticket.system
        row.key = ticket.key
        row.remote_id = remote_id
        row.process_instance_id = context.process_instance_id
        row.model_id = context.model_id
        row.model_version = context.model_version
        row.url = ticket.url
        row.watch = "waiting" if context.process_instance_id else "none"
        row.last_seen_state = ticket.state.value
        row.last_delivered_state = ticket.state.value
        row.updated_at = utcnow()


def release_claim(store: Store, link_id: int) -> None:
    """Give the dedupe key back after a failed create."""
    with store.session() as s:
        row = s.get(TicketLinkRow, link_id)
        if row is not None and row.watch == "creating":
            s.delete(row)


def link_for(store: Store, system: str, key: str) -> TicketLinkRow | None:
    with store.session() as s:
        return s.scalars(
            select(TicketLinkRow).where(TicketLinkRow.system == system, TicketLinkRow.key == key)
        ).first()
