"""Shadow mode in the model server's ASGI app, in-process, with its prediction log and shadow mirror
running on a real sqlite store: callers get the primary's answer only, the shadow's predictions of the
same requests are logged with role ``shadow``, and the comparison agrees with a hand computation."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sqlalchemy import select

with warnings.catch_warnings():  # starlette's notice about its httpx dependency
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from modelops_mlc.config import Settings
from modelops_mlc.errors import UsageError
from modelops_mlc.runtimes.feedback import FeedbackStore
from modelops_mlc.runtimes.models import DeploymentRow, DeploymentShadowRow, PredictionRow
from modelops_mlc.runtimes.server import ModelServer, Served, TrafficRoute
from modelops_mlc.store import open_store

PRIMARY, SHADOW = 7, 8


@pytest.fixture(scope="module")
def weak_model(small_model):
    """A second version that disagrees with the first on part of the data."""
    from sklearn.linear_model import LogisticRegression

    X, _, _ = small_model
    return LogisticRegression(C=0.0005, max_iter=5000).fit(X, _labels())


def _labels():
    from sklearn.datasets import load_breast_cancer

    return load_breast_cancer().target


@pytest.fixture
def server(tmp_path, make_predictor, weak_model, small_model):
    _, _, cols = small_model
    settings = Settings(home=tmp_path, store_url=f"sqlite:///{tmp_path}/mlc.db")
    with open_store(settings).session() as s:
        for dep_id, version in ((PRIMARY, "1"), (SHADOW, "2")):
            s.add(DeploymentRow(id=dep_id, model_name="bc", model_version=version, runtime="rt-shadow",
                                mode="online", state="deployed", traffic_weight=100 if dep_id == PRIMARY else 0))
        s.flush()
        s.add(DeploymentShadowRow(deployment_id=SHADOW))
    srv = ModelServer(settings, "rt-shadow", heartbeat=False)
    p1, p2 = make_predictor("bc", "1"), make_predictor("bc", "2")
    p2.pyfunc = type(p2.pyfunc)(weak_model, cols)
    p2.raw = weak_model
    srv.predictors = {("bc", "1"): p1, ("bc", "2"): p2}
    srv.active = {PRIMARY: ("bc", "1", "deployed", 100), SHADOW: ("bc", "2", "deployed", 0)}
    srv.shadow_ids = {SHADOW}
    srv.routes = {"bc": TrafficRoute([Served(PRIMARY, "bc", "1", 100, "deployed", p1)])}
    srv.shadows = {"bc": [Served(SHADOW, "bc", "2", 0, "deployed", p2)]}
    srv.ready = True
    srv.predlog.start()  # the lifespan would reconcile the hand-placed predictors away
    srv.mirror.start()
    yield srv
    srv.mirror.stop()
    srv.predlog.stop()


def _v2(rows, request_id):
    return {"id": request_id, "inputs": [{"name": "x", "shape": [len(rows), 6], "datatype": "FP64",
                                          "data": rows.to_numpy().ravel().tolist()}]}


def _logged(server):
    assert server.mirror.flush() and server.predlog.flush()
    with open_store(server.settings).session() as s:
        return [(r.request_id, r.row, r.deployment_id, r.model_version, r.role, r.output)
                for r in s.scalars(select(PredictionRow).order_by(PredictionRow.id))]


def test_callers_get_the_primary_only_and_the_shadow_is_logged(server, small_model, weak_model):
    X, model, cols = small_model
    client = TestClient(server.app)
    rows = X.iloc[:40]
    primary, shadow = model.predict(rows), weak_model.predict(rows)
    assert (primary != shadow).any()  # the test would not tell them apart otherwise

    resp = client.post("/v2/models/bc/infer", json=_v2(rows, "live-1"))
    assert resp.status_code == 200
    assert resp.json()["model_version"] == "1" and resp.json()["outputs"][0]["data"] == primary.tolist()
    mlflow = client.post("/invocations", json={"dataframe_split": {"columns": cols, "data": rows.to_numpy()[:2].tolist()}},
                         headers={"X-Request-Id": "live-2"})
    assert mlflow.json() == {"predictions": primary[:2].tolist()}
    # a request to a version by path is not live traffic: no mirror
    assert client.post("/v2/models/bc/versions/1/infer", json=_v2(rows.iloc[:1], "pinned")).status_code == 200

    logged = _logged(server)
    assert [r for r in logged if r[4] == "primary"] == (
        [("live-1", i, PRIMARY, "1", "primary", int(primary[i])) for i in range(40)]
        + [("live-2", i, PRIMARY, "1", "primary", int(primary[i])) for i in range(2)]
        + [("pinned", 0, PRIMARY, "1", "primary", int(primary[0]))]
    )
    assert sorted(r for r in logged if r[4] == "shadow") == sorted(
        [("live-1", i, SHADOW, "2", "shadow", int(shadow[i])) for i in range(40)]
        + [("live-2", i, SHADOW, "2", "shadow", int(shadow[i])) for i in range(2)]
    )


def test_compare_reports_agreement_and_both_accuracies(server, small_model, weak_model):
    from sklearn.metrics import accuracy_score

    X, model, _ = small_model
    client = TestClient(server.app)
    rows = X.iloc[160:220]
    for k in range(3):  # three requests of 20 rows
        assert client.post("/v2/models/bc/infer", json=_v2(rows.iloc[20 * k:20 * (k + 1)], f"r{k}")).status_code == 200
    _logged(server)
    primary, shadow = model.predict(rows), weak_model.predict(rows)
    truth = _labels()[160:220]
    store = FeedbackStore(server.settings)
    # labels for the first two requests only
    store.record("bc", [(f"r{k}", r, int(truth[20 * k + r])) for k in range(2) for r in range(20)], source="test")

    result = store.compare(SHADOW)
    assert result.model == "bc" and result.shadow_version == "2" and result.primary_versions == ["1"]
    assert result.shadow_predictions == 60 and result.paired == 60
    assert result.agreement == pytest.approx(float(np.mean(primary == shadow)))
    assert result.labelled == 40
    assert result.shadow_accuracy == pytest.approx(accuracy_score(truth[:40], shadow[:40]))
    assert result.primary_accuracy == pytest.approx(accuracy_score(truth[:40], primary[:40]))
    assert result.primary_accuracy != result.shadow_accuracy

    with pytest.raises(UsageError, match="is not a shadow"):
        store.compare(PRIMARY)


def test_a_failing_shadow_never_touches_the_answer(server, small_model):
    X, model, _ = small_model
    broken = server.shadows["bc"][0].predictor
    broken.pyfunc = broken.raw = None  # predict raises inside the mirror
    client = TestClient(server.app)
    resp = client.post("/v2/models/bc/infer", json=_v2(X.iloc[:5], "while-broken"))
    assert resp.status_code == 200 and resp.json()["outputs"][0]["data"] == model.predict(X.iloc[:5]).tolist()
    logged = _logged(server)
    assert {r[4] for r in logged} == {"primary"} and server.mirror.failed == 1
