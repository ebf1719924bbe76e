"""A worker killed with -9 during every topic of the life cycle beyond the back test and
deploy-with-test (see test_worker_killed.py): the batch job (score), monitoring (drift,
monitor-check, monitor-record), productionize at governance_level production (scan), a retrain
that a canary promotes (retrain-claim, validate-data, train-submit, train-status, compare,
canary-prepare, canary-baseline, canary-figures, canary-promote, retrain-release) and a canary
that fails under live traffic and is rolled back (canary-rollback).

As there, the kill is timed on the engine (a fresh `mlc worker start` per step, SIGKILL of its
process group as soon as it holds a task of a topic not yet killed, in the instance or one its
call activities started); a topic whose handler finished before the kill landed is tried again on
a new instance, at most three. Each instance must complete at its expected end with no incident,
and every effect must be there once: MLflow runs by kind and status (none left RUNNING), the MLC
store's rows, registered versions and aliases, output files.

Short form (``make test``): monitoring, three kills in about a minute. The others are full form
(marker ``faults``, ``make test-faults``).
"""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest

from modelops_mlc.config import Settings
from modelops_mlc.engine import EngineClient
from tests.conftest import free_port, mlc_command
from tests.faults.lifecycle import Home, make_home
from tests.faults.support import KilledWorker, Scenario, ServerProcess, effects_per_instance
from tests.faults.test_worker_killed import LOCK_MS, _approve
from tests.support.cleanup import delete_unfinished

TRIES = 3  # instances a scenario may start to get every topic killed mid-task


def _driver(client: EngineClient, home: Home, tmp: Path, *process_keys: str) -> KilledWorker:
    keys = [arg for key in process_keys for arg in ("--process-key", key)]
    return KilledWorker(client, home.env, home.path, [*keys, "--concurrency", "1", "--lock-duration", str(LOCK_MS),
                                                      "--long-poll", "500"], tmp)


def _drive(scenario: Scenario, client: EngineClient, home: Home, tmp: Path, process_keys: tuple[str, ...],
           topics: set[str], start: Callable[[], str], timeout: float = 600,
           ) -> tuple[KilledWorker, list[str], dict[str, list[str]]]:
    """Start instances (at most TRIES) until every topic was killed mid-task; fill in ``scenario``.
    Returns the driver, the instances started and the end events of each (and of those they called)."""
    driver = _driver(client, home, tmp, *process_keys)
    started: list[str] = []
    try:
        for _ in range(TRIES):
            if topics <= set(driver.killed):
                break
            started.append(start())
            driver.run(started[-1], topics - set(driver.killed), timeout=timeout)
    finally:
        delete_unfinished(client, driver.instances)
    return driver, started, _conclude(scenario, client, driver, started)


def _called(client: EngineClient, instance_id: str) -> list[str]:
    """The instances the call activities of ``instance_id`` started (history: they may be over)."""
    return [row["id"] for row in client.request("GET", "/history/process-instance",
                                                params={"superProcessInstanceId": instance_id})]


def _conclude(scenario: Scenario, client: EngineClient, driver: KilledWorker,
              started: list[str]) -> dict[str, list[str]]:
    """The scenario's figures from the engine; returns each instance's (and called instance's) end events."""
    tree = [*started, *(sub for i in started for sub in _called(client, i))]
    scenario.faults = [f"worker kill -9 holding a {t} task" for t in driver.killed]
    scenario.faults += [f"kill came after the {t} handler finished (retried on a new instance)" for t in driver.missed]
    scenario.peak_memory_mib = round(driver.peak_memory_mib, 1)
    scenario.count(client, tree)
    scenario.incidents = sum(len(client.incidents(process_instance_id=i)) for i in tree)
    return {i: [a.activity_id for a in client.history_activities(i) if a.activity_type == "noneEndEvent"]
            for i in tree}


def _runs(settings: Settings, model: str) -> Counter[tuple[str, str]]:
    """MLflow runs about ``model``: (mlc.kind, status) -> how many."""
    from modelops_mlc.registry import Registry

    registry = Registry(settings)
    runs = registry.client.search_runs([registry.experiment_id], f"tags.`mlc.model_name` = '{model}'",
                                       max_results=1000)
    return Counter((r.data.tags.get("mlc.kind", ""), r.info.status) for r in runs)


def _rows(home: Home, table: str, ids: list[str]) -> dict[str, int]:
    return effects_per_instance(home.env["MLC_STORE_URL"], table, ids)


