"""Each built-in topic through a small BPMN (bpmn/wt-<topic>.bpmn) on the real engine, served
by one real `mlc worker start`, against a real MLflow registry: the variables each writes, and
the BPMN error each throws when the process gives it nothing to work with.

Every test process ends in End_ok, or in End_error through a catch-all error boundary event.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from wt_support import TEST_KEYS, Instances, WorkerProcess

MODEL = "wt-bc"


@pytest.fixture(scope="module")
def data(wt_home: Path) -> dict[str, Path]:
    """Breast-cancer data as CSV: labelled test/training data, features to score, shifted data."""
    from sklearn.datasets import load_breast_cancer

    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    folder = wt_home / "data"
    folder.mkdir()
    paths = {"labelled": folder / "bc.csv", "features": folder / "bc-features.csv", "shifted": folder / "bc-shifted.csv"}
    X.assign(target=y).to_csv(paths["labelled"], index=False)
    X.head(100).to_csv(paths["features"], index=False)
    shifted = X.copy()
    shifted["mean radius"] = shifted["mean radius"] * 1.8 + 5
    shifted.to_csv(paths["shifted"], index=False)
    return paths


@pytest.fixture(scope="module")
def models(wt_settings: Any, data: dict[str, Path]) -> dict[str, Any]:
    """wt-bc v1 (strong, with TEST_DATA and TRAINING_DATA), v2 (weak) and wt-bare v1 (no assets)."""
    from sklearn.datasets import load_breast_cancer
    from sklearn.dummy import DummyClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from modelops_mlc.registry import Registry

    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    strong = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(X, y)
    weak = DummyClassifier(strategy="prior").fit(X, y)
    registry = Registry(wt_settings)
    tags = {"train": True, "run_test": True, "jira": False, "TAG": "wt-svc", "target": "target"}
    assets = {"TEST_DATA": data["labelled"], "TRAINING_DATA": data["labelled"]}
    v1 = registry.register(MODEL, estimator=strong, input_example=X.head(2), tags=tags, assets=assets)
    v2 = registry.register(MODEL, estimator=weak, input_example=X.head(2), tags=tags, assets=assets)
    bare = registry.register("wt-bare", estimator=strong, input_example=X.head(2))
    return {"v1": v1, "v2": v2, "bare": bare, "registry": registry}


@pytest.fixture(scope="module")
def worker(wt_env: dict[str, str], wt_home: Path, tmp_path_factory: pytest.TempPathFactory,
           models: dict[str, Any], wt_client: Any) -> Iterator[WorkerProcess]:
    """One worker serving every built-in topic (and nothing but the test processes)."""
    keys = [a for k in TEST_KEYS for a in ("--process-key", k)]
    log = tmp_path_factory.mktemp("topics-worker") / "worker.log"
    proc = WorkerProcess(wt_env, wt_home, [*keys, "--concurrency", "2", "--long-poll", "1000", "--retries", "0",
                                           "--lock-duration", "20000"], log)
    try:
        yield proc.wait_ready()
        assert proc.terminate() == 0
    finally:
        proc.close()


def run(instances: Instances, key: str, variables: dict[str, Any], *, ok: bool = True) -> dict[str, Any]:
    pi = instances.start(key, variables)
    state = instances.wait_ended(pi, timeout=120)
    if state != "COMPLETED":
        raise AssertionError(f"{key} ended {state}; incidents: {instances.client.incidents(process_instance_id=pi)}")
    out = instances.variables(pi)
    end = instances.ended_at(pi)
    assert end == ("End_ok" if ok else "End_error"), out
    out["_pi"] = pi
    return out


def test_get_model_writes_what_the_gateways_need(worker, instances) -> None:
    out = run(instances, "wt-get-model", {"MODEL_ID": MODEL, "MODEL_VERSION": 1})
    assert out["MODEL_ID"] == MODEL and out["MODEL_VERSION"] == 1
    assert out["MODEL_TAG"] == "wt-svc" and out["MODEL_FLAVOR"] == "sklearn"
    assert (out["TRAIN"], out["RUN_TEST"], out["JIRA"]) == (True, True, False)
    assert out["DMN_KEY"] == "mlc-test-criteria" and out["HAS_TEST_DATA"] is True

    latest = run(instances, "wt-get-model", {"MODEL_ID": f"{MODEL}/2"})
    assert latest["MODEL_ID"] == MODEL and latest["MODEL_VERSION"] == 2


def test_get_model_of_an_unknown_model_throws_model_not_found(worker, instances) -> None:
    out = run(instances, "wt-get-model", {"MODEL_ID": "no-such-model"}, ok=False)
    assert out["MLC_ERROR_CODE"] == "MLC_MODEL_NOT_FOUND"
    assert "no-such-model" in out["MLC_ERROR_MESSAGE"]


def test_run_test_writes_metrics_as_variables(worker, instances, tmp_path) -> None:
    output = tmp_path / "predictions.csv"
    out = run(instances, "wt-run-test", {"MODEL_ID": MODEL, "MODEL_VERSION": 1, "OUTPUT_FILE": str(output)})
    assert out["TASK_TYPE"] == "classification"
    for name in ("accuracy", "precision", "recall", "f1", "roc_auc", "log_loss"):
        assert isinstance(out[name], float), name
    assert 0.9 < out["accuracy"] <= 1.0
    assert out["TEST_METRICS"]["accuracy"] == out["accuracy"]
    assert out["TEST_RUN_ID"] and output.is_file() and out["OUTPUT_FILE"].endswith("predictions.csv")


def test_run_test_without_test_data_throws_missing_test_data(worker, instances) -> None:
    out = run(instances, "wt-run-test", {"MODEL_ID": "wt-bare"}, ok=False)
    assert out["MLC_ERROR_CODE"] == "MLC_MISSING_TEST_DATA"


def test_compare_names_a_winner(worker, instances) -> None:
    out = run(instances, "wt-compare", {"MODEL_ID": MODEL, "CHAMPION_VERSION": 1, "CHALLENGER_VERSION": 2})
    assert out["COMPARE_WINNER"] == "champion"  # the dummy challenger loses
    results = out["COMPARE_RESULTS"]
    assert results["champion_version"] == 1 and results["challenger_version"] == 2
    assert results["primary_metric"] in results["metrics"]


def test_score_writes_the_output_and_its_hash(worker, instances, data, tmp_path) -> None:
    output = tmp_path / "scored.csv"
    out = run(instances, "wt-score", {"MODEL_ID": MODEL, "MODEL_VERSION": 1, "INPUT_FILE": str(data["features"]),
                                      "OUTPUT_FILE": str(output)})
    assert out["ROWS_SCORED"] == 100
    assert out["OUTPUT_SHA256"] == hashlib.sha256(output.read_bytes()).hexdigest()

    missing = run(instances, "wt-score", {"MODEL_ID": MODEL}, ok=False)
    assert missing["MLC_ERROR_CODE"] == "MLC_MISSING_TEST_DATA"


def test_drift_against_the_training_data(worker, instances, data) -> None:
    out = run(instances, "wt-drift", {"MODEL_ID": f"{MODEL}/1", "CURRENT_DATA": str(data["shifted"])})
    assert out["DRIFT_VERDICT"] in ("notify", "investigate", "retrain")
    assert "mean radius" in out["DRIFT_RESULTS"]["drifted_features"]
    same = run(instances, "wt-drift", {"MODEL_ID": f"{MODEL}/1", "CURRENT_DATA": str(data["labelled"])})
    assert same["DRIFT_VERDICT"] == "ok"


def test_train_registers_a_child_version_once(worker, instances, models) -> None:
    out = run(instances, "wt-train", {"MODEL_ID": MODEL, "MODEL_VERSION": 1})
    assert out["PARENT_VERSION"] == 1 and out["MODEL_VERSION"] == 3 and out["TRAIN_RUN_ID"]
    child = models["registry"].get_version(f"{MODEL}/3")
    assert child.tags["mlc.dedupe_key"].startswith(out["_pi"])
    assert child.tags["mlc.parent_version"] == "1"


def test_deploy_without_a_runtime_then_to_a_batch_runtime(worker, instances, wt_settings) -> None:
    from modelops_mlc.runtimes import DeploymentManager, RuntimeCatalog

    refused = run(instances, "wt-deploy", {"MODEL_ID": MODEL, "MODEL_VERSION": 1, "MODEL_STAGE": "PROD"}, ok=False)
    assert refused["MLC_ERROR_CODE"] == "MLC_NO_RUNTIME"

    RuntimeCatalog(wt_settings).add("wt-batch", tags={"stage": "QA", "TAG": "wt-svc"}, replace=True)
    out = run(instances, "wt-deploy", {"MODEL_ID": MODEL, "MODEL_VERSION": 1})
    assert out["DEPLOY_MODE"] == "batch" and out["RUNTIME_NAME"] == "wt-batch"
    deployments = [d for d in DeploymentManager(wt_settings).list() if d.model_name == MODEL]
    assert [d.id for d in deployments] == [out["DEPLOYMENT_ID"]]

    found = run(instances, "wt-get-model", {"LOOKUP": "batch-deployment", "TAG": "wt-svc", "MODEL_STAGE": "QA"})
    assert found["MODEL_ID"] == MODEL and found["MODEL_VERSION"] == 1
    assert found["DEPLOYMENT_ID"] == out["DEPLOYMENT_ID"] and found["RUNTIME_NAME"] == "wt-batch"


def test_create_ticket_opens_a_local_ticket_with_the_model_context(worker, instances, wt_settings) -> None:
    from modelops_mlc.tickets import get_ticket_system

    out = run(instances, "wt-create-ticket", {
        "TICKET_KIND": "rejection", "TICKET_REASON": "accuracy below 0.95", "TICKET_SYSTEM": "local",
        "MODEL_ID": MODEL, "MODEL_VERSION": 2, "TEST_METRICS": {"accuracy": 0.62},
    })
    assert out["TICKET_KEY"] and out["TICKET_STATE"] == "Open"
    ticket = get_ticket_system(wt_settings, "local").get(out["TICKET_KEY"])
    assert "accuracy below 0.95" in ticket.title and "0.62" in ticket.description
    assert ticket.process_instance_id == out["_pi"]


def test_notify_records_one_notification(worker, instances, wt_settings) -> None:
    from modelops_mlc.tickets.notifications import list_notifications

    out = run(instances, "wt-notify", {"NOTIFY_LEVEL": "warning", "NOTIFY_MESSAGE": "drift found", "MODEL_ID": MODEL})
    mine = [n for n in list_notifications(wt_settings) if n.id == out["NOTIFICATION_ID"]]
    assert len(mine) == 1
    assert mine[0].level == "warning" and mine[0].message == "drift found" and mine[0].model_id == MODEL
    assert mine[0].dedupe_key.startswith(f"{out['_pi']}:Task_notify")


def _redelivered(instances: Instances, pi: str, activity_id: str, variables: dict[str, Any], settings: Any) -> Any:
    """The context a second delivery of the same task would carry (same instance and activity instance)."""
    from workers.handlers import TaskContext

    [act] = [a for a in instances.client.history_activities(pi) if a.activity_id == activity_id]
    return TaskContext(topic=activity_id, task_id="redelivered", process_instance_id=pi, activity_id=activity_id,
                       activity_instance_id=act.id, variables=variables, settings=settings, worker_id="second")


def test_redelivered_deploy_ticket_and_notify_have_their_effect_once(worker, instances, wt_settings) -> None:
    """Call the handlers again as a redelivery would (the runner's replay bypassed): the SDK's
    dedupe keys return the first effect instead of making a second one."""
    from modelops_mlc.runtimes import DeploymentManager
    from modelops_mlc.tickets.notifications import list_notifications
    from workers.create_ticket import create_ticket
    from workers.deploy import deploy
    from workers.notify import notify

    dep_vars = {"MODEL_ID": MODEL, "MODEL_VERSION": 2}
    first = run(instances, "wt-deploy", dep_vars)
    again = deploy(_redelivered(instances, first["_pi"], "Task_deploy", dep_vars, wt_settings))
    assert again["DEPLOYMENT_ID"] == first["DEPLOYMENT_ID"]
    assert len([d for d in DeploymentManager(wt_settings).list() if d.model_name == MODEL and d.model_version == "2"]) == 1

    ticket_vars = {"TICKET_KIND": "review", "TICKET_REASON": "please look", "MODEL_ID": MODEL, "MODEL_VERSION": 2}
    opened = run(instances, "wt-create-ticket", ticket_vars)
    again = create_ticket(_redelivered(instances, opened["_pi"], "Task_create_ticket", ticket_vars, wt_settings))
    assert again["TICKET_KEY"] == opened["TICKET_KEY"]

    note_vars = {"NOTIFY_LEVEL": "info", "NOTIFY_MESSAGE": "once only"}
    sent = run(instances, "wt-notify", note_vars)
    again = notify(_redelivered(instances, sent["_pi"], "Task_notify", note_vars, wt_settings))
    assert again["NOTIFICATION_ID"] == sent["NOTIFICATION_ID"]
    assert len([n for n in list_notifications(wt_settings) if n.message == "once only"]) == 1
