"""Notifications: a row in the MLC store per message, optionally posted to a Slack-style webhook
(``MLC_WEBHOOK_URL``, body ``{"text": ...}``). ``notify`` is idempotent by ``dedupe_key``."""

from __future__ import annotations

import datetime as dt
import logging
from typing import TYPE_CHECKING

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from modelops_mlc.errors import UsageError
from modelops_mlc.store import open_store, utcnow
from modelops_mlc.tickets.models import NotificationRow, as_utc
from modelops_mlc.tickets.template import redact

if TYPE_CHECKING:
    from modelops_mlc.config import Settings

__all__ = ["LEVELS", "Notification", "list_notifications", "notify", "parse_since"]

log = logging.getLogger(__name__)

LEVELS = ("info", "warning", "error")


class Notification(BaseModel):
    id: int
    level: str
    model_id: str | None = None
    process_instance_id: str | None = None
    message: str
    created_at: dt.datetime
    dedupe_key: str | None = None
    webhook: str | None = None  # sent, failed, or None when no webhook is configured


def _model(row: NotificationRow) -> Notification:
    return Notification(
        id=row.id,
        level=row.level,
        model_id=row.model_id,
        process_instance_id=row.process_instance_id,
        message=row.message,
        created_at=as_utc(row.created_at),
        dedupe_key=row.dedupe_key,
        webhook=row.webhook_status,
    )


def notify(
    settings: "Settings",
    level: str,
    message: str,
    model_id: str | None = None,
    process_instance_id: str | None = None,
    dedupe_key: str | None = None,
) -> Notification:
    """Store a notification (once per ``dedupe_key``) and post it to the webhook when configured.

    A webhook failure is logged and recorded, never raised: a later call with the same
    ``dedupe_key`` tries the webhook again.
    """
    level = (level or "info").strip().lower()
    if level == "warn":
        level = "warning"
    if level not in LEVELS:
        raise UsageError(f"unknown notification level {level!r}; use one of: {', '.join(LEVELS)}")
    message = redact(message, settings)
    store = open_store(settings)
    row: NotificationRow | None = None
    with store.session() as s:
        if dedupe_key:
            row = s.scalars(select(NotificationRow).where(NotificationRow.dedupe_key == dedupe_key)).first()
        if row is None:
            row = NotificationRow(
                level=level,
                model_id=model_id,
                process_instance_id=process_instance_id,
                message=message,
                dedupe_key=dedupe_key,
                created_at=utcnow(),
            )
            s.add(row)
            try:
                s.flush()
            except IntegrityError:  # the same key raced in from another worker
                s.rollback()
                row = s.scalars(select(NotificationRow).where(NotificationRow.dedupe_key == dedupe_key)).one()
    if settings.webhook_url and row.webhook_status != "sent":
        status = _post_webhook(settings, row)
        with store.session() as s:
            stored = s.get(NotificationRow, row.id)
            if stored is not None:
                stored.webhook_status = status
                row = stored
    return _model(row)


def _post_webhook(settings: "Settings", row: NotificationRow) -> str:
    import httpx

    subject = " ".join(p for p in (row.model_id, f"({row.process_instance_id})" if row.process_instance_id else None) if p)
    text = f"[{row.level.upper()}] {subject + ': ' if subject else ''}{row.message}"
    try:
        response = httpx.post(
            settings.webhook_url or "", json={"text": redact(text, settings)}, timeout=settings.ticket_request_timeout
        )
    except httpx.HTTPError as exc:
        log.warning("notification %s: webhook unreachable (%s)", row.id, type(exc).__name__)
        return "failed"
    if not response.is_success:
        log.warning("notification %s: webhook answered HTTP %s", row.id, response.status_code)
        return "failed"
    return "sent"


def parse_since(value: str | None, *, now: dt.datetime | None = None, flag: str = "--since") -> dt.datetime | None:
    """A duration before now (``30m``, ``2h``, ``7d``, ``1w``, ``P30D``: durations.duration_seconds), or an
    ISO date/datetime (UTC when naive)."""
    from modelops_mlc.durations import duration_seconds

    if value is None or not str(value).strip():
        return None
    try:
        seconds = duration_seconds(value)
    except UsageError:
        pass
    else:
        try:
            return (now or utcnow()) - dt.timedelta(seconds=seconds)
        except OverflowError:
            raise UsageError(f"{flag} {value!r} reaches back before the year 1") from None
    try:
        parsed = dt.datetime.fromisoformat(value.strip())
    except ValueError:
        raise UsageError(f"{flag} expects e.g. 30m, 2h, 7d or an ISO date, got {value!r}") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.timezone.utc)


def list_notifications(
    settings: "Settings",
    *,
    model_id: str | None = None,
    since: dt.datetime | None = None,
    level: str | None = None,
    process_instance_id: str | None = None,
    limit: int = 200,
) -> list[Notification]:
    """Newest first."""
    query = select(NotificationRow).order_by(NotificationRow.id.desc()).limit(limit)
    if model_id:
        query = query.where(NotificationRow.model_id == model_id)
    if since is not None:
        if settings.store_url.startswith("sqlite"):  # sqlite compares the stored naive UTC text
            since = since.astimezone(dt.timezone.utc).replace(tzinfo=None)
        query = query.where(NotificationRow.created_at >= since)
    if level:
        query = query.where(NotificationRow.level == level.lower())
    if process_instance_id:
        query = query.where(NotificationRow.process_instance_id == process_instance_id)
    with open_store(settings).session() as s:
        return [_model(r) for r in s.scalars(query)]