def _duplicated(*counts: dict[str, int]) -> int:
    return sum(max(0, n - 1) for found in counts for n in found.values())


def _assert_once(scenario: Scenario, home: Home, started: list[str], ends: dict[str, list[str]], end: str,
                 table: str, kind: str) -> None:
    """Every instance completed at ``end`` without an incident, with one row of the store's ``table``
    and one FINISHED MLflow run of ``kind`` each, and no run of the model left RUNNING."""
    rows = _rows(home, table, started)
    runs = _runs(home.settings, home.model)
    scenario.effects_duplicated = _duplicated(rows) + max(0, runs[(kind, "FINISHED")] - len(started))
    assert scenario.instances_completed == len(started) and scenario.incidents == 0
    assert ends == {i: [end] for i in started}
    assert rows == {i: 1 for i in started}
    assert runs[(kind, "FINISHED")] == len(started), runs
    assert not [k for (k, status) in runs if status == "RUNNING"], runs


@pytest.mark.faults
def test_worker_killed_during_score(engine, tmp_path: Path, scenario: Scenario) -> None:
    """mlc-run-batch-job on a batch deployment: one output file with every row, one notification."""
    from modelops_mlc.runtimes import DeploymentManager, RuntimeCatalog

    service = f"svc{uuid.uuid4().hex[:6]}"
    home = make_home(tmp_path / "home", engine.url, tags={"TAG": service})
    RuntimeCatalog(home.settings).add(f"batch-{service}", tags={"stage": "BATCH", "TAG": service})
    DeploymentManager(home.settings).deploy(home.model, "1", "BATCH", requested_by="faults")
    features = home.path / "features.csv"
    pd.read_csv(home.good).drop(columns=["target"]).to_csv(features, index=False)
    outputs: dict[str, Path] = {}

    def start() -> str:
        out = home.path / f"scored-{len(outputs)}.csv"
        instance = client.start("mlc-run-batch-job", {"TAG": service, "MODEL_STAGE": "BATCH",
                                                      "INPUT_FILE": str(features), "OUTPUT_FILE": str(out)}).id
        outputs[instance] = out
        return instance

    with EngineClient(home.settings) as client:
        driver, started, ends = _drive(scenario, client, home, tmp_path, ("mlc-run-batch-job",), {"score"}, start)
    _assert_once(scenario, home, started, ends, "end_scored", "mlc_notifications", "score")
    rows = len(pd.read_csv(features))
    assert {i: len(pd.read_csv(out)) for i, out in outputs.items()} == {i: rows for i in started}
    assert not list(home.path.glob("scored-*.csv.*")), "a killed score left a partial output beside the file"
    assert "score" in driver.killed, (driver.killed, driver.missed)


def test_worker_killed_during_each_monitor_topic(engine, tmp_path: Path, scenario: Scenario) -> None:
    """mlc-monitor on the data the model was trained on: no drift (end_ok), one monitor record in
    the MLC store and one finished monitor run in MLflow per instance."""
    home = make_home(tmp_path / "home", engine.url, training_data=True)
    topics = {"drift", "monitor-check", "monitor-record"}
    with EngineClient(home.settings) as client:
        driver, started, ends = _drive(scenario, client, home, tmp_path, ("mlc-monitor",), topics, lambda: client.start(
            "mlc-monitor", {"MODEL_ID": home.model, "CURRENT_DATA": str(home.good), "MONITOR_TRIGGER": "faults"}).id)
    _assert_once(scenario, home, started, ends, "end_ok", "mlc_monitor_runs", "monitor")
    assert topics <= set(driver.killed), (driver.killed, driver.missed)


@pytest.mark.faults
def test_worker_killed_during_scan(engine, tmp_path: Path, scenario: Scenario) -> None:
    """mlc-productionize of a governance_level production model without a model card: scanned
    once, then refused at the production gate with one ticket."""
    from modelops_mlc.registry import Registry

    home = make_home(tmp_path / "home", engine.url, tags={"governance_level": "production"})
    with EngineClient(home.settings) as client:
        driver, started, ends = _drive(scenario, client, home, tmp_path, ("mlc-productionize",), {"scan"},
                                       lambda: client.start("mlc-productionize", {
                                           "MODEL_ID": home.model, "MODEL_VERSION": 1, "SUBMITTED_BY": "faults"}).id)
        scans = {i: (client.variables(i)["SCAN_PASSED"], client.variables(i)["SCAN_RUN_ID"]) for i in started}
    _assert_once(scenario, home, started, ends, "end_rejected", "mlc_tickets", "scan")
    tags = Registry(home.settings).get_version(f"{home.model}/1").tags
    assert tags["security_scan"] == "passed" and (True, tags["security_scan_run"]) in scans.values(), scans
    assert "scan" in driver.killed, (driver.killed, driver.missed)


