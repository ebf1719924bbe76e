"""One task in flight: what was locked, the context its handler sees, and how far it got."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from modelops_mlc.engine import LockedTask
    from workers.handlers import TaskContext, TopicHandler

__all__ = ["EventLog", "Flight"]

log = logging.getLogger("workers.daemon")


@dataclass(eq=False)
class Flight:
    task: "LockedTask"
    ctx: "TaskContext"
    handler: "TopicHandler"
    started: float  # monotonic
    started_at: str  # ISO time, for the status file
    lock_ms: int  # how long each lock (and each extension) lasts
    job: "asyncio.Task[None] | None" = None
    engine_lock: asyncio.Lock = field(default_factory=asyncio.Lock)  # extendLock and the report never overlap
    holds_slot: bool = True  # until its outcome is known; the report runs outside the slot
    done: bool = False
    abandoned: bool = False

    def fields(self, **extra: Any) -> dict[str, Any]:
        base = {
            "topic": self.ctx.topic,
            "task_id": self.ctx.task_id,
            "process_instance_id": self.ctx.process_instance_id,
            "model_id": self.ctx.model_id,
            "activity_id": self.ctx.activity_id,
        }
        base.update(extra)
        return base


class EventLog:
    """The worker's log lines: an event name, a message and fields, each carrying the worker id.

    Fields are built only for a level that is enabled, since a busy worker logs per task.
    """

    def __init__(self, worker_id: str) -> None:
        self.worker_id = worker_id

    def __call__(self, level: int, event: str, message: str, fields: dict[str, Any] | None = None) -> None:
        if log.isEnabledFor(level):
            log.log(level, message, extra={"event": event, "fields": {"worker_id": self.worker_id, **(fields or {})}})

    def task(self, level: int, event: str, message: str, flight: Flight, **extra: Any) -> None:
        if log.isEnabledFor(level):
            self(level, event, message, flight.fields(**extra))
