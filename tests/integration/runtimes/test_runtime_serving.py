"""Runtimes and deployments for real: `mlc runtime serve` processes on loopback ports serving a
scikit-learn model from a sqlite MLflow registry; batch and online deploys, canary, promote,
rollback, bad payloads, the admin token, heartbeats, and the KServe manifest.

The tests of this module run in order and share one installation (see conftest.py).
"""

from __future__ import annotations

import collections
import json
import math
import re
import time

import httpx
import numpy as np
import pytest
import yaml

from modelops_mlc.errors import DeployFailedError, NoRuntimeError, UsageError
from modelops_mlc.runtimes import DeploymentManager, RuntimeCatalog

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def prod(stack):
    """The online PROD runtime serving the `credit` models."""
    return stack.serve("prod-1", "stage=PROD", "tag=credit")


def _v2(rows: np.ndarray) -> dict:
    return {"inputs": [{"name": "x", "shape": list(rows.shape), "datatype": "FP64", "data": rows.ravel().tolist()}]}


def test_runtime_cli_add_list_remove(stack):
    added = stack.mlc("runtime", "add", "batch-qa", "--tag", "stage=QA", "--tag", "tag=credit", "--json")
    assert added.returncode == 0, added.stderr
    assert json.loads(added.stdout)["mode"] == "batch"
    RuntimeCatalog(stack.settings).add("scratch", {"stage": "QA"}, endpoints=["http://127.0.0.1:9"])
    listed = json.loads(stack.mlc("runtime", "list", "--json").stdout)
    assert {r["name"]: r["mode"] for r in listed} == {"batch-qa": "batch", "scratch": "online"}
    assert stack.mlc("runtime", "remove", "scratch").returncode == 0
    missing = stack.mlc("runtime", "remove", "scratch")
    assert missing.returncode == 4 and "no runtime named" in missing.stderr and "Traceback" not in missing.stderr


def test_batch_deploy_is_idempotent_per_process_instance(stack):
    manager = DeploymentManager(stack.settings)
    first = manager.deploy("bc", "1", "QA", requested_by="process", dedupe_key="pi-batch-1")
    assert (first.mode, first.state, first.runtime, first.model_tag) == ("batch", "deployed", "batch-qa", "credit")
    again = manager.deploy("bc", "1", "QA", requested_by="process", dedupe_key="pi-batch-1")
    assert again.id == first.id
    assert len(manager.list("bc")) == 1
    with pytest.raises(UsageError, match="traffic weight"):
        manager.deploy("bc", "1", "QA", traffic_weight=150)
    active = manager.active_batch("credit", "QA")
    assert active is not None and active.id == first.id
    assert manager.active_batch("credit", "PROD") is None
    newer = manager.deploy("bc", "2", "QA", dedupe_key="pi-batch-2")
    assert manager.active_batch("credit").id == newer.id
    assert manager.get(first.id).state == "retired"
    [back] = manager.rollback("bc", runtime="batch-qa")
    assert (back.model_version, back.state) == ("1", "deployed") and manager.active_batch("credit").id == back.id
    assert manager.get(newer.id).state == "retired"
    [forward] = manager.rollback("bc", runtime="batch-qa")  # rolling back again returns to version 2
    assert forward.model_version == "2" and manager.active_batch("credit", "QA").id == forward.id


def test_no_runtime_lists_each_refusal(stack, prod):
    with pytest.raises(NoRuntimeError) as info:
        DeploymentManager(stack.settings).deploy("bc", "1", "DEV")
    reasons = info.value.reasons
    assert reasons["batch-qa"] == "serves stage=QA, not DEV"
    assert reasons["prod-1"] == "serves stage=PROD, not DEV"
    assert "batch-qa: serves stage=QA, not DEV" in info.value.message