# ---------------------------------------------------------------------- retrain and canary

@pytest.fixture(scope="module")
def canary_stack(engine, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimpleNamespace]:
    """One MLC home with a runtime server (`mlc runtime serve`, stage PROD) on loopback, and the
    eight-feature data the canary and retrain e2e tests use."""
    from sklearn.datasets import load_breast_cancer
    from sklearn.model_selection import train_test_split

    tmp = tmp_path_factory.mktemp("faults-canary")
    home = make_home(tmp / "home", engine.url, rows=50)
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    X = X.iloc[:, :8]
    X.columns = [c.replace(" ", "_") for c in X.columns]
    x_train, x_test, y_train, y_test = train_test_split(X, y, test_size=0.4, random_state=3, stratify=y)
    paths = {"train": tmp / "train.csv", "test": tmp / "test.csv"}
    x_train.assign(target=y_train).to_csv(paths["train"], index=False)
    x_test.assign(target=y_test).to_csv(paths["test"], index=False)
    port = free_port()
    runtime = ServerProcess([*mlc_command(), "runtime", "serve", "rt-faults-prod", "--port", str(port), "--tag",
                             "stage=PROD"], home.env, f"http://127.0.0.1:{port}", "/v2/health/live", tmp / "rt.log")
    runtime.start()
    try:
        yield SimpleNamespace(home=home, settings=home.settings, runtime_url=runtime.url, tmp=tmp, paths=paths,
                              data={"X": X, "y": y, "example": X[X["mean_radius"] >= 13.0].head(3),
                                    "x_train": x_train, "y_train": y_train})
    finally:
        runtime.kill()


