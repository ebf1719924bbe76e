"""HTTP client the deployment manager uses to talk to a runtime's model server."""

from __future__ import annotations

import time
from typing import Any

import httpx

from modelops_mlc.errors import DeployFailedError

__all__ = ["AdminUnavailable", "RuntimeClient", "SMOKE_HEADER", "response_reason"]

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


class RuntimeClient:
    """Admin and inference calls to one runtime endpoint; failures become DeployFailedError."""

    def __init__(self, runtime: str, endpoint: str, token: str | None, *, timeout: float = 120.0) -> None:
        self.runtime = runtime
        self.endpoint = endpoint.rstrip("/")
        self.token = token
        self.timeout = timeout
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
        except httpx.HTTPError as exc:
            raise DeployFailedError(
                f"runtime {self.runtime} at {self.endpoint} is unreachable: {type(exc).__name__}: {exc}"
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
