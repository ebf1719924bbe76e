"""mlc-retrain on the whole stack (engine, worker, MLflow, the runtime server, the local ticket
system): a champion fitted on a handful of rows serves in PROD; `mlc retrain` with the full
training data trains a better challenger as a job, the decision deploys it, a reviewer approves,
and mlc-canary-rollout watches it under live traffic and promotes it: the alias champion moves."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from modelops_mlc.engine import EngineClient
from tests.e2e.conftest import StackHandle
from tests.e2e.test_canary import traffic
from tests.e2e.test_mlc_processes import end_of, waiting_at

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    X = X.iloc[:, :8]
    X.columns = [c.replace(" ", "_") for c in X.columns]
    x_train, x_test, y_train, y_test = train_test_split(X, y, test_size=0.4, random_state=3, stratify=y)
    d = tmp_path_factory.mktemp("e2e-retrain")
    paths = {"train": d / "train.csv", "test": d / "test.csv"}
    x_train.assign(target=y_train).to_csv(paths["train"], index=False)
    x_test.assign(target=y_test).to_csv(paths["test"], index=False)
    few = x_train.sample(16, random_state=0)  # the champion saw only these rows
    weak = make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000)).fit(few, y_train.loc[few.index])
    return {"X": X, "y": y, "paths": paths, "weak": weak, "example": x_test.head(3)}


def test_a_better_challenger_goes_through_canary_to_promotion(stack: StackHandle, client: EngineClient, data,
                                                              run_mlc) -> None:
    from modelops_mlc.registry import Registry
    from modelops_mlc.runtimes import DeploymentManager

    name = f"e2e-retrain-{uuid.uuid4().hex[:6]}"
    registry = Registry(stack.settings)
    registry.register(name, estimator=data["weak"], input_example=data["example"], tags={"target": "target"},
                      assets={"TRAINING_DATA": str(data["paths"]["train"]), "TEST_DATA": str(data["paths"]["test"])})
    registry.set_alias(name, "champion", 1)
    DeploymentManager(stack.settings).deploy(name, "1", "PROD", requested_by="e2e")

    r = run_mlc("retrain", name, "--data", str(data["paths"]["train"]), "--var", "TRAIN_POLL_INTERVAL=PT1S",
                "--var", "CANARY_WEIGHT=50", "--var", "CANARY_WINDOW=PT5S", "--var", "CANARY_MIN_REQUESTS=5", "--json")
    assert r.returncode == 0, r.stderr
    inst = json.loads(r.stdout)["process_instance_id"]

    waiting_at(client, inst, "task_review")
    variables = client.variables(inst)
    assert variables["RETRAIN_DECISION"]["deploy"] is True and variables["COMPARE_WINNER"] == "challenger"
    assert variables["CHALLENGER_VERSION"] == 2 and variables["COMPARE_IMPROVEMENT"] >= 0.01
    assert registry.get_version(f"{name}@challenger").version == 2
    with traffic(stack, {name: False}, data):
        [task] = client.tasks(process_instance_id=inst)
        client.claim(task.id, "reviewer1")
        client.complete_task(task.id, {"approved": True, "review_comment": "e2e"})
        assert end_of(client, inst, timeout=240) == "end_promoted"

    variables = client.variables(inst)
    assert (variables["CANARY_OUTCOME"], variables["RETRAIN_OUTCOME"]) == ("promoted", "promoted")
    assert registry.get_model(name).aliases == {"champion": 2}  # moved; challenger removed
    assert registry.get_version(f"{name}/1").tags.get("mlc.retired") == "true"
    called = client.instances(process_key="mlc-canary-rollout", model_id=name)
    assert [c.state for c in called] == ["COMPLETED"]
