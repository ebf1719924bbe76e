"""The record of every monitor run: rows in the MLC store (a run and its per-feature results) and
an MLflow run with the same figures as metrics, so the trend shows in `mlc monitor history` and in
MLflow's UI alike."""

from __future__ import annotations

import datetime as dt
import math
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from modelops_mlc.serialize import json_safe

if TYPE_CHECKING:
    from modelops_mlc.config import Settings
    from modelops_mlc.monitoring.models import MonitorRunRow
    from modelops_mlc.registry import Registry

__all__ = ["FeatureResult", "MonitorRun", "history", "record_run"]


class FeatureResult(BaseModel):
    feature: str
    kind: str = "data"  # data / prediction
    psi: float | None = None
    test: str | None = None
    p_value: float | None = None
    verdict: str | None = None


class MonitorRun(BaseModel):
    """One monitor run as recorded (``id`` and ``at`` are set once stored)."""

    id: int | None = None
    model_id: str
    model_version: str | None = None
    process_instance_id: str | None = None
    trigger: str | None = None
    verdict: str
    reason: str | None = None
    reference_data: str | None = None
    current_data: str | None = None
    reference_rows: int | None = None
    current_rows: int | None = None
    max_psi: float | None = None
    max_psi_feature: str | None = None
    drifted_features: int = 0
    prediction_psi: float | None = None
    accuracy_drop: float | None = None
    fairness_gap: float | None = None
    figures: dict[str, Any] = Field(default_factory=dict)
    features: list[FeatureResult] = Field(default_factory=list)
    mlflow_run_id: str | None = None
    at: dt.datetime | None = None


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _from_row(row: "MonitorRunRow", *, features: bool = True) -> MonitorRun:
    from modelops_mlc.tickets.models import as_utc

    return MonitorRun(
        id=row.id, model_id=row.model_id, model_version=row.model_version,
        process_instance_id=row.process_instance_id, trigger=row.trigger, verdict=row.verdict, reason=row.reason,
        reference_data=row.reference_data, current_data=row.current_data, reference_rows=row.reference_rows,
        current_rows=row.current_rows, max_psi=row.max_psi, max_psi_feature=row.max_psi_feature,
        drifted_features=row.drifted_features, prediction_psi=row.prediction_psi, accuracy_drop=row.accuracy_drop,
        fairness_gap=row.fairness_gap, figures=row.figures or {}, mlflow_run_id=row.mlflow_run_id,
        at=as_utc(row.created_at),
        features=[FeatureResult(feature=f.feature, kind=f.kind or "data", psi=f.psi, test=f.test, p_value=f.p_value,
                                verdict=f.verdict) for f in row.features] if features else [],
    )


def _log_mlflow(registry: "Registry", run: MonitorRun, dedupe_key: str) -> str:
    """An MLflow run (kind ``monitor``) with the run's figures and per-feature PSI as metrics."""
    from mlflow.entities import Metric, Param
    from mlflow.utils.time import get_current_time_millis

    from modelops_mlc.jobs.runs import DEDUPE_TAG, settle_task_runs

    found = settle_task_runs(registry, dedupe_key, "monitor")  # a killed delivery's RUNNING run is KILLED
    if found:
        return str(found[0].info.run_id)
    now = get_current_time_millis()
    metrics = {"max_psi": run.max_psi, "drifted_features": run.drifted_features,
               "prediction_psi": run.prediction_psi, "accuracy_drop": run.accuracy_drop,
               "fairness_gap": run.fairness_gap}
    metrics.update({f"psi.{f.feature}"[:250]: f.psi for f in run.features if f.kind == "data"})
    with registry.start_run(f"monitor-{run.model_id}-v{run.model_version}", {
        "mlc.kind": "monitor", "mlc.model_name": run.model_id, "mlc.model_version": run.model_version or "",
        "mlc.monitor_verdict": run.verdict, "mlc.monitor_trigger": run.trigger or "",
        "mlc.process_instance_id": run.process_instance_id or "", DEDUPE_TAG: dedupe_key,
    }) as active:
        params = {"reference_data": run.reference_data, "current_data": run.current_data, "reason": run.reason}
        registry.client.log_batch(
            active.info.run_id,
            metrics=[Metric(k, value, now, 0) for k, v in metrics.items() if (value := _number(v)) is not None],
            params=[Param(k, str(v)[:500]) for k, v in params.items() if v],
            tags=[], synchronous=True,
        )
        registry.client.log_dict(active.info.run_id, json_safe(run.model_dump(exclude={"id", "at"})),
                                 "monitor_run.json")
        return str(active.info.run_id)


def record_run(settings: "Settings", registry: "Registry", run: MonitorRun, *, dedupe_key: str) -> MonitorRun:
    """Keep ``run`` in MLflow and in the MLC store, once per ``dedupe_key`` (a redelivered task
    gets the record its first delivery made)."""
    from sqlalchemy import select

    from modelops_mlc.monitoring.models import MonitorFeatureRow, MonitorRunRow
    from modelops_mlc.store import open_store

    store = open_store(settings)
    with store.session() as s:
        row = s.scalar(select(MonitorRunRow).where(MonitorRunRow.dedupe_key == dedupe_key))
        if row is not None:
            return _from_row(row)
    run.mlflow_run_id = _log_mlflow(registry, run, dedupe_key)
    with store.session() as s:
        row = MonitorRunRow(
            dedupe_key=dedupe_key, model_id=run.model_id, model_version=run.model_version,
            process_instance_id=run.process_instance_id, trigger=run.trigger, verdict=run.verdict, reason=run.reason,
            reference_data=run.reference_data, current_data=run.current_data, reference_rows=run.reference_rows,
            current_rows=run.current_rows, max_psi=_number(run.max_psi), max_psi_feature=run.max_psi_feature,
            drifted_features=run.drifted_features, prediction_psi=_number(run.prediction_psi),
            accuracy_drop=_number(run.accuracy_drop), fairness_gap=_number(run.fairness_gap),
            figures=json_safe(run.figures), mlflow_run_id=run.mlflow_run_id,
            features=[MonitorFeatureRow(feature=f.feature, kind=f.kind, psi=_number(f.psi), test=f.test,
                                        p_value=_number(f.p_value), verdict=f.verdict) for f in run.features],
        )
        s.add(row)
        s.flush()
        return _from_row(row)


def history(settings: "Settings", model: str, *, limit: int = 50, features: bool = True) -> list[MonitorRun]:
    """The model's monitor runs, oldest first (the last ``limit`` of them)."""
    from sqlalchemy import select
    from sqlalchemy.orm import selectinload

    from modelops_mlc.monitoring.models import MonitorRunRow
    from modelops_mlc.store import open_store

    name = model.split("@", 1)[0].split("/", 1)[0]
    query = (select(MonitorRunRow).where(MonitorRunRow.model_id == name)
             .order_by(MonitorRunRow.created_at.desc(), MonitorRunRow.id.desc()).limit(limit))
    if features:
        query = query.options(selectinload(MonitorRunRow.features))
    with open_store(settings).session() as s:
        rows = list(s.scalars(query))
        return [_from_row(r, features=features) for r in reversed(rows)]
