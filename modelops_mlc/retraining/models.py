"""MLC store tables of training jobs and retrain claims."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, DateTime, Float, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from modelops_mlc.store import Base, utcnow

__all__ = ["RetrainClaimRow", "TrainingJobRow"]


class TrainingJobRow(Base):
    """One training job run as a detached OS process; ``key`` is the submitting task's effect key
    (process instance + activity instance), so a redelivered submit finds the job it started.

    ``state``: ``submitted`` (row written, process starting), ``running``, ``succeeded``,
    ``failed`` (the job reported an error) or ``crashed`` (the process died without a result).
    """

    __tablename__ = "mlc_training_jobs"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), unique=True)
    model_name: Mapped[str] = mapped_column(String(255), index=True)
    parent_version: Mapped[int] = mapped_column(Integer)
    training_data: Mapped[str | None] = mapped_column(Text)
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    process_instance_id: Mapped[str | None] = mapped_column(String(64), index=True)
    state: Mapped[str] = mapped_column(String(16), index=True, default="submitted")
    host: Mapped[str | None] = mapped_column(String(255))
    pid: Mapped[int | None] = mapped_column(Integer)
    pid_started: Mapped[float | None] = mapped_column(Float)  # the process's start time, against pid reuse
    log_path: Mapped[str | None] = mapped_column(Text)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    started_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    heartbeat_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class RetrainClaimRow(Base):
    """The one running retrain of a model: a row per model, held by a process instance."""

    __tablename__ = "mlc_retrain_claims"

    model_name: Mapped[str] = mapped_column(String(255), primary_key=True)
    holder: Mapped[str] = mapped_column(String(64))
    claimed_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
