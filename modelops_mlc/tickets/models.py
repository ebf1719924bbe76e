"""MLC store tables of the tickets package: local tickets and their history, the record of every
ticket a process created (in any system) that the watcher follows, and notifications."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, DateTime, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from modelops_mlc.store import Base, utcnow

__all__ = ["LocalTicketRow", "NotificationRow", "TicketEventRow", "TicketLinkRow", "as_utc"]


def as_utc(value: dt.datetime | None) -> dt.datetime | None:
    """sqlite hands back naive datetimes; everything we store is UTC."""
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)


class LocalTicketRow(Base):
    """A ticket of the local system; its key is ``MLC-<id>``."""

    __tablename__ = "mlc_tickets"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    key: Mapped[str | None] = mapped_column(String(32), unique=True, index=True)
    title: Mapped[str] = mapped_column(String(500))
    description: Mapped[str] = mapped_column(Text, default="")
    state: Mapped[str] = mapped_column(String(32), index=True)
    labels: Mapped[list[str]] = mapped_column(JSON, default=list)
    model_id: Mapped[str | None] = mapped_column(String(255), index=True)
    model_version: Mapped[str | None] = mapped_column(String(64))
    process_instance_id: Mapped[str | None] = mapped_column(String(64), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class TicketEventRow(Base):
    """History of a local ticket: creation, transitions and comments, oldest first."""

    __tablename__ = "mlc_ticket_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("mlc_tickets.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # created, transition, comment
    from_state: Mapped[str | None] = mapped_column(String(32))
    to_state: Mapped[str | None] = mapped_column(String(32))
    text: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "from_state": self.from_state,
            "to_state": self.to_state,
            "text": self.text,
            "at": as_utc(self.created_at).isoformat() if self.created_at else None,
        }


class TicketLinkRow(Base):
    """A ticket created through :func:`get_ticket_system` (any system): dedupe record and watch state.

    ``watch`` is ``waiting`` while a process may wait on the ticket, ``delivered`` once a final
    state reached the engine, ``closed`` when the process instance is gone.
    """

    __tablename__ = "mlc_ticket_links"
    __table_args__ = (UniqueConstraint("system", "key", name="uq_mlc_ticket_links_system_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    system: Mapped[str] = mapped_column(String(16), index=True)
    key: Mapped[str] = mapped_column(String(64))
    remote_id: Mapped[str | None] = mapped_column(String(64))
    dedupe_key: Mapped[str | None] = mapped_column(String(255), unique=True)
    process_instance_id: Mapped[str | None] = mapped_column(String(64), index=True)
    model_id: Mapped[str | None] = mapped_column(String(255), index=True)
    model_version: Mapped[str | None] = mapped_column(String(64))
    url: Mapped[str | None] = mapped_column(String(1000))
    watch: Mapped[str] = mapped_column(String(16), default="waiting", index=True)
    last_seen_state: Mapped[str | None] = mapped_column(String(32))
    last_delivered_state: Mapped[str | None] = mapped_column(String(32))
    delivered_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class NotificationRow(Base):
    """A notification a process (or the CLI) raised; ``dedupe_key`` makes ``notify`` idempotent."""

    __tablename__ = "mlc_notifications"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    level: Mapped[str] = mapped_column(String(16), index=True)
    model_id: Mapped[str | None] = mapped_column(String(255), index=True)
    process_instance_id: Mapped[str | None] = mapped_column(String(64))
    message: Mapped[str] = mapped_column(Text)
    dedupe_key: Mapped[str | None] = mapped_column(String(255), unique=True)
    webhook_status: Mapped[str | None] = mapped_column(String(16))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
