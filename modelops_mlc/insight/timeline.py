"""A model's timeline from the engine's history: every process instance and step, in order."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import BaseModel

if TYPE_CHECKING:
    from modelops_mlc.engine import EngineClient

__all__ = ["TimelineEvent", "model_timeline"]

# Activity types worth showing; gateways and sequence plumbing are noise on a timeline.
_SHOWN = {
    "startEvent", "signalStartEvent", "messageStartEvent", "noneEndEvent", "errorEndEvent", "terminateEndEvent",
    "serviceTask", "externalTask", "userTask", "businessRuleTask", "intermediateMessageCatch",
    "receiveTask", "boundaryError", "sendTask", "scriptTask", "callActivity",
}


class TimelineEvent(BaseModel):
    time: str | None
    process: str | None
    instance_id: str
    business_key: str | None = None
    step: str
    kind: str
    duration_ms: int | None = None
    who: str | None = None
    state: str | None = None


def model_timeline(client: "EngineClient", model_id: str, *, limit: int = 50) -> list[TimelineEvent]:
    """Steps of every process instance of ``model_id`` (oldest first), from history."""
    events: list[TimelineEvent] = []
    for inst in client.instances(model_id=model_id, limit=limit):
        for act in client.history_activities(inst.id):
            if act.activity_type not in _SHOWN:
                continue
            events.append(
                TimelineEvent(
                    time=act.start_time, process=inst.process_key, instance_id=inst.id, business_key=inst.business_key,
                    step=act.activity_name or act.activity_id, kind=act.activity_type, duration_ms=act.duration_ms,
                    who=act.assignee, state="running" if act.end_time is None and not act.canceled else
                    ("canceled" if act.canceled else "done"),
                )
            )
    events.sort(key=lambda e: (e.time or "", e.instance_id))
    return events
