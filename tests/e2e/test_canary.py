"""mlc-canary-rollout on the real stack: engine, worker, MLflow, the runtime server and the local
ticket system. A champion serves; the candidate goes out as a canary while the test sends live
traffic through the runtime; the SLO decision promotes a healthy candidate and rolls back one
that fails a share of its requests, with a ticket that says why."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression

from modelops_mlc.engine import EngineClient
from tests.e2e.conftest import StackHandle
from tests.e2e.test_mlc_processes import end_of, ticket_text, tickets

pytestmark = pytest.mark.slow

WINDOW = "PT5S"
MIN_REQUESTS = 20  # enough to judge here; the test machine may be slow to send more
FAULT_BELOW = 13.0  # the faulty candidate raises for a mean radius below this (about 40 % of the rows)

FAULTY_MODEL = f'''
import mlflow
from mlflow.pyfunc import PythonModel


class SometimesFails(PythonModel):
    """Predicts like the wrapped classifier, but raises for small tumours: a bug a smoke request misses."""

    def load_context(self, context):
        self.model = mlflow.sklearn.load_model(context.artifacts["classifier"])

    def predict(self, context, model_input, params=None):
        if (model_input["mean_radius"] < {FAULT_BELOW}).any():
            raise RuntimeError("injected fault: mean_radius below {FAULT_BELOW}")
        return self.model.predict(model_input)


mlflow.models.set_model(SometimesFails())
'''


@pytest.fixture(scope="module")
def data() -> dict[str, Any]:
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    X = X.iloc[:, :8]
    X.columns = [c.replace(" ", "_") for c in X.columns]
    example = X[X["mean_radius"] >= FAULT_BELOW].head(3)  # what the deploy's smoke request sends
    return {"X": X, "y": y, "example": example}


def register_champion(stack: StackHandle, data: dict[str, Any]) -> str:
    """Version 1, alias champion, deployed at 100 % on the stack's runtime."""
    from modelops_mlc.registry import Registry
    from modelops_mlc.runtimes import DeploymentManager

    name = f"e2e-canary-{uuid.uuid4().hex[:6]}"
    model = LogisticRegression(C=1.0, max_iter=5000).fit(data["X"], data["y"])
    registry = Registry(stack.settings)
    registry.register(name, estimator=model, input_example=data["example"])
    registry.set_alias(name, "champion", 1)
    DeploymentManager(stack.settings).deploy(name, "1", "PROD", requested_by="e2e")
    return name


def register_challenger(stack: StackHandle, data: dict[str, Any], name: str, *, faulty: bool, tmp: Path) -> int:
    import mlflow.pyfunc
    import mlflow.sklearn

    from modelops_mlc.registry import Registry

    registry = Registry(stack.settings)
    model = LogisticRegression(C=0.5, max_iter=5000).fit(data["X"], data["y"])
    if faulty:
        classifier, code, saved = tmp / "classifier", tmp / "sometimes_fails.py", tmp / "candidate"
        mlflow.sklearn.save_model(model, str(classifier))
        code.write_text(FAULTY_MODEL)
        mlflow.pyfunc.save_model(str(saved), python_model=str(code), artifacts={"classifier": str(classifier)},
                                 input_example=data["example"])
        info = registry.register(name, path=saved)
    else:
        info = registry.register(name, estimator=model, input_example=data["example"])
    registry.set_alias(name, "challenger", info.version)
    return info.version


@contextmanager
def traffic(stack: StackHandle, names: dict[str, bool], data: dict[str, Any]) -> Iterator[None]:
    """One-row V2 requests to each model (split by the runtime between its versions) until the block
    ends; for a model mapped to True the true labels follow as feedback, ten answers at a time."""
    order = data["X"].sample(frac=1.0, random_state=7).index
    rows, labels = data["X"].loc[order].values.tolist(), data["y"].loc[order].tolist()
    columns = list(data["X"].columns)
    stop = threading.Event()

    def send(name: str, labelled: bool) -> None:
        answered: list[dict[str, Any]] = []
        with httpx.Client(base_url=stack.runtime_url, timeout=30) as http:
            i = 0
            while not stop.is_set():
                row, label = rows[i % len(rows)], labels[i % len(rows)]
                i += 1
                try:
                    r = http.post(f"/v2/models/{name}/infer", json={"inputs": [
                        {"name": c, "shape": [1], "datatype": "FP64", "data": [v]} for c, v in zip(columns, row)]})
                    if labelled and r.status_code == 200:
                        answered.append({"request_id": r.headers["x-request-id"], "label": label})
                    if len(answered) == 10:
                        http.post(f"/v2/models/{name}/feedback", json={"feedback": answered, "source": "e2e"})
                        answered = []
                except httpx.TransportError:  # the runtime counts what reached it; keep sending
                    pass

    threads = [threading.Thread(target=send, args=item, daemon=True) for item in names.items()]
    for thread in threads:
        thread.start()
    try:
        yield
    finally:
        stop.set()
        for thread in threads:
            thread.join(30)


