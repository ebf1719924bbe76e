"""`mlc model snapshot` fires `mlc.model-submitted` with MODEL_ID and MODEL_VERSION on a real engine."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from modelops_mlc.engine import EngineClient

HERE = Path(__file__).resolve().parent


@pytest.fixture
def registry(settings):
    from modelops_mlc.registry import Registry

    return Registry(settings)


def test_snapshot_starts_a_process_with_model_id_and_version(run_mlc, settings, registry) -> None:
    from sklearn.datasets import load_wine
    from sklearn.tree import DecisionTreeClassifier

    X, y = load_wine(return_X_y=True, as_frame=True)
    name = f"wine-{uuid.uuid4().hex[:8]}"
    registry.register(name, estimator=DecisionTreeClassifier(max_depth=2).fit(X, y), input_example=X.head(2))
    registry.register(name, estimator=DecisionTreeClassifier(max_depth=3).fit(X, y), input_example=X.head(2))

    with EngineClient(settings) as client:
        deployed = client.deploy_processes([HERE / "model_submitted.bpmn"], name="test-model-submitted")
        try:
            _snapshot_and_check(run_mlc, client, name)
        finally:  # it starts on every mlc.model-submitted: later tests' snapshots must not start it too
            for deployment in client.request("GET", "/deployment", params={"name": deployed.name}):
                client.request("DELETE", f"/deployment/{deployment['id']}", params={"cascade": "true"})
    info = registry.get_version(f"{name}/1")
    assert info.flag("snapshot") and info.flag("run_test") and info.tags["submitted_by"] == "alice"


def _snapshot_and_check(run_mlc, client, name: str) -> None:
    """The snapshot fires the signal with the model, version and submitter; the test process gets them."""
    r = run_mlc("model", "snapshot", name, "--version", "1", "--tag", "run_test=true", "--user", "alice", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["signal"] == "mlc.model-submitted"
    assert out["variables"] == {"MODEL_ID": name, "MODEL_VERSION": 1, "SUBMITTED_BY": "alice"}

    [inst] = client.instances(model_id=name, process_key="test-model-submitted")
    variables = client.variables(inst.id)
    assert variables["MODEL_ID"] == name and variables["MODEL_VERSION"] == 1
