"""HTTP client to a runtime's model server: the deployment manager's admin and smoke calls, and
:func:`predict`, which sends rows to a model wherever its runtime serves now.

A call that cannot reach the server says which runtime it wanted and what the runtime catalog
knows of it: where the runtime serves now when it moved, else its last heartbeat and status.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import TYPE_CHECKING, Any

import httpx

from modelops_mlc.errors import DeployFailedError, MlcError, NotFoundError, RuntimeServiceError, UsageError

if TYPE_CHECKING:
    from modelops_mlc.config import Settings

__all__ = ["AdminUnavailable", "RuntimeClient", "SMOKE_HEADER", "predict", "response_reason", "unreachable"]

SMOKE_HEADER = "x-mlc-smoke"  # marks the deployment manager's smoke requests: answered, not logged


def response_reason(resp: httpx.Response) -> str:
    """Why a runtime refused a request: the ``error`` of its JSON answer, else the start of its text."""
    try:
        body = resp.json()
        if isinstance(body, dict):
            return str(body.get("error") or body)
    except ValueError:
        pass
    return resp.text[:300]


class AdminUnavailable(Exception):
    """The runtime's admin API refused us (no token, or admin disabled): fall back to polling."""


def _ago(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s ago"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min ago"
    return f"{seconds / 3600:.0f} h ago"


def unreachable(settings: "Settings | None", runtime: str, endpoint: str) -> str:
    """Why ``endpoint`` of ``runtime`` does not answer, in the runtime catalog's words."""
    said = f"runtime {runtime!r} is unreachable at {endpoint}"
    if settings is None:
        return said
    from modelops_mlc.runtimes.catalog import RuntimeCatalog

    try:
        rt = RuntimeCatalog(settings).get(runtime)
    except NotFoundError:
        return f"{said} (it is not in the runtime catalog any more)"
    except MlcError:
        return said
    if rt.endpoints and endpoint not in rt.endpoints:
        return f"{said}: it serves at {', '.join(rt.endpoints)} now"
    facts = []
    if rt.last_heartbeat is not None:
        age = (dt.datetime.now(dt.timezone.utc) - rt.last_heartbeat).total_seconds()
        facts.append(f"last heartbeat {_ago(max(0.0, age))}")
    facts.append(f"status {rt.status}" + (f": {rt.status_reason}" if rt.status_reason else ""))
    return f"{said} ({'; '.join(facts)})"


class RuntimeClient:
    """Admin and inference calls to one runtime endpoint; failures raise ``failure`` (DeployFailedError).

    With ``settings``, a server that cannot be reached is described from the runtime catalog.
    """

    def __init__(self, runtime: str, endpoint: str, token: str | None, *, timeout: float = 120.0,
                 settings: "Settings | None" = None, failure: type[MlcError] = DeployFailedError) -> None:
        self.runtime = runtime
        self.endpoint = endpoint.rstrip("/")
        self.token = token
        self.timeout = timeout
        self.settings = settings
        self.failure = failure
        self._http = httpx.Client(base_url=self.endpoint, timeout=httpx.Timeout(timeout, connect=5.0))

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> "RuntimeClient":
        return self

    def __exit__(self, *_: Any) -> None:
        self.close()

    def _admin_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def _call(self, method: str, path: str, **kw: Any) -> httpx.Response:
        try:
            return self._http.request(method, path, **kw)
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            raise self.failure(unreachable(self.settings, self.runtime, self.endpoint)) from exc
        except httpx.HTTPError as exc:
            raise self.failure(
                f"runtime {self.runtime!r} at {self.endpoint} did not answer: {type(exc).__name__}: {exc}"
            ) from exc

    def load(self, deployment_id: int) -> dict[str, Any]:
        """Ask the server to load a deployment now; AdminUnavailable when the admin API refuses us."""
        if not self.token:
            raise AdminUnavailable("no admin token configured")
        resp = self._call("POST", f"/admin/deployments/{deployment_id}/load", headers=self._admin_headers())
        if resp.status_code in (401, 403):
            raise AdminUnavailable(response_reason(resp))
        if resp.status_code != 200:
            raise DeployFailedError(
                f"runtime {self.runtime} could not load deployment {deployment_id}: {response_reason(resp)}"
            )
        return resp.json()

    def wait_ready(self, name: str, version: str, timeout: float, poll: float = 0.2) -> None:
        """Poll the version's V2 ready endpoint until it answers 200 (the server reconciles by itself)."""
        deadline = time.monotonic() + timeout
        last = "no answer"
        while time.monotonic() < deadline:
            resp = self._call("GET", f"/v2/models/{name}/versions/{version}/ready")
            if resp.status_code == 200:
                return
            last = response_reason(resp)
            if "failed to load" in last:
                raise DeployFailedError(last)
            time.sleep(poll)
        raise DeployFailedError(f"runtime {self.runtime} did not load {name}/{version} within {timeout:g}s: {last}")

    def wait_serving(self, name: str, timeout: float, poll: float = 0.2) -> bool:
        """Poll the model's V2 ready endpoint until requests to ``name`` are routed; False on timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._call("GET", f"/v2/models/{name}/ready").status_code == 200:
                return True
            time.sleep(poll)
        return False

    def infer_v2(self, name: str, version: str | None, payload: dict[str, Any],
                 headers: dict[str, str] | None = None) -> httpx.Response:
        path = f"/v2/models/{name}/versions/{version}/infer" if version else f"/v2/models/{name}/infer"
        return self._call("POST", path, json=payload, headers=headers)

    def reconcile(self) -> bool:
        """Tell the server the desired state changed; False when it could not be told (it polls anyway)."""
        if not self.token:
            return False
        try:
            resp = self._http.post("/admin/reconcile", headers=self._admin_headers())
        except httpx.HTTPError:
            return False
        return resp.status_code == 200


def predict(settings: "Settings", model: str, rows: dict[str, Any], *, runtime: str | None = None,
            version: str | None = None, timeout: float = 60.0) -> dict[str, Any]:
    """Predict ``rows`` ({"columns", "data"}) with ``model`` on the runtime serving it, at the
    endpoint that runtime has now; returns the V2 answer. RuntimeServiceError when it cannot."""
    from modelops_mlc.runtimes.catalog import RuntimeCatalog
    from modelops_mlc.runtimes.deployments import DeploymentManager

    serving = sorted({d.runtime for d in DeploymentManager(settings).list(model, runtime=runtime, state="deployed")
                      if d.mode == "online" and not d.shadow})
    where = f" on runtime {runtime!r}" if runtime else ""
    if not serving:
        raise NotFoundError(f"model {model!r} has no online deployment{where}",
                            hint="`mlc deployment list --model NAME` shows where it is deployed")
    if len(serving) > 1:
        raise UsageError(f"model {model!r} serves on {len(serving)} runtimes ({', '.join(serving)})",
                         hint="name the runtime to ask (--runtime)")
    rt = RuntimeCatalog(settings).get(serving[0])
    if not rt.endpoints:
        raise RuntimeServiceError(f"runtime {rt.name!r} has no endpoint")
    payload = v2_payload(rows)
    payload.pop("id", None)  # the server gives the request its own id
    with RuntimeClient(rt.name, rt.endpoints[0], None, timeout=timeout, settings=settings,
                       failure=RuntimeServiceError) as client:
        resp = client.infer_v2(model, version, payload)
    if resp.status_code != 200:
        raise RuntimeServiceError(f"runtime {rt.name!r} refused the request ({resp.status_code}): "
                                  f"{response_reason(resp)}")
    return resp.json()


def v2_payload(example: dict[str, Any]) -> dict[str, Any]:
    """A V2 infer request for example rows {"columns", "data"}: one named tensor per column."""
    rows = example["data"]
    columns = example.get("columns")
    if not columns:
        width = len(rows[0]) if rows and isinstance(rows[0], list) else 1
        flat = [v for row in rows for v in (row if isinstance(row, list) else [row])]
        return {"inputs": [{"name": "input-0", "shape": [len(rows), width], "datatype": _datatype(flat), "data": flat}]}
    inputs = []
    for j, col in enumerate(columns):
        values = [row[j] for row in rows]
        inputs.append({"name": col, "shape": [len(rows)], "datatype": _datatype(values), "data": values})
    return {"id": "mlc-smoke", "inputs": inputs}


def _datatype(values: list[Any]) -> str:
    if all(isinstance(v, bool) for v in values):
        return "BOOL"
    if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return "INT64"
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        return "FP64"
    return "BYTES"
