"""The runtime's admin API needs MLC_RUNTIME_ADMIN_TOKEN: a missing, wrong or differently sent
token is refused with 401 and changes nothing (the served models stay as they were); the right
token, in either header, runs the operation. The server is the real ASGI app, in process; the
store behind it is empty, so a reconcile that ran would drop the hand-placed models (the fixture of
test_runtime_server_app)."""

from __future__ import annotations

import warnings

import pytest

with warnings.catch_warnings():  # starlette's notice about its httpx dependency
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from modelops_mlc.runtimes.server import ModelServer
from tests.unit.runtimes.test_runtime_server_app import TOKEN, server  # noqa: F401 (server: a fixture)

SERVED = {1: ("bc", "1", "deployed", 100), 2: ("bc", "2", "deploying", 0)}  # as the fixture placed them

REFUSED = [
    {},
    {"Authorization": "Bearer "},
    {"Authorization": "Bearer wrong-token-00000"},
    {"Authorization": f"Bearer {TOKEN[:-1]}"},
    {"Authorization": f"Bearer {TOKEN}x"},
    {"Authorization": f"Basic {TOKEN}"},
    {"X-MLC-Admin-Token": "wrong"},
    {"X-Other-Token": TOKEN},
]


def test_without_the_token_nothing_happens(server: ModelServer) -> None:  # noqa: F811
    client = TestClient(server.app)  # no `with`: the lifespan (store loops) is not started
    for method, path in [("post", "/admin/reconcile"), ("post", "/admin/deployments/1/load"), ("get", "/admin/status")]:
        for headers in REFUSED:
            resp = getattr(client, method)(path, headers=headers)
            assert resp.status_code == 401, (path, headers, resp.text)
            assert "MLC_RUNTIME_ADMIN_TOKEN" in resp.json()["error"] and TOKEN not in resp.text
    assert server.active == SERVED and ("bc", "1") in server.predictors
    assert client.get("/v2/models/bc/ready").json() == {"name": "bc", "ready": True}


@pytest.mark.parametrize("headers", [{"Authorization": f"Bearer {TOKEN}"}, {"X-MLC-Admin-Token": TOKEN}])
def test_the_right_token_reconciles(server: ModelServer, headers: dict) -> None:  # noqa: F811
    client = TestClient(server.app)
    resp = client.post("/admin/reconcile", headers=headers)
    assert resp.status_code == 200, resp.text
    # the (empty) store wins: the model nobody deployed through the store is no longer served
    assert server.active == {} and server.predictors == {}
    assert client.get("/v2/models/bc/ready").status_code == 404
