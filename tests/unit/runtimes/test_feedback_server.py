"""The model server's ASGI app in-process with its prediction log running on a real sqlite store:
every answer carries a request id and is logged; feedback POSTed to the server joins it."""

from __future__ import annotations

import warnings

import pytest
from sqlalchemy import select

with warnings.catch_warnings():  # starlette's notice about its httpx dependency
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from modelops_mlc.config import Settings
from modelops_mlc.runtimes.feedback import FeedbackStore
from modelops_mlc.runtimes.models import PredictionRow
from modelops_mlc.runtimes.server import ModelServer, Served, TrafficRoute
from modelops_mlc.store import open_store


@pytest.fixture
def server(tmp_path, make_predictor):
    settings = Settings(home=tmp_path, store_url=f"sqlite:///{tmp_path}/mlc.db")
    srv = ModelServer(settings, "rt-feedback", heartbeat=False)
    p1 = make_predictor("bc", "1")
    srv.predictors = {("bc", "1"): p1}
    srv.active = {7: ("bc", "1", "deployed", 100)}
    srv.routes = {"bc": TrafficRoute([Served(7, "bc", "1", 100, "deployed", p1)])}
    srv.ready = True
    srv.predlog.start()  # the lifespan would reconcile the hand-placed predictors away
    yield srv
    srv.predlog.stop()


@pytest.fixture
def client(server):
    return TestClient(server.app)


def _logged(server) -> list[tuple[str, int, int | None, str, str, str, object]]:
    assert server.predlog.flush()
    with open_store(server.settings).session() as s:
        return [(r.request_id, r.row, r.deployment_id, r.model_name, r.model_version, r.role, r.output)
                for r in s.scalars(select(PredictionRow).order_by(PredictionRow.id))]


def _v2(rows, request_id=None):
    body = {"inputs": [{"name": "x", "shape": [len(rows), 6], "datatype": "FP64",
                        "data": rows.to_numpy().ravel().tolist()}]}
    if request_id is not None:
        body["id"] = request_id
    return body


def test_request_ids_are_returned_and_predictions_logged_per_row(client, server, small_model):
    X, model, cols = small_model
    rows = X.iloc[:3]
    expected = model.predict(rows).tolist()

    by_body = client.post("/v2/models/bc/infer", json=_v2(rows, "body-id"), headers={"X-Request-Id": "header-id"})
    assert by_body.json()["id"] == "body-id" and by_body.headers["x-request-id"] == "body-id"
    by_header = client.post("/v2/models/bc/infer", json=_v2(rows), headers={"X-Request-Id": "header-id"})
    assert by_header.json()["id"] == "header-id" and by_header.headers["x-request-id"] == "header-id"
    generated = client.post("/v2/models/bc/infer", json=_v2(rows))
    new_id = generated.headers["x-request-id"]
    assert len(new_id) == 32 and generated.json()["id"] == new_id
    mlflow = client.post("/invocations", json={"dataframe_split": {"columns": cols, "data": rows.to_numpy().tolist()}})
    assert mlflow.json() == {"predictions": expected}
    mlflow_id = mlflow.headers["x-request-id"]
    assert mlflow_id not in (new_id, "header-id")

    logged = _logged(server)
    assert logged == [
        (rid, i, 7, "bc", "1", "primary", expected[i])
        for rid in ("body-id", "header-id", new_id, mlflow_id) for i in range(3)
    ]


def test_smoke_requests_and_refused_requests_are_not_logged(client, server, small_model):
    X, _, _ = small_model
    assert client.post("/v2/models/bc/infer", json=_v2(X.iloc[:1], "smoke"), headers={"X-MLC-Smoke": "1"}).status_code == 200
    bad = client.post("/v2/models/bc/infer", json={"id": "bad", "inputs": []})
    assert bad.status_code == 400 and bad.headers["x-request-id"] == "bad"
    too_long = client.post("/v2/models/bc/infer", json=_v2(X.iloc[:1], "x" * 129))
    assert too_long.status_code == 400 and "longer than 128" in too_long.json()["error"]
    assert _logged(server) == []


def test_feedback_endpoint_joins_labels_and_reports_unknown_ids(client, server, small_model):
    from sklearn.metrics import accuracy_score

    X, model, _ = small_model
    rows = X.iloc[40:50]
    y_pred = model.predict(rows)
    y_true = y_pred.copy()
    y_true[[1, 4, 8]] = 1 - y_true[[1, 4, 8]]
    assert client.post("/v2/models/bc/infer", json=_v2(rows, "batch-1")).status_code == 200

    # posted at once after the answer: the server writes its log before joining
    resp = client.post("/v2/models/bc/feedback", json={"feedback": [
        *({"request_id": "batch-1", "row": i, "label": int(y)} for i, y in enumerate(y_true)),
        {"request_id": "never-seen", "label": 1},
    ]})
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"model": "bc", "received": 11, "recorded": 10, "unknown": 1, "unknown_ids": ["never-seen"]}
    n, acc = FeedbackStore(server.settings).accuracy("bc", "1")
    assert n == 10 and acc == pytest.approx(accuracy_score(y_true, y_pred)) and acc == pytest.approx(0.7)


@pytest.mark.parametrize("body, status, message", [
    ({"feedback": []}, 400, "feedback body must be"),
    ([{"request_id": "a", "label": 1}], 400, "feedback body must be"),
    ({"feedback": [{"request_id": "a"}]}, 400, "feedback[0] must be an object"),
    ({"feedback": [{"request_id": "a", "row": -2, "label": 1}]}, 400, "row must be a whole number"),
])
def test_bad_feedback_gets_4xx(client, body, status, message):
    resp = client.post("/v2/models/bc/feedback", json=body)
    assert resp.status_code == status and message in resp.json()["error"]


def test_feedback_for_a_model_not_served_here_is_404(client):
    resp = client.post("/v2/models/nope/feedback", json={"feedback": [{"request_id": "a", "label": 1}]})
    assert resp.status_code == 404 and "not deployed" in resp.json()["error"]
