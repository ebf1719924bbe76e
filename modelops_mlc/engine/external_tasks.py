"""The engine's external-task API, async, for the worker daemon and for teams writing their own
Python worker: fetchAndLock, complete, failure, bpmnError, extendLock and unlock.

::

    async with ExternalTaskApi(settings, "my-worker") as api:
        for task in await api.fetch_and_lock([Subscription("score", lock_duration_ms=60_000)], 10):
            await api.complete(task.get_task_id(), {"SCORE": 0.93})

Fetched tasks are camunda-external-task-client-python3's ``ExternalTask`` records, with the
fields it has no getter for added (:class:`LockedTask`). Its client
(``AsyncExternalTaskClient``) is not used, for these reasons:

* it opens a new ``httpx.AsyncClient`` for every request, so no connection is ever reused;
* its fetch hard-codes ``maxTasks: 1``, so filling N free slots costs N long-poll round trips;
* it sends variables untyped (``{"value": v}``), which the engine rejects for dicts and lists;
  here they are typed with :func:`~modelops_mlc.engine.variables.to_engine`, as everywhere else;
* it has no ``extendLock`` and no ``unlock``;
* its errors are bare ``HTTPError`` s without the engine's message and type; here they are the
  SDK's :class:`~modelops_mlc.errors.EngineError` tree, from :mod:`.gateway`.

The transport is aiohttp rather than httpx, which the rest of the SDK uses: a worker makes one
call per task at least, and on a busy worker httpx's per-request CPU (several times
aiohttp's, bench/RESULTS.md) was what held throughput down, on cores the engine shares. Auth
headers and error mapping still come from :mod:`.gateway`.

On a cluster (several URLs in ``MLC_ENGINE_URL``) each fetch starts at the next node in turn and
every call goes on to the next node when one does not answer. Every call here may be repeated
safely: the engine checks the lock and the worker id, so a complete whose answer was lost and
that is sent again finds the task gone.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from camunda.external_task.external_task import ExternalTask

from modelops_mlc.engine import gateway
from modelops_mlc.engine.variables import from_engine, to_engine

if TYPE_CHECKING:
    import aiohttp

    from modelops_mlc.config import Settings

__all__ = ["ExternalTaskApi", "LockedTask", "Subscription"]


@dataclass(frozen=True)
class Subscription:
    """One topic of a fetchAndLock, and what to lock and fetch with it."""

    topic: str
    lock_duration_ms: int = 60_000
    variables: tuple[str, ...] | None = None  # only these variables (None: all)
    process_definition_keys: tuple[str, ...] | None = None  # only tasks of these processes (None: any)
    include_extension_properties: bool = True

    def to_engine(self) -> dict[str, Any]:
        spec: dict[str, Any] = {
            "topicName": self.topic,
            "lockDuration": self.lock_duration_ms,
            "includeExtensionProperties": self.include_extension_properties,
        }
        if self.variables is not None:
            spec["variables"] = list(self.variables)
        if self.process_definition_keys:
            spec["processDefinitionKeyIn"] = list(self.process_definition_keys)
        return spec


class LockedTask(ExternalTask):
    """A task locked by fetchAndLock: the library's record plus the fields it has no getter for."""

    def get_activity_instance_id(self) -> str:
        return str(self._context.get("activityInstanceId") or "")

    def get_process_definition_key(self) -> str | None:
        return self._context.get("processDefinitionKey")

    def get_retries(self) -> int | None:
        """Retries left as the engine counts them; None before the first failure."""
        return self._context.get("retries")

    def typed_variables(self) -> dict[str, Any]:
        """The fetched variables as Python values (JSON parsed, dates as datetimes)."""
        return from_engine(self._context.get("variables"))