def test_online_deploy_serves_what_model_predict_gives(stack, prod):
    # the process instance that deployed bc/1 to QA (batch) now deploys it to PROD: a new deployment
    dep = DeploymentManager(stack.settings).deploy("bc", "1", "PROD", dedupe_key="pi-batch-1")
    assert (dep.mode, dep.state, dep.runtime, dep.traffic_weight) == ("online", "deployed", "prod-1", 100)
    assert dep.endpoint == f"{prod.endpoint}/v2/models/bc"
    rows = stack.X.iloc[100:140]
    expected = stack.estimators["1"].predict(rows).tolist()
    with httpx.Client(base_url=prod.endpoint, timeout=30) as http:
        v2 = http.post("/v2/models/bc/infer", json=_v2(rows.to_numpy()))
        assert v2.status_code == 200, v2.text
        assert v2.json()["outputs"][0]["data"] == expected
        assert v2.json()["model_version"] == "1"
        split = {"dataframe_split": {"columns": list(rows.columns), "data": rows.to_numpy().tolist()}}
        inv = http.post("/invocations", json=split)
        assert inv.status_code == 200, inv.text
        assert inv.json() == {"predictions": expected}
        records = http.post("/invocations", json={"inputs": rows.to_dict(orient="records")})
        assert records.json()["predictions"] == expected
        meta = http.get("/v2/models/bc").json()
        assert meta["versions"] == ["1"] and [i["name"] for i in meta["inputs"]] == list(rows.columns)
        assert http.get("/v2/models/bc/ready").json()["ready"] is True


@pytest.mark.parametrize(
    "path, body",
    [
        ("/v2/models/bc/infer", b"not json"),
        ("/v2/models/bc/infer", b'{"inputs": [{"name": "x", "shape": [1, 3], "datatype": "FP64", "data": [1, 2, 3]}]}'),
        ("/v2/models/bc/infer", b'{"inputs": [{"name": "x", "shape": [2, 8], "datatype": "FP64", "data": [1]}]}'),
        ("/v2/models/bc/infer", b'{"inputs": "everything"}'),
        ("/invocations", b'{"dataframe_split": {"columns": ["mean radius"], "data": [[1.0]]}}'),
        ("/invocations", b'{"dataframe_records": [{"mean radius": "big"}]}'),
        ("/invocations", b'{"instances": [[1, 2]], "inputs": [[1, 2]]}'),
        ("/invocations", b"[]"),
    ],
)
def test_bad_payloads_get_4xx(stack, prod, path, body):
    resp = httpx.post(f"{prod.endpoint}{path}", content=body, headers={"content-type": "application/json"})
    assert 400 <= resp.status_code < 500, resp.text
    assert resp.json()["error"]


def test_admin_without_token_is_refused(stack, prod):
    assert httpx.post(f"{prod.endpoint}/admin/reconcile").status_code == 401
    assert httpx.get(f"{prod.endpoint}/admin/status", headers={"Authorization": "Bearer nope"}).status_code == 401
    ok = httpx.get(f"{prod.endpoint}/admin/status", headers={"Authorization": f"Bearer {stack.admin_token}"})
    assert ok.status_code == 200 and ok.json()["runtime"] == "prod-1"


def test_a_version_the_runtime_cannot_load_fails_the_deploy(stack, prod):
    from pathlib import Path

    from modelops_mlc.registry import Registry

    registry = Registry(stack.settings)
    registry.register("broken", estimator=stack.estimators["1"], input_example=stack.X.head(2), tags={"TAG": "credit"})
    artifacts = Path(registry.client.get_model_version_download_uri("broken", "1").replace("file://", ""))
    for item in artifacts.iterdir():
        if item.name.startswith("model."):  # the pickled estimator: MLmodel stays, loading fails
            item.unlink()
    manager = DeploymentManager(stack.settings)
    with pytest.raises(DeployFailedError, match="could not load") as info:
        manager.deploy("broken", "1", "PROD")
    [failed] = manager.list("broken")
    assert failed.state == "failed" and failed.message == info.value.message
    # the runtime keeps serving the others
    assert httpx.get(f"{prod.endpoint}/v2/models/bc/ready").status_code == 200
    assert httpx.get(f"{prod.endpoint}/v2/models/broken/ready").status_code == 404