@pytest.mark.faults
def test_worker_killed_during_each_retrain_and_canary_promote_topic(canary_stack, tmp_path: Path,
                                                                    scenario: Scenario) -> None:
    """mlc-retrain of a champion fitted on 16 rows: the training job trains a better challenger,
    the comparison deploys it, a reviewer approves, and mlc-canary-rollout (called) watches it
    under live traffic and promotes it. One trained version, one training job, one comparison,
    one canary deployment, one notification naming the retired champion, the claim given back."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from modelops_mlc.registry import Registry
    from modelops_mlc.retraining.claims import holder_of
    from modelops_mlc.runtimes import DeploymentManager
    from modelops_mlc.store import open_store
    from modelops_mlc.tickets.notifications import list_notifications
    from tests.e2e.test_canary import traffic

    stack, data = canary_stack, canary_stack.data
    home, registry = stack.home, Registry(stack.settings)
    models: dict[str, str] = {}
    topics = {"retrain-claim", "validate-data", "train-submit", "train-status", "compare", "canary-prepare",
              "canary-baseline", "canary-figures", "canary-promote", "retrain-release"}

    def start() -> str:
        name = f"fault-retrain-{uuid.uuid4().hex[:6]}"
        few = data["x_train"].sample(16, random_state=0)
        weak = make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000)).fit(
            few, data["y_train"].loc[few.index])
        registry.register(name, estimator=weak, input_example=data["example"], tags={"target": "target"},
                          assets={"TRAINING_DATA": str(stack.paths["train"]), "TEST_DATA": str(stack.paths["test"])})
        registry.set_alias(name, "champion", 1)
        DeploymentManager(stack.settings).deploy(name, "1", "PROD", requested_by="faults")
        senders.enter_context(traffic(stack, {name: False}, data))
        instance = client.start("mlc-retrain", {
            "MODEL_ID": name, "TRAINING_DATA": str(stack.paths["train"]), "RETRAIN_TRIGGER": "faults",
            "RETRAIN_REQUEST": uuid.uuid4().hex, "TRAIN_POLL_INTERVAL": "PT1S", "CANARY_WEIGHT": 50,
            "CANARY_WINDOW": "PT5S", "CANARY_MIN_REQUESTS": 5}).id
        models[instance] = name
        reviewer = threading.Thread(target=_approve, args=(client, instance), daemon=True)
        reviewer.start()
        return instance

    with EngineClient(stack.settings) as client:
        with ExitStack() as senders:  # live traffic to each model start() registers, until the drive ends
            driver, started, ends = _drive(scenario, client, home, tmp_path, ("mlc-retrain", "mlc-canary-rollout"),
                                           topics, start, timeout=900)
        canaries = {i: _called(client, i) for i in started}
        retired = {i: client.variables(c[0]).get("RETIRED_VERSION") for i, c in canaries.items() if c}
    flat = [c for cs in canaries.values() for c in cs]
    jobs = _rows(home, "mlc_training_jobs", started)
    deployed = _rows(home, "mlc_deployments", flat)
    notified = _rows(home, "mlc_notifications", flat)
    versions = {i: sorted(v.version for v in registry.list_versions(name)) for i, name in models.items()}
    runs = {i: _runs(stack.settings, name) for i, name in models.items()}
    scenario.effects_duplicated = (_duplicated(jobs, deployed, notified)
                                   + sum(max(0, len(v) - 2) for v in versions.values())
                                   + sum(max(0, r[("compare", "FINISHED")] - 1) + max(0, r[("train", "FINISHED")] - 1)
                                         for r in runs.values()))

    assert scenario.instances_completed == scenario.instances_started and scenario.incidents == 0
    assert all(len(c) == 1 for c in canaries.values()), canaries
    assert {i: ends[i] for i in started} == {i: ["end_promoted"] for i in started}
    assert {c: ends[c] for c in flat} == {c: ["end_promoted"] for c in flat}
    assert versions == {i: [1, 2] for i in started}, "a redelivered train-submit trained a second version"
    assert jobs == {i: 1 for i in started} and deployed == {c: 1 for c in flat} and notified == {c: 1 for c in flat}
    assert retired == {i: 1 for i in started}, "the promotion lost the champion it retired"
    messages = [n.message for n in list_notifications(stack.settings) if n.model_id in models.values()]
    assert len(messages) == len(flat) and all(m.endswith("; version 1 retired") for m in messages), messages
    for instance, name in models.items():
        assert registry.get_model(name).aliases == {"champion": 2}
        assert registry.get_version(f"{name}/1").tags.get("mlc.retired") == "true"
        assert (runs[instance][("train", "FINISHED")], runs[instance][("compare", "FINISHED")]) == (1, 1), runs
        assert not [kind for (kind, status) in runs[instance] if status == "RUNNING"], runs
    assert {name: holder_of(open_store(stack.settings), name) for name in models.values()} == {
        name: None for name in models.values()}, "a retrain claim was not given back"
    assert topics <= set(driver.killed), (driver.killed, driver.missed)


@pytest.mark.faults
def test_worker_killed_during_canary_rollback(canary_stack, tmp_path: Path, scenario: Scenario) -> None:
    """mlc-canary-rollout of a candidate that fails 40 % of its requests: rolled back once, the
    champion serves everything again, one rollback ticket."""
    from modelops_mlc.registry import Registry
    from modelops_mlc.runtimes import DeploymentManager
    from tests.e2e.test_canary import register_challenger, register_champion, traffic

    stack, data = canary_stack, canary_stack.data
    models: dict[str, str] = {}

    def start() -> str:
        name = register_champion(stack, data)
        version = register_challenger(stack, data, name, faulty=True, tmp=stack.tmp / f"faulty-{len(models)}")
        senders.enter_context(traffic(stack, {name: False}, data))
        instance = client.start("mlc-canary-rollout", {
            "MODEL_ID": name, "MODEL_VERSION": version, "CANARY_WEIGHT": 50, "CANARY_WINDOW": "PT5S",
            "CANARY_MIN_REQUESTS": 20}).id
        models[instance] = name
        return instance

    with EngineClient(stack.settings) as client:
        with ExitStack() as senders:
            driver, started, ends = _drive(scenario, client, stack.home, tmp_path, ("mlc-canary-rollout",),
                                           {"canary-rollback"}, start)
    tickets = _rows(stack.home, "mlc_tickets", started)
    deployed = _rows(stack.home, "mlc_deployments", started)
    scenario.effects_duplicated = _duplicated(tickets, deployed)

    assert scenario.instances_completed == len(started) and scenario.incidents == 0
    assert ends == {i: ["end_rolled_back"] for i in started}
    assert tickets == {i: 1 for i in started} and deployed == {i: 1 for i in started}
    manager, registry = DeploymentManager(stack.settings), Registry(stack.settings)
    for name in models.values():
        assert [(d.model_version, d.state, d.traffic_weight) for d in manager.list(name)] == [
            ("1", "deployed", 100), ("2", "retired", 50)]
        assert registry.get_model(name).aliases == {"champion": 1, "challenger": 2}
    assert "canary-rollback" in driver.killed, (driver.killed, driver.missed)
