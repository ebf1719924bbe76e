"""The audit log: every change to models, deployments, runtimes and tickets, who made it, before and after.

Two chokepoints feed one append-only table (``mlc_audit``) of the MLC store:

- a SQLAlchemy flush listener on every session: inserts, updates and deletes of the runtimes,
  deployments and tickets tables are written in the same transaction as the change, so a change
  that rolls back leaves no row;
- :class:`AuditedMlflowClient`, the wrapper :class:`~modelops_mlc.registry.Registry` puts around
  its MLflow client: a registry change is recorded once MLflow has accepted it.

The actor is a context variable: the CLI entry point sets the OS user (or ``--user``), the
worker its worker id; a row that names a process instance (a deployment, a ticket) carries it.
Importing this module (``open_store`` does, through ``MODEL_MODULES``) declares the table and
installs the listener.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
from typing import TYPE_CHECKING, Any

from sqlalchemy import DDL, JSON, DateTime, Integer, String, event, insert, inspect, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from modelops_mlc.errors import MlcError
from modelops_mlc.insight.actor import current_actor
from modelops_mlc.serialize import json_safe
from modelops_mlc.store import Base, open_store, utcnow

if TYPE_CHECKING:
    from modelops_mlc.config import Settings

__all__ = ["AuditRow", "AuditedMlflowClient", "audit_entries", "record"]

log = logging.getLogger(__name__)


class AuditRow(Base):
    """One change: who, what, to which target, the values before and after, when. Never updated."""

    __tablename__ = "mlc_audit"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(255))
    action: Mapped[str] = mapped_column(String(64))
    target_kind: Mapped[str] = mapped_column(String(32), index=True)
    target: Mapped[str] = mapped_column(String(500))
    model_id: Mapped[str | None] = mapped_column(String(255), index=True)
    process_instance_id: Mapped[str | None] = mapped_column(String(64))
    before: Mapped[Any] = mapped_column(JSON, nullable=True)
    after: Mapped[Any] = mapped_column(JSON, nullable=True)


# The database refuses to change or remove an audit row, whoever asks.
for _verb in ("UPDATE", "DELETE"):
    event.listen(AuditRow.__table__, "after_create", DDL(
        f"CREATE TRIGGER mlc_audit_no_{_verb.lower()} BEFORE {_verb} ON mlc_audit "
        "BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END").execute_if(dialect="sqlite"))
event.listen(AuditRow.__table__, "after_create", DDL(
    "CREATE OR REPLACE FUNCTION mlc_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS "
    "$$ BEGIN RAISE EXCEPTION 'the audit log is append-only'; END $$; "
    "CREATE TRIGGER mlc_audit_append_only BEFORE UPDATE OR DELETE ON mlc_audit "
    "FOR EACH ROW EXECUTE FUNCTION mlc_audit_append_only()").execute_if(dialect="postgresql"))


# -- store changes ----------------------------------------------------------------------------------

# table -> (target kind, the column naming the target, the column naming the model)
_WATCHED: dict[str, tuple[str, str, str | None]] = {
    "mlc_runtimes": ("runtime", "name", None),
    "mlc_deployments": ("deployment", "id", "model_name"),
    "mlc_deployment_shadows": ("deployment", "deployment_id", None),
    "mlc_tickets": ("ticket", "key", "model_id"),
    "mlc_ticket_links": ("ticket", "key", "model_id"),
}
# Bookkeeping that changes without anyone changing the thing: heartbeats, timestamps.
_IGNORED_COLUMNS = {"updated_at", "last_heartbeat", "heartbeat_interval", "pid"}
_PENDING = "mlc_audit_pending"


def _watched(obj: Any) -> tuple[str, str, str | None] | None:
    table = getattr(obj, "__table__", None)
    return _WATCHED.get(table.name) if table is not None else None


def _values(obj: Any) -> dict[str, Any]:
    mapper = inspect(obj).mapper
    return {c.key: json_safe(getattr(obj, c.key)) for c in mapper.column_attrs if c.key not in _IGNORED_COLUMNS}


def _changes(obj: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    state = inspect(obj)
    before: dict[str, Any] = {}
    after: dict[str, Any] = {}
    for attr in state.mapper.column_attrs:
        if attr.key in _IGNORED_COLUMNS:
            continue
        hist = state.attrs[attr.key].history
        if hist.has_changes() and hist.added != hist.deleted:
            before[attr.key] = json_safe(hist.deleted[0]) if hist.deleted else None
            after[attr.key] = json_safe(hist.added[0]) if hist.added else None
    return before, after


@event.listens_for(Session, "before_flush")
def _collect(session: Session, _context: Any, _instances: Any) -> None:
    for obj in (*session.dirty, *session.deleted):
        if isinstance(obj, AuditRow):
            raise MlcError("the audit log is append-only: an audit row cannot be changed or deleted")
    pending: list[tuple[str, Any, dict[str, Any] | None, dict[str, Any] | None]] = []
    for obj in session.new:
        if _watched(obj):
            pending.append(("create", obj, None, None))
    for obj in session.dirty:
        if _watched(obj) and session.is_modified(obj, include_collections=False):
            before, after = _changes(obj)
            if after:
                pending.append(("update", obj, before, after))
    for obj in session.deleted:
        if _watched(obj):
            pending.append(("delete", obj, _values(obj), None))
    session.info[_PENDING] = pending


@event.listens_for(Session, "after_flush")
def _write(session: Session, _context: Any) -> None:
    pending = session.info.pop(_PENDING, None)
    if not pending:
        return
    actor = current_actor()
    now = utcnow()
    rows = []
    for verb, obj, before, after in pending:
        kind, target_col, model_col = _watched(obj)  # type: ignore[misc]
        values = _values(obj)
        if verb == "create":
            after = values
        target = values.get(target_col)
        if obj.__table__.name == "mlc_ticket_links":
            target = f"{values.get('system')}:{target}"
        rows.append({
            "at": now, "actor": actor.name, "action": f"{kind}.{verb}", "target_kind": kind, "target": str(target),
            "model_id": values.get(model_col) if model_col else None,
            "process_instance_id": values.get("process_instance_id") or actor.process_instance_id,
            "before": before, "after": after,
        })
    session.connection().execute(insert(AuditRow.__table__), rows)


# -- registry changes -------------------------------------------------------------------------------


def record(settings: "Settings", action: str, target: str, *, model_id: str | None = None,
           before: Any = None, after: Any = None, target_kind: str = "model") -> None:
    """Append one row for a change made outside the store (the MLflow registry), once it is made."""
    actor = current_actor()
    try:
        with open_store(settings).session() as s:
            s.add(AuditRow(actor=actor.name, action=action, target_kind=target_kind, target=target,
                           model_id=model_id, process_instance_id=actor.process_instance_id,
                           before=json_safe(before), after=json_safe(after), at=utcnow()))
    except MlcError as exc:
        log.error("audit: cannot record %s of %s: %s", action, target, exc.message)


class AuditedMlflowClient:
    """An ``MlflowClient`` whose registry changes land in the audit log (reads pass straight through).

    The value before is read first, the change is made, and only a change MLflow accepted is recorded.
    """

    def __init__(self, client: Any, settings: "Settings") -> None:
        self._client = client
        self._settings = settings

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def _version_tag(self, name: str, version: str, key: str) -> str | None:
        with contextlib.suppress(Exception):
            return (self._client.get_model_version(name, version).tags or {}).get(key)
        return None

    def _alias(self, name: str, alias: str) -> str | None:
        with contextlib.suppress(Exception):
            return (getattr(self._client.get_registered_model(name), "aliases", {}) or {}).get(alias)
        return None

    def _model_tag(self, name: str, key: str) -> str | None:
        with contextlib.suppress(Exception):
            return (self._client.get_registered_model(name).tags or {}).get(key)
        return None

    def _record(self, action: str, name: str, version: Any = None, **values: Any) -> None:
        target = f"{name}/{version}" if version is not None else name
        record(self._settings, action, target, model_id=name, **values)

    def set_model_version_tag(self, name: str, version: str, key: str, value: str) -> Any:
        before = self._version_tag(name, version, key)
        result = self._client.set_model_version_tag(name, version, key, value)
        if before != value:
            self._record("model.tag", name, version, before={key: before}, after={key: value})
        return result

    def delete_model_version_tag(self, name: str, version: str, key: str) -> Any:
        before = self._version_tag(name, version, key)
        result = self._client.delete_model_version_tag(name, version, key)
        self._record("model.untag", name, version, before={key: before}, after={key: None})
        return result

    def create_registered_model(self, name: str, *args: Any, **kwargs: Any) -> Any:
        model = self._client.create_registered_model(name, *args, **kwargs)
        self._record("model.create", name, after={"tags": dict(model.tags or {})})
        return model

    def set_registered_model_tag(self, name: str, key: str, value: Any) -> Any:
        before = self._model_tag(name, key)
        result = self._client.set_registered_model_tag(name, key, value)
        if before != str(value):
            self._record("model.tag", name, before={key: before}, after={key: str(value)})
        return result

    def set_registered_model_alias(self, name: str, alias: str, version: str) -> Any:
        before = self._alias(name, alias)
        result = self._client.set_registered_model_alias(name, alias, version)
        if str(before) != str(version):
            self._record("model.alias", name, before={alias: before}, after={alias: str(version)})
        return result

    def delete_registered_model_alias(self, name: str, alias: str) -> Any:
        before = self._alias(name, alias)
        result = self._client.delete_registered_model_alias(name, alias)
        self._record("model.unalias", name, before={alias: before}, after={alias: None})
        return result

    def create_model_version(self, name: str, source: str, *args: Any, **kwargs: Any) -> Any:
        mv = self._client.create_model_version(name, source, *args, **kwargs)
        self._record("model.register", name, mv.version, after={"source": source, "run_id": mv.run_id})
        return mv

    def update_model_version(self, name: str, version: str, description: str | None = None) -> Any:
        before = None
        with contextlib.suppress(Exception):
            before = self._client.get_model_version(name, version).description
        result = self._client.update_model_version(name, version, description=description)
        self._record("model.describe", name, version, before={"description": before},
                     after={"description": description})
        return result

    def delete_model_version(self, name: str, version: str) -> Any:
        result = self._client.delete_model_version(name, version)
        self._record("model.delete-version", name, version)
        return result

    def delete_registered_model(self, name: str) -> Any:
        result = self._client.delete_registered_model(name)
        self._record("model.delete", name)
        return result


# -- the read side ----------------------------------------------------------------------------------


def _entry(row: AuditRow) -> dict[str, Any]:
    at = row.at if row.at is None or row.at.tzinfo else row.at.replace(tzinfo=dt.timezone.utc)
    return {"id": row.id, "at": at.isoformat() if at else None, "actor": row.actor, "action": row.action,
            "target_kind": row.target_kind, "target": row.target, "model_id": row.model_id,
            "process_instance_id": row.process_instance_id, "before": row.before, "after": row.after}


def audit_entries(settings: "Settings", *, model_id: str | None = None, target_kind: str | None = None,
                  since: dt.datetime | None = None, limit: int = 500) -> list[dict[str, Any]]:
    """Audit rows, oldest first (the newest ``limit``); ``model_id`` takes a name, name/version or name@alias."""
    query = select(AuditRow).order_by(AuditRow.id.desc()).limit(limit)
    if model_id:
        query = query.where(AuditRow.model_id == model_id.split("@", 1)[0].split("/", 1)[0])
    if target_kind:
        query = query.where(AuditRow.target_kind == target_kind)
    if since is not None:
        query = query.where(AuditRow.at >= since)
    with open_store(settings).session() as s:
        rows = list(s.scalars(query))
    return [_entry(r) for r in reversed(rows)]
