"""MLC store tables of monitor runs and their per-feature results."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, DateTime, Float, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from modelops_mlc.store import Base, utcnow

__all__ = ["MonitorFeatureRow", "MonitorRunRow", "TriggerClaimRow"]


class MonitorRunRow(Base):
    """One run of ``mlc-monitor``: its verdict and the figures the decision read.

    ``dedupe_key`` (process instance and activity instance of the recording task) makes the
    record idempotent when the engine redelivers the task.
    """

    __tablename__ = "mlc_monitor_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    dedupe_key: Mapped[str | None] = mapped_column(String(255), unique=True)
    model_id: Mapped[str] = mapped_column(String(255), index=True)
    model_version: Mapped[str | None] = mapped_column(String(64))
    process_instance_id: Mapped[str | None] = mapped_column(String(64), index=True)
    trigger: Mapped[str | None] = mapped_column(String(32))
    verdict: Mapped[str] = mapped_column(String(16), index=True)
    reason: Mapped[str | None] = mapped_column(Text)
    reference_data: Mapped[str | None] = mapped_column(String(1000))
    current_data: Mapped[str | None] = mapped_column(String(1000))
    reference_rows: Mapped[int | None] = mapped_column(Integer)
    current_rows: Mapped[int | None] = mapped_column(Integer)
    max_psi: Mapped[float | None] = mapped_column(Float)
    max_psi_feature: Mapped[str | None] = mapped_column(String(255))
    drifted_features: Mapped[int] = mapped_column(Integer, default=0)
    prediction_psi: Mapped[float | None] = mapped_column(Float)
    accuracy_drop: Mapped[float | None] = mapped_column(Float)
    fairness_gap: Mapped[float | None] = mapped_column(Float)
    figures: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    mlflow_run_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)

    features: Mapped[list["MonitorFeatureRow"]] = relationship(
        back_populates="run", cascade="all, delete-orphan", order_by="MonitorFeatureRow.id")


class MonitorFeatureRow(Base):
    """The drift of one feature in one monitor run (``feature`` ``prediction`` is the model's output)."""

    __tablename__ = "mlc_monitor_features"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("mlc_monitor_runs.id", ondelete="CASCADE"), index=True)
    feature: Mapped[str] = mapped_column(String(255))
    kind: Mapped[str | None] = mapped_column(String(16))  # data / prediction
    psi: Mapped[float | None] = mapped_column(Float)
    test: Mapped[str | None] = mapped_column(String(8))
    p_value: Mapped[float | None] = mapped_column(Float)
    verdict: Mapped[str | None] = mapped_column(String(16))

    run: Mapped[MonitorRunRow] = relationship(back_populates="features")


class TriggerClaimRow(Base):
    """A trigger (a webhook delivery's ``MLC_TRIGGER_ID``) one receiver is starting or has started: the
    unique key makes the claim atomic across receivers, where a lock holds within one process only."""

    __tablename__ = "mlc_trigger_claims"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    trigger_id: Mapped[str] = mapped_column(String(250), unique=True)
    instance_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    claimed_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
