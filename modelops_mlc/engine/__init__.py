"""Camunda 7: the REST client (``EngineClient``) and the local engine process (``LocalEngine``)."""

from modelops_mlc.engine.client import (
    Definition,
    DeploymentResult,
    EngineClient,
    HistoricActivity,
    Incident,
    ProcessInstance,
    UserTask,
)
from modelops_mlc.engine.variables import from_engine, to_engine

__all__ = [
    "Definition",
    "DeploymentResult",
    "EngineClient",
    "HistoricActivity",
    "Incident",
    "ProcessInstance",
    "UserTask",
    "from_engine",
    "to_engine",
]
