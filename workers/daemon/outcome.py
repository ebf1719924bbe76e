"""What a handler produced, as one picklable :class:`Outcome` (it crosses the process pool)."""

from __future__ import annotations

import traceback
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from modelops_mlc.errors import BpmnError, MlcError, TaskFailed
from modelops_mlc.serialize import json_safe

if TYPE_CHECKING:
    from contextlib import AbstractContextManager

    from workers.handlers import TaskContext

__all__ = ["Outcome", "acting_for", "call_async_handler", "call_handler"]


@dataclass
class Outcome:
    """A handler's result: complete (with variables), a BPMN error, or a failure to retry."""

    kind: str  # complete | bpmn_error | failure
    variables: dict[str, Any] = field(default_factory=dict)
    error_code: str | None = None
    message: str | None = None
    details: str | None = None
    retryable: bool = True
    retry_in: float | None = None

    @classmethod
    def from_result(cls, result: Any) -> "Outcome":
        if result is None:
            return cls("complete")
        if isinstance(result, Mapping):
            return cls("complete", variables={str(k): v for k, v in result.items()})
        return cls("failure", message=f"handler returned {type(result).__name__}, expected a mapping of variables or None",
                   retryable=False)

    @classmethod
    def from_exception(cls, exc: Exception) -> "Outcome":
        if isinstance(exc, BpmnError):
            return cls("bpmn_error", variables=dict(exc.variables), error_code=exc.code, message=exc.message)
        details = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        if isinstance(exc, TaskFailed):
            return cls("failure", message=exc.message, details=details, retryable=exc.retryable, retry_in=exc.retry_in)
        text = exc.message if isinstance(exc, MlcError) else str(exc)
        return cls("failure", message=f"{type(exc).__name__}: {text}" if text else type(exc).__name__, details=details)

    @classmethod
    def from_record(cls, found: Mapping[str, Any]) -> "Outcome":
        payload = dict(found.get("payload") or {})
        return cls(found["kind"], variables=dict(payload.get("variables") or {}), error_code=payload.get("error_code"),
                   message=payload.get("message"))

    def record_payload(self) -> dict[str, Any]:
        """JSON-safe form for the MLC store."""
        return json_safe({"variables": self.variables, "error_code": self.error_code, "message": self.message})


def call_handler(func: Any, ctx: "TaskContext") -> Outcome:
    """Run a plain handler (in a thread or a pool process) and turn what it did into an Outcome;
    what it changes is audited as this worker acting for the task's process instance."""
    try:
        with acting_for(ctx):
            return Outcome.from_result(func(ctx))
    except Exception as exc:  # never BaseException: KeyboardInterrupt/SystemExit must stop us
        return Outcome.from_exception(exc)


async def call_async_handler(func: Any, ctx: "TaskContext") -> Outcome:
    """The same for an ``async def`` handler, on the event loop (its own context per task)."""
    try:
        with acting_for(ctx):
            return Outcome.from_result(await func(ctx))
    except Exception as exc:
        return Outcome.from_exception(exc)


def acting_for(ctx: "TaskContext") -> "AbstractContextManager[object]":
    """``worker:<worker id>`` acting for the task's process instance (the audit log's actor)."""
    from modelops_mlc.insight.actor import acting_as, current_actor

    worker_id = getattr(ctx, "worker_id", "")
    return acting_as(f"worker:{worker_id}" if worker_id else current_actor().name,
                     getattr(ctx, "process_instance_id", None))