def test_canary_split_promote_and_rollback(stack, prod):
    # a deployer without the admin token: the runtime picks the change up on its own reconcile loop
    manager = DeploymentManager(stack.settings_without_token())
    canary = manager.deploy("bc", "2", "PROD", traffic_weight=10, dedupe_key="pi-canary")
    assert (canary.state, canary.traffic_weight) == ("deployed", 10)
    baseline = [d for d in manager.list("bc", runtime="prod-1", state="deployed") if d.id != canary.id]
    assert [d.traffic_weight for d in baseline] == [90]

    rows = stack.X.iloc[[5]].to_numpy()
    with httpx.Client(base_url=prod.endpoint, timeout=30) as http:
        deadline = time.monotonic() + 10
        while http.get("/v2/models/bc").json().get("parameters", {}).get("traffic_weights") != {"1": 90, "2": 10}:
            assert time.monotonic() < deadline, "runtime did not pick up the canary"
            time.sleep(0.1)
        body = _v2(rows)
        n, p = 2000, 0.10
        counts = collections.Counter(http.post("/v2/models/bc/infer", json=body).headers["x-model-version"]
                                     for _ in range(n))
        sd = math.sqrt(n * p * (1 - p))
        assert abs(counts["2"] - n * p) < 5 * sd, counts
        assert counts["1"] + counts["2"] == n
        for key in (f"customer-{i}" for i in range(20)):
            seen = {http.post("/v2/models/bc/infer", json=body, headers={"X-Request-Key": key}).headers["x-model-version"]
                    for _ in range(5)}
            assert len(seen) == 1, key
        # both versions answer with their own model's predictions
        for version in ("1", "2"):
            out = http.post(f"/v2/models/bc/versions/{version}/infer", json=_v2(stack.X.iloc[:50].to_numpy()))
            assert out.json()["outputs"][0]["data"] == stack.estimators[version].predict(stack.X.iloc[:50]).tolist()

        promoted = stack.mlc("deployment", "promote", "bc", "--json")
        assert promoted.returncode == 0, promoted.stderr
        assert [(d["model_version"], d["traffic_weight"]) for d in json.loads(promoted.stdout)] == [("2", 100)]
        versions = {http.post("/v2/models/bc/infer", json=body).headers["x-model-version"] for _ in range(100)}
        assert versions == {"2"}
        states = {d.model_version: d.state for d in manager.list("bc", runtime="prod-1")}
        assert states == {"1": "retired", "2": "deployed"}

        rolled = stack.mlc("deployment", "rollback", "bc", "--runtime", "prod-1", "--json")
        assert rolled.returncode == 0, rolled.stderr
        [back] = json.loads(rolled.stdout)
        assert (back["model_version"], back["traffic_weight"], back["state"]) == ("1", 100, "deployed")
        versions = {http.post("/v2/models/bc/infer", json=body).headers["x-model-version"] for _ in range(100)}
        assert versions == {"1"}

    shown = json.loads(stack.mlc("deployment", "show", str(back["id"]), "--json").stdout)
    assert [e["action"] for e in shown["events"]] == ["rollback", "deployed"]
    canary_events = [e.action for e in manager.events(canary.id)]
    assert canary_events == ["deploy", "deployed", "promote", "retire"]
    listed = json.loads(stack.mlc("deployment", "list", "--model", "bc", "--active", "--json").stdout)
    assert {(d["runtime"], d["model_version"]) for d in listed} == {("batch-qa", "2"), ("prod-1", "1")}


def test_metrics_per_model_and_version(prod):
    text = httpx.get(f"{prod.endpoint}/metrics").text
    assert re.search(r'mlc_inference_requests_total\{model="bc",protocol="v2",version="2"\} \d+', text)
    assert re.search(r'mlc_inference_errors_total\{model="bc",protocol="mlflow",status="400",version="1"\}', text)
    assert 'mlc_inference_latency_seconds_bucket{le="0.005",model="bc",version="1"}' in text


def test_unreachable_runtime_fails_the_deploy_and_records_it(stack):
    RuntimeCatalog(stack.settings).add("staging", {"stage": "STAGING"}, endpoints=["http://127.0.0.1:9"])
    manager = DeploymentManager(stack.settings)
    with pytest.raises(DeployFailedError, match="unreachable"):
        manager.deploy("bc", "2", "STAGING", dedupe_key="pi-staging")
    [failed] = manager.list("bc", runtime="staging")
    assert failed.state == "failed" and "unreachable" in (failed.message or "")
    with pytest.raises(DeployFailedError):  # the same process instance gets the same answer
        manager.deploy("bc", "2", "STAGING", dedupe_key="pi-staging")
    assert len(manager.list("bc", runtime="staging")) == 1


