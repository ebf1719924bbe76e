"""Shadow mode and feedback for real: a `mlc runtime serve` process on loopback serving a
scikit-learn model from a sqlite MLflow registry, deployments made by the `mlc` CLI and the deploy
topic's handler, labels sent by POST and by `mlc feedback`, figures read by `mlc deployment compare`.

The tests of this module run in order and share one installation (see conftest.py).
"""

from __future__ import annotations

import json
import time

import httpx
import numpy as np
import pandas as pd
import pytest
from sqlalchemy import func, select

from modelops_mlc.errors import UsageError
from modelops_mlc.runtimes.feedback import FeedbackStore
from modelops_mlc.runtimes.models import PredictionRow
from modelops_mlc.store import open_store

pytestmark = pytest.mark.slow

REQUESTS, ROWS = 12, 5  # live requests of 5 rows each


@pytest.fixture(scope="module")
def live(stack):
    """The PROD runtime, and a third version of bc for the deploy topic to shadow with."""
    from sklearn.linear_model import LogisticRegression

    from modelops_mlc.registry import Registry

    model = LogisticRegression(C=0.01, max_iter=5000).fit(stack.X, _labels())
    info = Registry(stack.settings).register("bc", estimator=model, input_example=stack.X.head(3),
                                             tags={"TAG": "credit"})
    assert str(info.version) == "3"
    stack.estimators["3"] = model
    return stack.serve("shadow-prod", "stage=PROD", "tag=credit")


def _labels() -> np.ndarray:
    from sklearn.datasets import load_breast_cancer

    return load_breast_cancer().target


def _v2(frame: pd.DataFrame, request_id: str | None = None) -> dict:
    body: dict = {"inputs": [{"name": "x", "shape": list(frame.shape), "datatype": "FP64",
                              "data": frame.to_numpy().ravel().tolist()}]}
    if request_id:
        body["id"] = request_id
    return body


def _rows_logged(settings, deployment_id: int, expected: int, timeout: float = 30) -> int:
    """Poll the prediction log until ``expected`` rows of the deployment are there (or the deadline passes)."""
    deadline = time.monotonic() + timeout
    while True:
        with open_store(settings).session() as s:
            n = s.scalar(select(func.count()).select_from(PredictionRow)
                         .where(PredictionRow.deployment_id == deployment_id)) or 0
        if n >= expected or time.monotonic() > deadline:
            return n
        time.sleep(0.1)


def _error_line(result) -> str:
    """The one error line on stderr (reports and hints may stand beside it; no traceback)."""
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


def test_shadow_gets_the_traffic_the_primary_answers(stack, live):
    from modelops_mlc.runtimes import DeploymentManager

    manager = DeploymentManager(stack.settings)
    with pytest.raises(UsageError, match="has no version serving on runtime shadow-prod"):
        manager.deploy("bc", "2", "PROD", shadow=True)
    primary = manager.deploy("bc", "1", "PROD")
    made = stack.mlc("deployment", "create", "bc/2", "--stage", "PROD", "--shadow", "--json")
    assert made.returncode == 0, made.stderr
    shadow = json.loads(made.stdout)
    assert (shadow["shadow"], shadow["traffic_weight"], shadow["state"]) == (True, 0, "deployed")
    listed = json.loads(stack.mlc("deployment", "list", "--model", "bc", "--active", "--json").stdout)
    assert {(d["model_version"], d["shadow"], d["traffic_weight"]) for d in listed if d["runtime"] == "shadow-prod"} \
        == {("1", False, 100), ("2", True, 0)}

    X, y = stack.X, _labels()
    with httpx.Client(base_url=live.endpoint, timeout=30) as http:
        for i in range(REQUESTS):
            frame = X.iloc[ROWS * i:ROWS * (i + 1)]
            resp = http.post("/v2/models/bc/infer", json=_v2(frame, f"req-{i}"))
            assert resp.status_code == 200
            assert resp.headers["x-model-version"] == "1" and resp.headers["x-request-id"] == f"req-{i}"
            assert resp.json()["outputs"][0]["data"] == stack.estimators["1"].predict(frame).tolist()
        # MLflow scoring: the id comes from the header, or is made up and returned
        scored = http.post("/invocations", json={"dataframe_split": {"columns": list(X.columns),
                                                                     "data": X.iloc[:2].to_numpy().tolist()}})
        assert len(scored.headers["x-request-id"]) == 32
        # the smoke requests of both deploys and this one are no live labelled traffic; skip them below

        total = REQUESTS * ROWS
        assert _rows_logged(stack.settings, shadow["id"], total + 2) == total + 2

        # half the labels by POST to the model server, the other half (and two strays) by `mlc feedback`
        half = REQUESTS // 2
        posted = http.post("/v2/models/bc/feedback", json={"feedback": [
            {"request_id": f"req-{i}", "row": r, "label": int(y[ROWS * i + r])} for i in range(half) for r in range(ROWS)
        ]})
        assert posted.status_code == 200, posted.text
        assert posted.json()["recorded"] == half * ROWS and posted.json()["unknown"] == 0

    labels = pd.DataFrame(
        [{"request_id": f"req-{i}", "row": r, "truth": int(y[ROWS * i + r])} for i in range(half, REQUESTS)
         for r in range(ROWS)]
        + [{"request_id": "never-asked", "row": 0, "truth": 1}, {"request_id": "req-0", "row": 9, "truth": 0}]
    )
    path = stack.home / "labels.parquet"
    labels.to_parquet(path)
    fed = stack.mlc("feedback", "bc", str(path), "--label-column", "truth", "--json")
    assert fed.returncode == 0, fed.stderr
    report = json.loads(fed.stdout)
    assert (report["received"], report["recorded"], report["unknown"]) == ((REQUESTS - half) * ROWS + 2,
                                                                           (REQUESTS - half) * ROWS, 2)
    assert report["unknown_ids"] == ["never-asked", "req-0"]

    from sklearn.metrics import accuracy_score

    frame = X.iloc[:total]
    truth, p1, p2 = y[:total], stack.estimators["1"].predict(frame), stack.estimators["2"].predict(frame)
    assert (p1 != p2).any()
    n, acc = FeedbackStore(stack.settings).accuracy("bc", "1")
    assert n == total and acc == pytest.approx(accuracy_score(truth, p1))

    compared = stack.mlc("deployment", "compare", str(shadow["id"]), "--json")
    assert compared.returncode == 0, compared.stderr
    result = json.loads(compared.stdout)
    assert result["primary_versions"] == ["1"] and result["shadow_version"] == "2"
    assert result["paired"] == total + 2 and result["labelled"] == total
    assert result["agreement"] == pytest.approx(
        np.mean(np.concatenate([p1 == p2, stack.estimators["1"].predict(X.iloc[:2]) == stack.estimators["2"].predict(X.iloc[:2])])))
    assert result["shadow_accuracy"] == pytest.approx(accuracy_score(truth, p2))
    assert result["primary_accuracy"] == pytest.approx(accuracy_score(truth, p1))
    table = stack.mlc("deployment", "compare", str(shadow["id"]))
    assert table.returncode == 0 and "agreement" in table.stdout

    # a shadow is no canary: nothing to promote, and the primary keeps all its traffic
    promote = stack.mlc("deployment", "promote", "bc", "--runtime", "shadow-prod")
    assert promote.returncode == 2 and "no canary to promote" in _error_line(promote)
    assert primary.id in {d["id"] for d in json.loads(
        stack.mlc("deployment", "list", "--model", "bc", "--state", "deployed", "--json").stdout)}


