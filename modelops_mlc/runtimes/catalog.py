"""The runtime catalog: named runtimes with tags, flavors, endpoints and a heartbeat, in the MLC store.

A runtime that heartbeats (``mlc runtime serve``) is healthy while its last heartbeat is younger
than ``runtime_missed_heartbeats`` heartbeat intervals and unhealthy after; a runtime that never
heartbeats (a batch runtime added with ``mlc runtime add``) keeps the status it was given,
``unknown`` by default.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, computed_field
from sqlalchemy import select

from modelops_mlc.errors import NotFoundError, RuntimeServiceError, UsageError
from modelops_mlc.runtimes.models import DeploymentEventRow, DeploymentRow, RuntimeRow
from modelops_mlc.store import open_store, utcnow

if TYPE_CHECKING:
    from modelops_mlc.config import Settings

__all__ = ["DEFAULT_FLAVORS", "Runtime", "RuntimeCatalog", "RuntimeStatus"]

RuntimeStatus = Literal["healthy", "unhealthy", "unknown"]
DEFAULT_FLAVORS = ["python_function"]
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")
_STATUSES = ("healthy", "unhealthy", "unknown")


def as_utc(value: dt.datetime | None) -> dt.datetime | None:
    """sqlite hands back naive datetimes; every time in the store is UTC."""
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)


class Runtime(BaseModel):
    """A runtime as the SDK and the CLI see it."""

    name: str
    tags: dict[str, str]
    flavors: list[str]
    endpoints: list[str]
    status: RuntimeStatus
    status_reason: str | None = None
    last_heartbeat: dt.datetime | None = None
    heartbeat_interval: float | None = None
    pid: int | None = None
    created_at: dt.datetime | None = None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def mode(self) -> Literal["batch", "online"]:
        """Online when the runtime has endpoints, batch otherwise."""
        return "online" if self.endpoints else "batch"

    @classmethod
    def from_row(cls, row: RuntimeRow) -> "Runtime":
        return cls(
            name=row.name,
            tags={str(k): str(v) for k, v in (row.tags or {}).items()},
            flavors=list(row.flavors or []),
            endpoints=list(row.endpoints or []),
            status=row.status if row.status in _STATUSES else "unknown",  # type: ignore[arg-type]
            status_reason=row.status_reason,
            last_heartbeat=as_utc(row.last_heartbeat),
            heartbeat_interval=row.heartbeat_interval,
            pid=row.pid,
            created_at=as_utc(row.created_at),
        )


def _check_name(name: str) -> str:
    if not _NAME_RE.match(name or ""):
        raise UsageError(
            f"invalid runtime name {name!r}: use letters, digits, '.', '_' or '-' (at most 200 characters)"
        )
    return name


def _clean_tags(tags: dict[str, Any] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in (tags or {}).items():
        key = str(key).strip()
        if not key:
            raise UsageError("runtime tag keys must not be empty")
        out[key] = str(value).strip()
    return out


def _clean_endpoints(endpoints: list[str] | None) -> list[str]:
    out = []
    for url in endpoints or []:
        url = url.strip().rstrip("/")
        if not re.match(r"^https?://[^/\s]+", url):
            raise UsageError(f"invalid runtime endpoint {url!r}: expected http(s)://host:port")
        out.append(url)
    return out


class RuntimeCatalog:
    """Add, list, heartbeat and retire runtimes in the MLC store."""

    def __init__(self, settings: "Settings") -> None:
        self.settings = settings
        self.store = open_store(settings)

    # -- writes -----------------------------------------------------------------------------
    def add(
        self,
        name: str,
        tags: dict[str, Any] | None = None,
        flavors: list[str] | None = None,
        endpoints: list[str] | None = None,
        *,
        replace: bool = False,
    ) -> Runtime:
        """Add a runtime; an existing name is an error unless ``replace``."""
        return self._put(name, tags, flavors, endpoints, replace=replace, status="unknown")

    def register(
        self,
        name: str,
        tags: dict[str, Any] | None,
        flavors: list[str] | None,
        endpoints: list[str],
        *,
        heartbeat_interval: float,
        pid: int | None = None,
    ) -> Runtime:
        """Upsert a serving runtime (``mlc runtime serve``): its endpoints, tags and first heartbeat."""
        return self._put(name, tags, flavors, endpoints, replace=True, status="healthy",
                         heartbeat_interval=heartbeat_interval, pid=pid, last_heartbeat=utcnow())

    def _put(self, name: str, tags: dict[str, Any] | None, flavors: list[str] | None, endpoints: list[str] | None,
             *, replace: bool, **fields: Any) -> Runtime:
        """Insert runtime ``name``, or overwrite it when ``replace``, with ``fields`` set on its row."""
        _check_name(name)
        clean_tags, clean_endpoints = _clean_tags(tags), _clean_endpoints(endpoints)
        with self.store.session() as s:
            row = s.scalar(select(RuntimeRow).where(RuntimeRow.name == name))
            if row is not None and not replace:
                raise UsageError(
                    f"runtime {name!r} already exists", hint=f"`mlc runtime remove {name}` first, or pick another name"
                )
            if row is None:
                row = RuntimeRow(name=name)
                s.add(row)
            row.tags = clean_tags
            row.flavors = list(DEFAULT_FLAVORS if flavors is None else flavors)
            row.endpoints = clean_endpoints
            row.status_reason = None
            for key, value in fields.items():
                setattr(row, key, value)
            s.flush()
            return Runtime.from_row(row)

    def heartbeat(self, name: str) -> None:
        """Record that ``name`` is alive now."""
        with self.store.session() as s:
            row = self._row(s, name)
            row.last_heartbeat = utcnow()
            row.status = "healthy"
            row.status_reason = None

    def mark(self, name: str, status: RuntimeStatus, reason: str | None = None) -> Runtime:
        """Set a runtime's health by hand (or from the server on shutdown)."""
        if status not in _STATUSES:
            raise UsageError(f"invalid runtime status {status!r}: expected one of {', '.join(_STATUSES)}")
        with self.store.session() as s:
            row = self._row(s, name)
            row.status = status
            row.status_reason = reason
            s.flush()
            return Runtime.from_row(row)

    def remove(self, name: str, *, force: bool = False, actor: str | None = None) -> None:
        """Delete a runtime; with active deployments only when ``force`` (they are retired, by ``actor``:
        default the current one)."""
        from modelops_mlc.insight.actor import actor_name

        actor = actor_name(actor)
        with self.store.session() as s:
            row = self._row(s, name)
            active = list(
                s.scalars(
                    select(DeploymentRow).where(
                        DeploymentRow.runtime == name, DeploymentRow.state.in_(("deploying", "deployed"))
                    )
                )
            )
            if active and not force:
                listed = ", ".join(f"#{d.id} {d.model_name}/{d.model_version}" for d in active)
                raise RuntimeServiceError(
                    f"runtime {name!r} has active deployments: {listed}",
                    hint="roll them back first, or pass --force to retire them",
                )
            for dep in active:
                dep.state = "retired"
                dep.message = f"runtime {name} removed"
                s.add(
                    DeploymentEventRow(
                        deployment_id=dep.id, model_name=dep.model_name, action="retire",
                        detail=f"runtime {name} removed", actor=actor,
                    )
                )
            s.delete(row)

    # -- reads ------------------------------------------------------------------------------
    def get(self, name: str) -> Runtime:
        self.refresh_health()
        with self.store.session() as s:
            return Runtime.from_row(self._row(s, name))

    def list(self) -> list[Runtime]:
        self.refresh_health()
        with self.store.session() as s:
            return [Runtime.from_row(r) for r in s.scalars(select(RuntimeRow).order_by(RuntimeRow.name))]

    def refresh_health(self) -> list[str]:
        """Mark runtimes whose heartbeats stopped as unhealthy; returns the names marked."""
        now = utcnow()
        missed = max(1, int(self.settings.runtime_missed_heartbeats))
        marked: list[str] = []
        with self.store.session() as s:
            rows = s.scalars(
                select(RuntimeRow).where(RuntimeRow.last_heartbeat.is_not(None), RuntimeRow.status == "healthy")
            )
            for row in rows:
                interval = row.heartbeat_interval or self.settings.runtime_heartbeat_interval
                last = as_utc(row.last_heartbeat)
                assert last is not None
                age = (now - last).total_seconds()
                if age > interval * missed:
                    row.status = "unhealthy"
                    row.status_reason = f"missed heartbeats: last one {age:.1f}s ago (interval {interval:g}s)"
                    marked.append(row.name)
        return marked

    @staticmethod
    def _row(s: Any, name: str) -> RuntimeRow:
        row = s.scalar(select(RuntimeRow).where(RuntimeRow.name == name))
        if row is None:
            raise NotFoundError(f"no runtime named {name!r}", hint="`mlc runtime list` shows the runtimes in the catalog")
        return row
