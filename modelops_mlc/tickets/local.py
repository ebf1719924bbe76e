"""The embedded ticket system: tickets ``MLC-<n>`` in the MLC store, with their history."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session

from modelops_mlc.store import open_store, utcnow
from modelops_mlc.tickets import links
from modelops_mlc.tickets._http import TicketNotFound
from modelops_mlc.tickets.base import (
    Ticket,
    TicketContext,
    TicketState,
    normalise_state,
    standard_labels,
)
from modelops_mlc.tickets.models import LocalTicketRow, TicketEventRow, as_utc
from modelops_mlc.tickets.template import redact, render_description

if TYPE_CHECKING:
    from modelops_mlc.config import Settings

__all__ = ["LocalTicketSystem"]


class LocalTicketSystem:
    """Tickets in the MLC store; states move freely between Open, In Progress, Done and Rejected."""

    name = "local"

    def __init__(self, settings: "Settings") -> None:
        self.settings = settings
        self.store = open_store(settings)

    def create(
        self,
        title: str,
        description: str,
        labels: list[str],
        context: TicketContext,
        dedupe_key: str | None = None,
    ) -> Ticket:
        context = context.with_cockpit(self.settings.engine_url)
        found = links.claim(self.store, self.name, dedupe_key)
        if found.existing:
            return links.existing_ticket(self.settings, found.existing)
        assert found.link_id is not None
        all_labels = standard_labels(labels, context)
        try:
            with self.store.session() as s:
                row = LocalTicketRow(
                    title=redact(title, self.settings)[:500],
                    description=render_description(
                        context, intro=description, labels=all_labels, settings=self.settings
                    ),
                    state=TicketState.OPEN.value,
                    labels=all_labels,
                    model_id=context.model_id,
                    model_version=context.model_version,
                    process_instance_id=context.process_instance_id,
                )
                s.add(row)
                s.flush()
                row.key = f"MLC-{row.id}"
                s.add(TicketEventRow(ticket_id=row.id, kind="created", to_state=row.state))
                s.flush()
                ticket = self._ticket(s, row)
                links.finish_claim_in(s, found.link_id, ticket, context)
        except BaseException:
            links.release_claim(self.store, found.link_id)
            raise
        return ticket

    def get(self, key: str) -> Ticket:
        with self.store.session() as s:
            return self._ticket(s, self._row(s, key))

    def transition(self, key: str, state: str | TicketState, comment: str | None = None) -> Ticket:
        target = normalise_state(state)
        with self.store.session() as s:
            row = self._row(s, key)
            now = utcnow()
            if row.state != target.value:
                s.add(
                    TicketEventRow(
                        ticket_id=row.id, kind="transition", from_state=row.state, to_state=target.value, created_at=now
                    )
                )
                row.state = target.value
                row.updated_at = now
            if comment:
                s.add(TicketEventRow(ticket_id=row.id, kind="comment", text=redact(comment, self.settings), created_at=now))
                row.updated_at = now
            s.flush()
            return self._ticket(s, row)

    def comment(self, key: str, text: str) -> None:
        with self.store.session() as s:
            row = self._row(s, key)
            s.add(TicketEventRow(ticket_id=row.id, kind="comment", text=redact(text, self.settings)))
            row.updated_at = utcnow()

    def search(self, model_id: str | None = None, state: str | TicketState | None = None) -> list[Ticket]:
        query = select(LocalTicketRow).order_by(LocalTicketRow.id.desc())
        if model_id:
            query = query.where(LocalTicketRow.model_id == model_id)
        if state:
            query = query.where(LocalTicketRow.state == normalise_state(state).value)
        with self.store.session() as s:
            return [self._ticket(s, row, with_history=False) for row in s.scalars(query)]

    def close(self) -> None:
        """Nothing to release; present so every system can be closed alike."""

    def __enter__(self) -> "LocalTicketSystem":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _row(self, s: Session, key: str) -> LocalTicketRow:
        norm = key.strip().upper()
        if norm.isdigit():
            norm = f"MLC-{norm}"
        row = s.scalars(select(LocalTicketRow).where(LocalTicketRow.key == norm)).first()
        if row is None:
            raise TicketNotFound(f"no local ticket {key!r}", hint="list them with: mlc ticket list")
        return row

    def _ticket(self, s: Session, row: LocalTicketRow, *, with_history: bool = True) -> Ticket:
        history = []
        if with_history:
            events = s.scalars(
                select(TicketEventRow).where(TicketEventRow.ticket_id == row.id).order_by(TicketEventRow.id)
            )
            history = [e.as_dict() for e in events]
        resolver = self._resolver(s, row) if with_history and TicketState(row.state).terminal else None
        return Ticket(
            key=row.key or f"MLC-{row.id}",
            system=self.name,
            title=row.title,
            description=row.description,
            state=TicketState(row.state),
            raw_state=row.state,
            labels=list(row.labels or []),
            model_id=row.model_id,
            model_version=row.model_version,
            process_instance_id=row.process_instance_id,
            url=None,
            created_at=as_utc(row.created_at),
            updated_at=as_utc(row.updated_at),
            history=history,
            resolved_by=resolver,
            resolved_by_ids=[resolver] if resolver else [],
        )

    @staticmethod
    def _resolver(s: Session, row: LocalTicketRow) -> str | None:
        """Who moved the ticket into its state: the actor of the newest audit row that set it
        (``user:alice`` from ``mlc --user alice ticket move``) without its ``user:`` prefix."""
        from modelops_mlc.insight.audit import AuditRow

        rows = s.scalars(select(AuditRow).where(
            AuditRow.target_kind == "ticket", AuditRow.target == row.key,
            AuditRow.action.in_(("ticket.create", "ticket.update"))).order_by(AuditRow.id.desc()))
        for audit in rows:
            if isinstance(audit.after, dict) and audit.after.get("state") == row.state:
                return audit.actor.removeprefix("user:")
        return None
