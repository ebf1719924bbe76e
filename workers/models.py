"""The workers' table in the MLC store: the recorded outcome of every task, keyed by its effect.

A redelivered task (its lock expired, its worker was killed after the work but before the
engine heard of it) finds its outcome here and is answered without running the handler again.
Effects done inside a handler are keyed the same way through the SDK's ``dedupe_key``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, DateTime, String
from sqlalchemy.orm import Mapped, mapped_column

from modelops_mlc.store import Base, utcnow

__all__ = ["TaskOutcomeRow"]


class TaskOutcomeRow(Base):
    """Outcome of one task by dedupe key (process instance + activity instance)."""

    __tablename__ = "mlc_worker_outcomes"

    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    topic: Mapped[str] = mapped_column(String(255))
    kind: Mapped[str] = mapped_column(String(16))  # complete, bpmn_error, effect
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    task_id: Mapped[str | None] = mapped_column(String(64))
    worker_id: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