@pytest.fixture(scope="module")
def rollouts(stack: StackHandle, data, tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[str, str]]:
    """Two canaries watched side by side under live traffic: a healthy candidate and a faulty one.
    Returns {kind: (model name, process instance)} once both instances have ended."""
    names = {kind: register_champion(stack, data) for kind in ("healthy", "faulty")}
    candidates = {kind: register_challenger(stack, data, name, faulty=kind == "faulty",
                                            tmp=tmp_path_factory.mktemp(kind)) for kind, name in names.items()}
    labelled = {names["healthy"]: True, names["faulty"]: False}
    with EngineClient(stack.settings) as client, traffic(stack, labelled, data):
        started = {kind: client.start("mlc-canary-rollout", {  # no MODEL_STAGE: the stage the champion serves in
            "MODEL_ID": name, "MODEL_VERSION": candidates[kind], "CANARY_WEIGHT": 50, "CANARY_WINDOW": WINDOW,
            "CANARY_MIN_REQUESTS": MIN_REQUESTS,
        }).id for kind, name in names.items()}
        for inst in started.values():
            end_of(client, inst)
    return {kind: (names[kind], started[kind]) for kind in names}


def deployments(stack: StackHandle, name: str) -> list[tuple[str, str, int]]:
    from modelops_mlc.runtimes import DeploymentManager

    return [(d.model_version, d.stage, d.state, d.traffic_weight) for d in DeploymentManager(stack.settings).list(name)]


def test_a_healthy_canary_is_promoted(stack: StackHandle, client: EngineClient, rollouts) -> None:
    from modelops_mlc.registry import Registry

    name, inst = rollouts["healthy"]
    assert end_of(client, inst) == "end_promoted"
    variables = client.variables(inst)
    assert variables["CANARY_OUTCOME"] == "promoted"
    figures = variables["CANARY_FIGURES"]
    assert figures["version"] == "2" and figures["requests"] >= MIN_REQUESTS and figures["errors"] == 0
    assert figures["error_rate"] == 0.0 and 0 < figures["p99_ms"] <= 250
    assert figures["labelled"] > 0 and figures["accuracy"] > 0.8  # the labels the test sent back
    assert variables["CANARY_VERDICT"]["reason"].endswith(f"accuracy {figures['accuracy']:.4f}")
    assert variables["DEPLOYMENT_ID"] == figures["deployment_id"]

    assert deployments(stack, name) == [("1", "PROD", "retired", 50), ("2", "PROD", "deployed", 100)]
    registry = Registry(stack.settings)
    assert registry.get_model(name).aliases == {"champion": 2}  # challenger removed
    assert registry.get_version(f"{name}/1").tags.get("mlc.retired") == "true"  # retired, still in the registry
    assert "mlc.retired" not in registry.get_version(f"{name}/2").tags


def test_a_canary_with_errors_is_rolled_back_with_a_ticket(stack: StackHandle, client: EngineClient, rollouts,
                                                           run_mlc) -> None:
    from modelops_mlc.registry import Registry

    name, inst = rollouts["faulty"]
    assert end_of(client, inst) == "end_rolled_back"
    variables = client.variables(inst)
    assert variables["CANARY_OUTCOME"] == "rolled-back"
    figures = variables["CANARY_FIGURES"]
    assert figures["requests"] >= MIN_REQUESTS
    assert figures["errors_by_status"] == {"500": figures["errors"]}  # the injected fault, nothing else
    assert figures["error_rate"] == figures["errors"] / figures["requests"] > 0.1
    assert variables["CANARY_VERDICT"]["promote"] is False
    assert figures["accuracy"] is None  # no feedback labels: not yet known

    # the canary is retired, the champion serves everything again and stays champion
    assert deployments(stack, name) == [("1", "PROD", "deployed", 100), ("2", "PROD", "retired", 50)]
    assert Registry(stack.settings).get_model(name).aliases == {"champion": 1, "challenger": 2}

    [ticket] = tickets(run_mlc, name)
    assert ticket["process_instance_id"] == inst
    text = ticket_text(run_mlc, ticket["key"])
    rate = f"{figures['error_rate']:.4f}"
    assert f"error rate {rate} above the SLO 0.01" in text  # why
    assert f"{figures['requests']} requests, {figures['errors']} errors (error rate {rate})" in text  # the figures
    assert "rolled back automatically" in text and "Traffic is back on version 1" in text


def test_history_shows_the_promotion_and_the_rollback(stack: StackHandle, rollouts, run_mlc) -> None:
    """`mlc history` of each model: the promoted one's champion alias moved 1 -> 2 by the rollout's worker
    and its deployment promoted; the rolled-back one's canary deployment rolled back, by the same path."""
    import json

    def history(name: str) -> list[dict[str, Any]]:
        r = run_mlc("history", name, "--json")
        assert r.returncode == 0, r.stderr
        return json.loads(r.stdout)

    name, inst = rollouts["healthy"]
    events = history(name)
    [moved] = [e for e in events if e["kind"] == "alias" and e["details"]["alias"] == "champion"
               and e["details"]["before"] is not None]
    assert (str(moved["details"]["before"]), str(moved["details"]["after"])) == ("1", "2")
    assert moved["actor"].startswith("worker:") and moved["instance_id"] == inst
    actions = [(e["version"], e["details"]["action"]) for e in events if e["kind"] == "deployment"]
    assert (2, "promote") in actions and (1, "retire") in actions

    name, inst = rollouts["faulty"]
    events = history(name)
    actions = [(e["version"], e["details"]["action"]) for e in events if e["kind"] == "deployment"]
    assert (2, "rollback") in actions and (2, "promote") not in actions
    [rolled] = [e for e in events if e["kind"] == "deployment" and e["details"]["action"] == "rollback"
                and e["version"] == 2]
    assert rolled["actor"].startswith("worker:") and rolled["instance_id"] == inst
