"""Idempotency for effects the SDK cannot deduplicate itself, recorded in the MLC store.

The runner records every task's outcome under ``ctx.dedupe_key`` before it reports it to the
engine, and replays it when the same task comes back. Inside a handler, :func:`once` guards one
side effect (a call to a system without an idempotency key) the same way.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from modelops_mlc.errors import MlcError
from modelops_mlc.store import open_store

if TYPE_CHECKING:
    from modelops_mlc.config import Settings
    from modelops_mlc.store import Store
    from workers.handlers import TaskContext

__all__ = ["forget", "lookup", "once", "prune", "record"]

log = logging.getLogger(__name__)
T = TypeVar("T")

_READY: set[str] = set()


def _store(settings: "Settings") -> "Store":
    from workers.models import TaskOutcomeRow

    store = open_store(settings)
    if settings.store_url not in _READY:
        # Our table is created here rather than through store.MODEL_MODULES: the SDK must not
        # import the workers package, and open_store may already have run in this process.
        try:
            TaskOutcomeRow.__table__.create(store.engine, checkfirst=True)
        except SQLAlchemyError as exc:
            if "already exists" not in str(exc):
                raise MlcError(f"cannot create the workers' table in the MLC store: {exc}") from exc
        _READY.add(settings.store_url)
    return store


def lookup(settings: "Settings", key: str) -> dict[str, Any] | None:
    """The recorded outcome ``{"kind", "payload"}`` for ``key``, or None."""
    from workers.models import TaskOutcomeRow

    with _store(settings).session() as s:
        row = s.get(TaskOutcomeRow, key)
        return None if row is None else {"kind": row.kind, "payload": dict(row.payload or {})}


def record(
    settings: "Settings",
    key: str,
    *,
    topic: str,
    kind: str,
    payload: dict[str, Any],
    task_id: str | None = None,
    worker_id: str | None = None,
) -> dict[str, Any]:
    """Record an outcome once; when another delivery recorded first, return that one instead."""
    from workers.models import TaskOutcomeRow

    store = _store(settings)
    try:
        with store.session() as s:
            s.add(TaskOutcomeRow(key=key, topic=topic, kind=kind, payload=payload, task_id=task_id, worker_id=worker_id))
        return {"kind": kind, "payload": payload}
    except MlcError as exc:
        if not isinstance(exc.__cause__, IntegrityError):
            raise
    existing = lookup(settings, key)
    return existing or {"kind": kind, "payload": payload}


def forget(settings: "Settings", key: str) -> None:
    from workers.models import TaskOutcomeRow

    with _store(settings).session() as s:
        row = s.get(TaskOutcomeRow, key)
        if row is not None:
            s.delete(row)


def prune(settings: "Settings", *, older_than_days: float = 30) -> int:
    """Drop records older than any redelivery could be (locks last minutes); returns how many."""
    import datetime as dt

    from sqlalchemy import delete

    from workers.models import TaskOutcomeRow

    cutoff = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=older_than_days)
    with _store(settings).session() as s:
        return s.execute(delete(TaskOutcomeRow).where(TaskOutcomeRow.created_at < cutoff)).rowcount or 0


def once(ctx: "TaskContext", name: str, effect: Callable[[], T]) -> T:
    """Run ``effect`` once per task and ``name``; a redelivered task gets the recorded result.

    The result must be JSON-serialisable. A crash between the effect and its record can still
    repeat it: prefer an idempotency key the target system honours when it has one.
    """
    key = f"{ctx.dedupe_key}#{name}"
    found = lookup(ctx.settings, key)
    if found is not None:
        log.info("effect %s already done for task %s; not repeating it", name, ctx.task_id)
        return found["payload"].get("value")  # type: ignore[no-any-return]
    value = effect()
    record(ctx.settings, key, topic=ctx.topic, kind="effect", payload={"value": value}, task_id=ctx.task_id,
           worker_id=ctx.worker_id)
    return value
