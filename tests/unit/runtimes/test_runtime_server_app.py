"""The model server's ASGI app in-process (Starlette TestClient), with predictors put in place by
hand: protocols, 4xx for bad payloads, admin token, metrics, canary routing."""

from __future__ import annotations

import collections
import warnings

import numpy as np
import pytest
from pydantic import SecretStr
with warnings.catch_warnings():  # starlette's notice about its httpx dependency
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from modelops_mlc.config import Settings
from modelops_mlc.runtimes.server import ModelServer, Served, TrafficRoute

TOKEN = "unit-admin-token"


@pytest.fixture
def server(tmp_path, make_predictor):
    settings = Settings(home=tmp_path, store_url=f"sqlite:///{tmp_path}/mlc.db", runtime_admin_token=SecretStr(TOKEN))
    srv = ModelServer(settings, "rt-unit", heartbeat=False)
    p1, p2 = make_predictor("bc", "1"), make_predictor("bc", "2")
    srv.predictors = {("bc", "1"): p1, ("bc", "2"): p2}
    srv.active = {1: ("bc", "1", "deployed", 100), 2: ("bc", "2", "deploying", 0)}
    srv.routes = {"bc": TrafficRoute([Served(1, "bc", "1", 100, "deployed", p1)])}
    srv.ready = True
    return srv


@pytest.fixture
def client(server):
    return TestClient(server.app)  # no `with`: the lifespan (store loops) is not started


def test_v2_and_invocations_equal_model_predict(client, small_model):
    X, model, cols = small_model
    rows = X.iloc[10:30]
    expected = model.predict(rows).tolist()
    body = {"id": "r1", "inputs": [{"name": "x", "shape": [20, 6], "datatype": "FP64",
                                    "data": rows.to_numpy().ravel().tolist()}]}
    resp = client.post("/v2/models/bc/infer", json=body)
    assert resp.status_code == 200, resp.text
    out = resp.json()
    assert out["model_name"] == "bc" and out["model_version"] == "1" and out["id"] == "r1"
    assert out["outputs"][0]["shape"] == [20] and out["outputs"][0]["datatype"] == "INT64"
    assert out["outputs"][0]["data"] == expected
    assert resp.headers["x-model-version"] == "1" and resp.headers["x-deployment-id"] == "1"

    resp = client.post("/invocations", json={"dataframe_split": {"columns": cols, "data": rows.to_numpy().tolist()}})
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"predictions": expected}
    resp = client.post("/invocations?model=bc", json={"inputs": rows.to_dict(orient="list")})
    assert resp.json()["predictions"] == expected
    csv = rows.to_csv(index=False)
    resp = client.post("/invocations", content=csv, headers={"content-type": "text/csv"})
    assert resp.json()["predictions"] == expected


def test_versioned_path_reaches_a_deploying_version(client):
    body = {"inputs": [{"name": "x", "shape": [1, 6], "datatype": "FP64", "data": [15, 20, 100, 700, 0.1, 0.1]}]}
    resp = client.post("/v2/models/bc/versions/2/infer", json=body)
    assert resp.status_code == 200 and resp.json()["model_version"] == "2"
    assert client.get("/v2/models/bc/versions/2/ready").json()["ready"] is True


@pytest.mark.parametrize(
    "path, kwargs, status",
    [
        ("/v2/models/bc/infer", {"content": b"{not json"}, 400),
        ("/v2/models/bc/infer", {"json": {"inputs": []}}, 400),
        ("/v2/models/bc/infer", {"json": {"inputs": [{"name": "x", "shape": [1, 3], "datatype": "FP64",
                                                      "data": [1, 2, 3]}]}}, 400),
        ("/v2/models/bc/infer", {"json": {"inputs": [{"name": "x", "shape": [1, 6], "datatype": "BYTES",
                                                      "data": ["a", "b", "c", "d", "e", "f"]}]}}, 400),
        ("/v2/models/nope/infer", {"json": {"inputs": []}}, 404),
        ("/v2/models/bc/versions/9/infer", {"json": {"inputs": []}}, 404),
        ("/invocations", {"json": {"dataframe_split": {"columns": ["a"], "data": [[1]]}}}, 400),
        ("/invocations", {"json": {"something": 1}}, 400),
        ("/invocations", {"json": [1, 2]}, 400),
        ("/invocations", {"content": b"", "headers": {"content-type": "application/json"}}, 400),
        ("/invocations", {"content": b"x", "headers": {"content-type": "application/xml"}}, 415),
        ("/invocations", {"json": {"dataframe_records": [{"mean_radius": None}]}}, 400),
        ("/invocations", {"content": b'{"inputs": [[1e400, 1, 1, 1, 1, 1]]}'}, 400),
    ],
)
def test_bad_payloads_get_4xx_with_a_reason(client, path, kwargs, status):
    resp = client.post(path, **kwargs)
    assert resp.status_code == status, resp.text
    assert resp.json()["error"]


def test_health_and_metadata(client, server):
    assert client.get("/v2/health/live").json() == {"live": True}
    assert client.get("/v2/health/ready").status_code == 200
    assert client.get("/ping").status_code == 200
    meta = client.get("/v2/models/bc").json()
    assert meta["name"] == "bc" and meta["versions"] == ["1"] and len(meta["inputs"]) == 6
    assert client.get("/v2/models/bc/ready").json() == {"name": "bc", "ready": True}
    assert client.get("/v2/models/other/ready").status_code == 404
    server.ready = False
    assert client.get("/v2/health/ready").status_code == 503


