"""Stand-ins for the ML steps of mlc-monitor in bench/monitor_scale.py: the worker serves these with
``--no-builtin --handlers bench._monitor_handlers``, so the benchmark measures the engine's timers,
signals, decision and external tasks at scale, not MLflow or the drift job (bench/drift.py does).

Each model gets a fixed PSI from its name: most runs are ``ok``, one in ten ``notify``. The
decision's inputs come from the real ``modelops_mlc.monitoring.checks.figures``.
"""

from __future__ import annotations

import zlib
from typing import Any

from workers.handlers import TaskContext, TopicHandlers

handlers = TopicHandlers()


def _psi(model: str) -> float:
    return 0.15 if zlib.crc32(model.encode()) % 10 == 0 else 0.02


@handlers.topic("get-model")
def get_model(ctx: TaskContext) -> dict[str, Any]:
    return {"MODEL_VERSION": 1}


@handlers.topic("drift")
def drift(ctx: TaskContext) -> dict[str, Any]:
    psi = _psi(str(ctx.get("MODEL_ID")))
    return {"DRIFT_VERDICT": "monitor" if psi >= 0.1 else "ok",
            "DRIFT_RESULTS": {"features": {"x": {"psi": psi}}, "drifted_features": ["x"] if psi >= 0.1 else []}}


@handlers.topic("monitor-check")
def monitor_check(ctx: TaskContext) -> dict[str, Any]:
    from modelops_mlc.monitoring.checks import figures, summary

    found = figures(dict(ctx.get("DRIFT_RESULTS") or {}))
    return {"MONITOR_DMN_KEY": "mlc-monitor-criteria", "HAS_LABELS": False, "MONITOR_MAX_PSI": found.max_psi,
            "MONITOR_MAX_PSI_FEATURE": found.max_psi_feature, "MONITOR_PREDICTION_PSI": None,
            "MONITOR_ACCURACY_DROP": None, "MONITOR_FAIRNESS_GAP": None, "MONITOR_SUMMARY": summary(found)}


@handlers.topic("monitor-record")
def monitor_record(ctx: TaskContext) -> dict[str, Any]:
    return {}


@handlers.topic("notify")
def notify(ctx: TaskContext) -> dict[str, Any]:
    return {}


@handlers.topic("create-ticket")
def create_ticket(ctx: TaskContext) -> dict[str, Any]:
    return {"TICKET_KEY": "BENCH-1"}
