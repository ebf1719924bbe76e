"""MLC store tables of the runtimes package: runtimes, deployments and the deployment history, the
shadow flag of deployments, the prediction log and the feedback labels joined to it."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, DateTime, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from modelops_mlc.store import Base, utcnow

__all__ = [
    "DeploymentEventRow",
    "DeploymentRow",
    "DeploymentShadowRow",
    "FeedbackRow",
    "PredictionRow",
    "RuntimeRow",
]


class RuntimeRow(Base):
    """A registered runtime: where models run. No endpoints means a batch runtime."""

    __tablename__ = "mlc_runtimes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200), unique=True, index=True)
    tags: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    flavors: Mapped[list[str]] = mapped_column(JSON, default=list)
    endpoints: Mapped[list[str]] = mapped_column(JSON, default=list)
    status: Mapped[str] = mapped_column(String(20), default="unknown")
    status_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    heartbeat_interval: Mapped[float | None] = mapped_column(Float, nullable=True)
    last_heartbeat: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    pid: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)


class DeploymentRow(Base):
    """One stint of a model version on a runtime; the runtime reconciles against these rows."""

    __tablename__ = "mlc_deployments"
    __table_args__ = (
        Index("ix_mlc_deployments_model_state", "model_name", "state"),
        Index("ix_mlc_deployments_tag_state", "model_tag", "state"),
        # one deployment per deploy task (process instance + activity), model version and stage:
        # the deploy topic's idempotency
        UniqueConstraint("dedupe_key", "model_name", "model_version", "stage", name="uq_mlc_deployments_dedupe"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    model_name: Mapped[str] = mapped_column(String(250))
    model_version: Mapped[str] = mapped_column(String(50))
    model_tag: Mapped[str | None] = mapped_column(String(250), nullable=True)
    stage: Mapped[str | None] = mapped_column(String(50), nullable=True)
    runtime: Mapped[str] = mapped_column(String(200), index=True)
    mode: Mapped[str] = mapped_column(String(10))
    state: Mapped[str] = mapped_column(String(12), default="deploying")
    traffic_weight: Mapped[int] = mapped_column(Integer, default=100)
    endpoint: Mapped[str | None] = mapped_column(Text, nullable=True)
    flavor: Mapped[str | None] = mapped_column(String(100), nullable=True)
    requested_by: Mapped[str] = mapped_column(String(200), default="cli")
    process_instance_id: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    dedupe_key: Mapped[str | None] = mapped_column(String(255), nullable=True)
    message: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)


class DeploymentEventRow(Base):
    """What happened to a deployment and who did it: deploy, deployed, failed, promote, rollback, retire."""

    __tablename__ = "mlc_deployment_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    deployment_id: Mapped[int] = mapped_column(ForeignKey("mlc_deployments.id", ondelete="CASCADE"), index=True)
    model_name: Mapped[str] = mapped_column(String(250), index=True)
    action: Mapped[str] = mapped_column(String(20))
    detail: Mapped[str | None] = mapped_column(Text, nullable=True)
    actor: Mapped[str] = mapped_column(String(200), default="cli")
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class DeploymentShadowRow(Base):
    """Marks an online deployment as a shadow: it gets a copy of the live traffic, never answers it."""

    __tablename__ = "mlc_deployment_shadows"

    deployment_id: Mapped[int] = mapped_column(
        ForeignKey("mlc_deployments.id", ondelete="CASCADE"), primary_key=True
    )
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class PredictionRow(Base):
    """One row of one online prediction, as the runtime answered it (``primary``) or mirrored it (``shadow``)."""

    __tablename__ = "mlc_predictions"
    __table_args__ = (
        Index("ix_mlc_predictions_request", "model_name", "request_id", "row"),
        Index("ix_mlc_predictions_version_at", "model_name", "model_version", "at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    request_id: Mapped[str] = mapped_column(String(128))
    row: Mapped[int] = mapped_column(Integer, default=0)
    deployment_id: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True)
    model_name: Mapped[str] = mapped_column(String(250))
    model_version: Mapped[str] = mapped_column(String(50))
    role: Mapped[str] = mapped_column(String(10), default="primary")
    output: Mapped[Any] = mapped_column(JSON, nullable=True)
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class FeedbackRow(Base):
    """The true label of one predicted row, joined to the prediction log by request id and row."""

    __tablename__ = "mlc_feedback"
    __table_args__ = (UniqueConstraint("model_name", "request_id", "row", name="uq_mlc_feedback_request_row"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    model_name: Mapped[str] = mapped_column(String(250))
    request_id: Mapped[str] = mapped_column(String(128))
    row: Mapped[int] = mapped_column(Integer, default=0)
    label: Mapped[Any] = mapped_column(JSON, nullable=True)
    source: Mapped[str] = mapped_column(String(200), default="api")
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