def test_admin_needs_the_token(client):
    assert client.get("/admin/status").status_code == 401
    assert client.get("/admin/status", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.post("/admin/reconcile", headers={"X-MLC-Admin-Token": "wrong"}).status_code == 401
    resp = client.get("/admin/status", headers={"Authorization": f"Bearer {TOKEN}"})
    assert resp.status_code == 200 and resp.json()["runtime"] == "rt-unit"


def test_admin_disabled_without_a_configured_token(tmp_path):
    srv = ModelServer(Settings(home=tmp_path, runtime_admin_token=None), "rt-x", heartbeat=False)
    resp = TestClient(srv.app).post("/admin/reconcile", headers={"Authorization": "Bearer anything"})
    assert resp.status_code == 403
    assert "MLC_RUNTIME_ADMIN_TOKEN" in resp.json()["error"]


def test_metrics_count_requests_errors_and_latency(client):
    body = {"inputs": [{"name": "x", "shape": [1, 6], "datatype": "FP64", "data": [15, 20, 100, 700, 0.1, 0.1]}]}
    for _ in range(3):
        client.post("/v2/models/bc/infer", json=body)
    client.post("/v2/models/bc/infer", json={"inputs": "bad"})
    text = client.get("/metrics").text
    assert 'mlc_inference_requests_total{model="bc",protocol="v2",version="1"} 4.0' in text
    assert 'mlc_inference_errors_total{model="bc",protocol="v2",status="400",version="1"} 1.0' in text
    assert 'mlc_inference_latency_seconds_count{model="bc",version="1"} 4.0' in text


def test_traffic_route_split_and_stickiness(make_predictor):
    p = make_predictor()
    route = TrafficRoute([Served(1, "m", "1", 90, "deployed", p), Served(2, "m", "2", 10, "deployed", p)])
    counts = collections.Counter(route.pick(None).version for _ in range(4000))
    assert 4000 * 0.1 - 5 * np.sqrt(4000 * 0.09) < counts["2"] < 4000 * 0.1 + 5 * np.sqrt(4000 * 0.09)
    keyed = collections.Counter(route.pick(f"customer-{i}").version for i in range(4000))
    assert 300 < keyed["2"] < 500
    assert {route.pick("customer-7").version for _ in range(50)} == {route.pick("customer-7").version}
    zero = TrafficRoute([Served(1, "m", "1", 0, "deployed", p), Served(2, "m", "2", 0, "deployed", p)])
    assert {zero.pick(str(i)).version for i in range(200)} == {"1", "2"}


def test_reconcile_follows_the_store(tmp_path, make_predictor, monkeypatch):
    from modelops_mlc.runtimes.models import DeploymentRow
    from modelops_mlc.runtimes.predictor import Predictor
    from modelops_mlc.store import open_store

    settings = Settings(home=tmp_path, store_url=f"sqlite:///{tmp_path}/mlc.db")
    store = open_store(settings)
    with store.session() as s:
        s.add_all([
            DeploymentRow(id=1, model_name="bc", model_version="1", runtime="rt", mode="online", state="deployed",
                          traffic_weight=90),
            DeploymentRow(id=2, model_name="bc", model_version="2", runtime="rt", mode="online", state="deployed",
                          traffic_weight=10),
            DeploymentRow(id=3, model_name="bad", model_version="1", runtime="rt", mode="online", state="deploying"),
            DeploymentRow(id=4, model_name="bc", model_version="3", runtime="other", mode="online", state="deployed"),
            DeploymentRow(id=5, model_name="bc", model_version="4", runtime="rt", mode="online", state="retired"),
        ])
    loads: list[tuple[str, str]] = []

    def fake_load(_settings, name, version):
        loads.append((name, version))
        if name == "bad":
            raise RuntimeError("artifacts gone")
        return make_predictor(name, version)

    monkeypatch.setattr(Predictor, "load", fake_load)
    srv = ModelServer(settings, "rt", heartbeat=False)
    status = srv.reconcile()
    assert status["ready"] and sorted(loads) == [("bad", "1"), ("bc", "1"), ("bc", "2")]
    assert status["errors"] == {"bad/1": "RuntimeError: artifacts gone"}
    route = srv.routes["bc"]
    assert [(e.version, e.weight) for e in route.entries] == [("1", 90), ("2", 10)]
    assert "bad" not in srv.routes
    srv.reconcile()
    assert len(loads) == 3  # nothing changed: nothing reloaded, the failed load waits for its retry
    srv.reconcile(force=True)
    assert loads[-1] == ("bad", "1")

    with store.session() as s:
        s.get(DeploymentRow, 1).state = "retired"
        s.get(DeploymentRow, 2).traffic_weight = 100
        s.get(DeploymentRow, 3).state = "failed"
    srv.reconcile()
    assert [(e.version, e.weight) for e in srv.routes["bc"].entries] == [("2", 100)]
    assert set(srv.predictors) == {("bc", "2")} and srv.load_errors == {}