def test_deploy_topic_shadow_replaces_the_shadow_and_retire_ends_it(stack, live):
    from modelops_mlc.runtimes import DeploymentManager
    from workers.deploy import deploy
    from workers.handlers import TaskContext

    ctx = TaskContext(topic="deploy", task_id="t-1", process_instance_id="pi-shadow", activity_id="Task_deploy",
                      activity_instance_id="Task_deploy:1", settings=stack.settings, worker_id="test",
                      variables={"MODEL_ID": "bc", "MODEL_VERSION": 3, "MODEL_STAGE": "PROD", "DEPLOY_SHADOW": "true"})
    out = deploy(ctx)
    manager = DeploymentManager(stack.settings)
    new = manager.get(out["DEPLOYMENT_ID"])
    assert (new.model_version, new.shadow, new.traffic_weight, new.state) == ("3", True, 0, "deployed")
    states = {(d.model_version, d.shadow): d.state for d in manager.list("bc", runtime="shadow-prod")}
    assert states == {("1", False): "deployed", ("2", True): "retired", ("3", True): "deployed"}

    with httpx.Client(base_url=live.endpoint, timeout=30) as http:
        frame = stack.X.iloc[100:104]
        resp = http.post("/v2/models/bc/infer", json=_v2(frame), headers={"X-Request-Id": "after-topic"})
        assert resp.json()["model_version"] == "1" and resp.json()["id"] == "after-topic"
        assert _rows_logged(stack.settings, new.id, 4) == 4

        retired = stack.mlc("deployment", "retire", str(new.id), "--json")
        assert retired.returncode == 0, retired.stderr
        assert json.loads(retired.stdout)["state"] == "retired"
        status = http.get("/admin/status", headers={"Authorization": f"Bearer {stack.admin_token}"}).json()
        assert [(d["version"], d["shadow"]) for d in status["deployments"]] == [("1", False)]


def test_bad_cli_input_gets_one_line_errors(stack, live, tmp_path):
    missing = stack.mlc("feedback", "bc", str(tmp_path / "nope.csv"))
    assert missing.returncode != 0 and "feedback file not found" in _error_line(missing)

    no_label = tmp_path / "no-label.csv"
    pd.DataFrame({"request_id": ["req-1"], "y": [1]}).to_csv(no_label, index=False)
    refused = stack.mlc("feedback", "bc", str(no_label))
    assert refused.returncode == 2 and "lacks column label" in _error_line(refused)

    strays = tmp_path / "strays.csv"
    pd.DataFrame({"request_id": ["x-1", "x-2"], "label": [1, 0]}).to_csv(strays, index=False)
    unknown = stack.mlc("feedback", "bc", str(strays))
    assert unknown.returncode == 4 and "none of the 2 request ids" in _error_line(unknown)
    assert "2 with no logged prediction" in unknown.stderr

    from modelops_mlc.runtimes import DeploymentManager

    primary = next(d for d in DeploymentManager(stack.settings).list("bc", runtime="shadow-prod") if not d.shadow)
    for args, code, text in [
        (("deployment", "compare", str(primary.id)), 2, "is not a shadow"),
        (("deployment", "compare", "99999"), 4, "no deployment with id 99999"),
        (("deployment", "retire", str(primary.id)), 2, "is not a shadow"),
        (("deployment", "create", "bc/2", "--stage", "PROD", "--shadow", "--weight", "10"), 2, "--shadow takes no"),
    ]:
        result = stack.mlc(*args)
        assert result.returncode == code and text in _error_line(result), (args, result.stderr)
