"""Camunda 7, the one way in: the REST client (``EngineClient``), the external-task API
(``ExternalTaskApi``), their shared auth and error mapping (:mod:`.gateway`), and the local
engine process (:mod:`.local`)."""

from modelops_mlc.engine.client import (
    Definition,
    EngineClient,
    HistoricActivity,
    Incident,
    Job,
    ProcessDeployment,
    ProcessInstance,
    UserTask,
)
from modelops_mlc.engine.gateway import is_lock_lost
from modelops_mlc.engine.variables import from_engine, to_engine

__all__ = [
    "Definition",
    "EngineClient",
    "ExternalTaskApi",
    "HistoricActivity",
    "Incident",
    "Job",
    "LockedTask",
    "ProcessDeployment",
    "ProcessInstance",
    "Subscription",
    "UserTask",
    "from_engine",
    "is_lock_lost",
    "to_engine",
]


def __getattr__(name: str) -> object:
    """The external-task API on first use: `mlc signal` and friends need not load asyncio."""
    if name in ("ExternalTaskApi", "LockedTask", "Subscription"):
        from modelops_mlc.engine import external_tasks

        return getattr(external_tasks, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
