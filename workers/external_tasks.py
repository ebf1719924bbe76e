"""The external-task REST calls the runner makes, async over one pooled httpx client.

Why not camunda-external-task-client-python3's ``AsyncExternalTaskClient`` (we keep its
``ExternalTask`` wrapper for the fetched records):

* it opens a new ``httpx.AsyncClient`` for every request, so no connection is ever reused;
* its fetch hard-codes ``maxTasks: 1``, so filling N free slots costs N long-poll round trips;
* it formats variables as untyped ``{"value": v}``, which the engine rejects for dicts and lists
  (we type them with :func:`modelops_mlc.engine.variables.to_engine`, as the SDK does);
* it has no ``extendLock`` and no ``unlock``, which lock extension and graceful stop need;
* its errors are bare ``HTTPError`` s without the engine's message and type.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import httpx

from modelops_mlc.errors import EngineAuthError, EngineError, EngineUnavailable, UsageError

if TYPE_CHECKING:
    from modelops_mlc.config import Settings

__all__ = ["ExternalTaskApi", "is_lock_lost"]

log = logging.getLogger(__name__)


def is_lock_lost(exc: EngineError) -> bool:
    """The task is gone or locked by another worker: nothing of ours to report on any more."""
    if exc.status == 404:
        return True
    text = (exc.message or "").lower()
    # the engine's words (7.24): "... It is locked by worker 'x'.", "External task with id ... does not exist"
    return any(s in text for s in ("locked by worker", "does not exist", "is not locked", "lock has expired"))


class ExternalTaskApi:
    """``/external-task`` endpoints for one worker id; close it with :meth:`aclose`."""

    def __init__(self, settings: "Settings", worker_id: str, *, max_connections: int = 16) -> None:
        self.worker_id = worker_id
        self.url = settings.engine_url
        self._timeout = settings.engine_request_timeout
        headers = {"Accept": "application/json"}
        auth: httpx.Auth | None = None
        if settings.engine_auth == "basic":
            auth = httpx.BasicAuth(settings.engine_user, settings.engine_password.get_secret_value())
        elif settings.engine_auth == "bearer":
            if not settings.engine_token:
                raise UsageError("MLC_ENGINE_AUTH=bearer needs MLC_ENGINE_TOKEN")
            headers["Authorization"] = f"Bearer {settings.engine_token.get_secret_value()}"
        self._http = httpx.AsyncClient(
            base_url=self.url,
            headers=headers,
            auth=auth,
            timeout=self._timeout,
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _call(self, method: str, path: str, *, json: Any = None, params: Any = None,
                    timeout: float | None = None) -> Any:
        try:
            response = await self._http.request(method, path, json=json, params=params,
                                                timeout=timeout if timeout is not None else self._timeout)
        except httpx.TransportError as exc:
            raise EngineUnavailable(f"cannot reach the engine at {self.url}: {type(exc).__name__}") from exc
        if response.status_code >= 400:
            try:
                body = response.json()
                message, etype = body.get("message") or response.reason_phrase, body.get("type")
            except ValueError:
                message, etype = response.text.strip() or response.reason_phrase, None
            cls = EngineAuthError if response.status_code in (401, 403) else EngineError
            raise cls(f"{method} {path}: {message}", status=response.status_code, engine_type=etype)
        if response.status_code == 204 or not response.content:
            return None
        return response.json()

    async def fetch_and_lock(self, topics: list[dict[str, Any]], max_tasks: int, long_poll_ms: int) -> list[dict[str, Any]]:
        """Lock up to ``max_tasks`` tasks of ``topics``, waiting up to ``long_poll_ms`` for one to appear."""
        body = {
            "workerId": self.worker_id,
            "maxTasks": max_tasks,
            "usePriority": True,
            "asyncResponseTimeout": long_poll_ms,
            "topics": topics,
        }
        result = await self._call("POST", "/external-task/fetchAndLock", json=body,
                                  timeout=long_poll_ms / 1000 + self._timeout)
        return list(result or [])

    async def complete(self, task_id: str, variables: dict[str, Any]) -> None:
        await self._call("POST", f"/external-task/{task_id}/complete",
                         json={"workerId": self.worker_id, "variables": variables})

    async def bpmn_error(self, task_id: str, code: str, message: str, variables: dict[str, Any]) -> None:
        await self._call("POST", f"/external-task/{task_id}/bpmnError",
                         json={"workerId": self.worker_id, "errorCode": code, "errorMessage": message,
                               "variables": variables})

    async def failure(self, task_id: str, message: str, details: str | None, retries: int, retry_timeout_ms: int) -> None:
        body: dict[str, Any] = {"workerId": self.worker_id, "errorMessage": message, "retries": retries,
                                "retryTimeout": retry_timeout_ms}
        if details:
            body["errorDetails"] = details
        await self._call("POST", f"/external-task/{task_id}/failure", json=body)

    async def extend_lock(self, task_id: str, duration_ms: int) -> None:
        await self._call("POST", f"/external-task/{task_id}/extendLock",
                         json={"workerId": self.worker_id, "newDuration": duration_ms})

    async def unlock(self, task_id: str) -> None:
        await self._call("POST", f"/external-task/{task_id}/unlock")

    async def locked_by_me(self) -> list[str]:
        """Ids of the tasks the engine still counts as locked by this worker id."""
        rows = await self._call("GET", "/external-task", params={"workerId": self.worker_id, "locked": "true"})
        return [r["id"] for r in rows or []]