def test_killed_runtime_turns_unhealthy_after_missed_heartbeats(stack):
    doomed = stack.serve("doomed", "stage=DEV", "tag=credit")
    catalog = RuntimeCatalog(stack.settings)
    time.sleep(stack.settings.runtime_heartbeat_interval * 2)
    assert catalog.get("doomed").status == "healthy"
    doomed.kill()
    deadline = time.monotonic() + stack.settings.runtime_heartbeat_interval * 3 + 10
    while catalog.get("doomed").status != "unhealthy":
        assert time.monotonic() < deadline, "killed runtime still healthy"
        time.sleep(0.2)
    assert "missed heartbeats" in (catalog.get("doomed").status_reason or "")
    with pytest.raises(NoRuntimeError) as info:
        DeploymentManager(stack.settings).deploy("bc", "1", "DEV")
    assert info.value.reasons["doomed"].startswith("unhealthy (missed heartbeats")


# the CRD's required fields and the types KServe validates, for the parts we write
_DNS_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")


def test_kserve_manifest_has_the_crd_fields(stack):
    out = stack.home / "isvc.yaml"
    done = stack.mlc("manifest", "kserve", "bc/2", "--canary-percent", "20", "--out", str(out), "--namespace", "models")
    assert done.returncode == 0, done.stderr
    doc = yaml.safe_load(out.read_text())
    assert doc["apiVersion"] == "serving.kserve.io/v1beta1" and doc["kind"] == "InferenceService"
    meta = doc["metadata"]
    assert _DNS_LABEL.match(meta["name"]) and len(meta["name"]) <= 63 and meta["namespace"] == "models"
    assert meta["annotations"]["mlc.modelops.io/model-version"] == "2"
    predictor = doc["spec"]["predictor"]
    assert predictor["canaryTrafficPercent"] == 20
    assert isinstance(predictor["minReplicas"], int) and predictor["minReplicas"] <= predictor["maxReplicas"]
    model = predictor["model"]
    assert model["modelFormat"]["name"] == "mlflow" and model["protocolVersion"] == "v2"
    assert isinstance(model["storageUri"], str) and model["storageUri"]
    for part in ("requests", "limits"):
        assert set(model["resources"][part]) == {"cpu", "memory"}
    assert "storageUri" in done.stderr  # local artifacts: the user is told to pass --storage-uri

    from modelops_mlc.errors import ModelNotFoundError, UsageError
    from modelops_mlc.runtimes import kserve_manifest

    manifest = kserve_manifest(stack.settings, "bc", storage_uri="s3://models/bc/2", min_replicas=2, max_replicas=4)
    doc = yaml.safe_load(manifest.to_yaml())
    assert doc["spec"]["predictor"]["model"]["storageUri"] == "s3://models/bc/2" and not manifest.warnings
    assert (doc["spec"]["predictor"]["minReplicas"], doc["spec"]["predictor"]["maxReplicas"]) == (2, 4)
    assert "canaryTrafficPercent" not in doc["spec"]["predictor"]
    with pytest.raises(UsageError):
        kserve_manifest(stack.settings, "bc", canary_percent=150)
    with pytest.raises(UsageError):
        kserve_manifest(stack.settings, "bc", min_replicas=3, max_replicas=2)
    with pytest.raises(ModelNotFoundError):
        kserve_manifest(stack.settings, "nope")
    bad = stack.mlc("manifest", "kserve", "bc", "--canary-percent", "150")
    assert bad.returncode == 2 and "Traceback" not in bad.stderr


def test_stopped_runtime_is_marked_at_once(stack, prod):
    prod.stop()  # SIGTERM: uvicorn shuts down, the app's lifespan tells the runtime catalog
    runtime = RuntimeCatalog(stack.settings).get("prod-1")
    assert (runtime.status, runtime.status_reason) == ("unhealthy", "stopped")