class ExternalTaskApi:
    """``/external-task`` endpoints for one worker id over one pooled async session."""

    def __init__(self, settings: "Settings", worker_id: str, *, max_connections: int = 16) -> None:
        self.worker_id = worker_id
        self.url = settings.engine_url
        self._nodes = gateway.Nodes(settings.engine_url)
        self._timeout = settings.engine_request_timeout
        self._headers = gateway.headers(settings)
        self._max_connections = max_connections
        self._session: "aiohttp.ClientSession | None" = None

    def _open(self) -> "aiohttp.ClientSession":
        """The session, created in the running loop on first use (aiohttp binds it to a loop)."""
        import aiohttp

        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                headers=self._headers,
                connector=aiohttp.TCPConnector(limit=self._max_connections),
            )
        return self._session

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def __aenter__(self) -> "ExternalTaskApi":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def _call(self, method: str, path: str, *, body: Any = None, params: Mapping[str, str] | None = None,
                    timeout: float | None = None, spread: bool = False) -> Any:
        import aiohttp

        session = self._open()
        data = None if body is None else json.dumps(body).encode()
        headers = None if data is None else {"Content-Type": "application/json"}
        for node in self._nodes.spread() if spread else self._nodes.order():
            try:
                async with session.request(method, node + path, data=data, headers=headers, params=params,
                                           timeout=aiohttp.ClientTimeout(total=timeout or self._timeout)) as response:
                    status, raw, reason = response.status, await response.read(), response.reason or ""
            except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                sent = not isinstance(exc, aiohttp.ClientConnectorError)
                self._nodes.failed(gateway.NodeDown(node, sent=sent), replay=True)
                continue
            self._nodes.answered(node)
            return gateway.answer(status, raw, what=f"{method} {path}", reason=reason)
        raise self._nodes.unreachable()

    async def fetch_and_lock(
        self, subscriptions: Sequence[Subscription], max_tasks: int, long_poll_ms: int = 0
    ) -> list[LockedTask]:
        """Lock up to ``max_tasks`` tasks of the subscribed topics, waiting up to ``long_poll_ms``
        for one to appear."""
        body = {
            "workerId": self.worker_id,
            "maxTasks": max_tasks,
            "usePriority": True,
            "asyncResponseTimeout": long_poll_ms,
            "topics": [s.to_engine() for s in subscriptions],
        }
        rows = await self._call("POST", "/external-task/fetchAndLock", body=body,
                                timeout=long_poll_ms / 1000 + self._timeout, spread=True)
        return [LockedTask(row) for row in rows or []]

    async def complete(self, task_id: str, variables: Mapping[str, Any] | None = None) -> None:
        await self._call("POST", f"/external-task/{task_id}/complete",
                         body={"workerId": self.worker_id, "variables": to_engine(variables)})

    async def bpmn_error(self, task_id: str, code: str, message: str,
                         variables: Mapping[str, Any] | None = None) -> None:
        await self._call("POST", f"/external-task/{task_id}/bpmnError",
                         body={"workerId": self.worker_id, "errorCode": code, "errorMessage": message,
                               "variables": to_engine(variables)})

    async def failure(self, task_id: str, message: str, details: str | None = None, *, retries: int,
                      retry_timeout_ms: int = 0) -> None:
        """Report a failure; at ``retries`` 0 the engine raises an incident."""
        body: dict[str, Any] = {"workerId": self.worker_id, "errorMessage": message, "retries": retries,
                                "retryTimeout": retry_timeout_ms}
        if details:
            body["errorDetails"] = details
        await self._call("POST", f"/external-task/{task_id}/failure", body=body)

    async def extend_lock(self, task_id: str, duration_ms: int) -> None:
        await self._call("POST", f"/external-task/{task_id}/extendLock",
                         body={"workerId": self.worker_id, "newDuration": duration_ms})

    async def unlock(self, task_id: str) -> None:
        await self._call("POST", f"/external-task/{task_id}/unlock")

    async def locked_by_me(self) -> list[str]:
        """Ids of the tasks the engine still counts as locked by this worker id."""
        rows = await self._call("GET", "/external-task", params={"workerId": self.worker_id, "locked": "true"})
        return [r["id"] for r in rows or []]
