"""Camunda 7, the one way in: the REST client (``EngineClient``), the external-task API
(``ExternalTaskApi``), their shared auth and error mapping (:mod:`.gateway`), and the local
engine process (:mod:`.local`)."""

from modelops_mlc.engine.client import (
    Definition,
    ProcessDeployment,
    EngineClient,
    HistoricActivity,
    Incident,
    ProcessInstance,
    UserTask,
)
from modelops_mlc.engine.external_tasks import ExternalTaskApi, LockedTask, Subscription
from modelops_mlc.engine.gateway import is_lock_lost
from modelops_mlc.engine.variables import from_engine, to_engine

__all__ = [
    "Definition",
    "ProcessDeployment",
    "EngineClient",
    "ExternalTaskApi",
    "HistoricActivity",
    "Incident",
    "LockedTask",
    "ProcessInstance",
    "Subscription",
    "UserTask",
    "from_engine",
    "is_lock_lost",
    "to_engine",
]
