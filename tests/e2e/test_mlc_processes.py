"""Every path of the three MLC processes on the real stack: engine, worker, MLflow, a runtime
server and the local ticket system. Each test checks what a user would: the end event the
instance reached, the ticket and its content, the deployment record, the predictions written."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.dummy import DummyClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from modelops_mlc.engine import EngineClient
from tests.e2e.conftest import StackHandle
from tests.support.waiting import wait_for

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    frame = load_breast_cancer(as_frame=True).frame
    frame.columns = [c.replace(" ", "_") for c in frame.columns]
    train, test = train_test_split(frame, test_size=0.4, random_state=3, stratify=frame["target"])
    d = tmp_path_factory.mktemp("e2e-data")
    files = {"train": train, "test": test}
    paths = {}
    for name, df in files.items():
        paths[name] = d / f"{name}.csv"
        df.to_csv(paths[name], index=False)
    flipped = test.copy()
    flipped["target"] = 1 - flipped["target"]
    paths["flipped"] = d / "flipped.csv"
    flipped.to_csv(paths["flipped"], index=False)
    paths["features"] = d / "features.csv"
    test.drop(columns=["target"]).to_csv(paths["features"], index=False)
    paths["wrong_columns"] = d / "wrong.csv"
    test.rename(columns={"mean_radius": "radius_mean"}).to_csv(paths["wrong_columns"], index=False)
    x, y = train.drop(columns=["target"]), train["target"]
    good = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(x, y)
    weak = DummyClassifier(strategy="most_frequent").fit(x, y)
    return {"paths": paths, "x": x, "test": test, "good": good, "weak": weak, "dir": d}


def register(stack: StackHandle, estimator: Any, data: dict[str, Any], *, tag: str, test_data: bool = True,
             extra_tags: dict[str, str] | None = None) -> str:
    from modelops_mlc.registry import Registry

    name = f"e2e-{tag}-{uuid.uuid4().hex[:6]}"
    assets = {"TEST_DATA": str(data["paths"]["test"])} if test_data else {}
    Registry(stack.settings).register(
        name, estimator=estimator, tags={"TAG": tag, "target": "target", "run_test": "true", **(extra_tags or {})},
        assets=assets, input_example=data["x"].head(3),
    )
    return name


def submit(client: EngineClient, name: str, **variables: Any) -> str:
    client.signal("mlc.model-submitted", {"MODEL_ID": name, "MODEL_VERSION": 1, **variables})
    return wait_for(lambda: [i.id for i in client.instances(model_id=name, process_key="mlc-deploy-with-test")],
                    what=f"deploy-with-test of {name}")[0]


def end_of(client: EngineClient, instance_id: str, timeout: float = 180) -> str:
    def ended() -> str | None:
        if client.history_instance(instance_id).state == "ACTIVE":
            return None
        ends = [a.activity_id for a in client.history_activities(instance_id) if a.activity_type.endswith("EndEvent")]
        return ends[-1] if ends else "?"

    return wait_for(ended, timeout=timeout, what=f"instance {instance_id} to end")


def waiting_at(client: EngineClient, instance_id: str, activity: str, timeout: float = 180) -> None:
    def there() -> bool:
        acts = client.history_activities(instance_id)
        incidents = client.incidents(process_instance_id=instance_id)
        assert not incidents, f"incident instead of reaching {activity}: {incidents[0].message}"
        assert client.history_instance(instance_id).state == "ACTIVE", (
            f"ended at {[a.activity_id for a in acts if a.activity_type.endswith('EndEvent')]} instead of waiting at {activity}")
        return any(a.activity_id == activity and a.end_time is None for a in acts)

    wait_for(there, timeout=timeout, what=f"{instance_id} to wait at {activity}")


def review(client: EngineClient, instance_id: str, approved: bool) -> None:
    waiting_at(client, instance_id, "task_review")
    [task] = client.tasks(process_instance_id=instance_id)
    client.claim(task.id, "reviewer1")
    client.complete_task(task.id, {"approved": approved, "review_comment": "e2e"})


def tickets(run_mlc, name: str) -> list[dict[str, Any]]:
    r = run_mlc("ticket", "list", "--model-id", name, "--json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def ticket_text(run_mlc, key: str) -> str:
    r = run_mlc("ticket", "show", key, "--json")
    assert r.returncode == 0, r.stderr
    t = json.loads(r.stdout)
    return f"{t['title']}\n{t['description']}"


def test_pass_review_approved_deploys_online(stack: StackHandle, client: EngineClient, data, run_mlc) -> None:
    name = register(stack, data["good"], data, tag="online")
    inst = submit(client, name)
    review(client, inst, approved=True)
    assert end_of(client, inst) == "end_deployed"

    variables = client.variables(inst)
    assert variables["DEPLOY_MODE"] == "online"
    assert variables["TEST_VERDICT"]["passed"] is True
    assert client.history_instance(inst).business_key == f"{name}:1"

    r = run_mlc("deployment", "list", "--json")
    deps = [d for d in json.loads(r.stdout) if d["model_name"] == name]
    assert [(d["mode"], d["state"], d["runtime"]) for d in deps] == [("online", "deployed", "local")]
    assert deps[0]["process_instance_id"] == inst

    rows = data["test"].drop(columns=["target"]).head(20)
    payload = {"dataframe_split": {"columns": list(rows.columns), "data": rows.values.tolist()}}
    response = httpx.post(f"{stack.runtime_url}/invocations", params={"model": name}, json=payload, timeout=30)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["predictions"] == data["good"].predict(rows).tolist()


def test_review_rejected_opens_a_rejection_ticket(stack: StackHandle, client: EngineClient, data, run_mlc) -> None:
    name = register(stack, data["good"], data, tag="rejected")
    inst = submit(client, name)
    review(client, inst, approved=False)
    assert end_of(client, inst) == "end_rejected"
    [ticket] = tickets(run_mlc, name)
    assert ticket["process_instance_id"] == inst
    text = ticket_text(run_mlc, ticket["key"])
    assert name in text and "roc_auc" in text  # the model and its test results


def test_failed_criteria_end_rejected_with_the_reason(stack: StackHandle, client: EngineClient, data, run_mlc) -> None:
    name = register(stack, data["weak"], data, tag="weak")
    inst = submit(client, name)
    assert end_of(client, inst) == "end_rejected"
    verdict = client.variables(inst)["TEST_VERDICT"]
    assert verdict["passed"] is False and "roc_auc" in verdict["reason"]
    [ticket] = tickets(run_mlc, name)
    assert verdict["reason"] in ticket_text(run_mlc, ticket["key"])
    assert not client.tasks(process_instance_id=inst)  # no review for a failed model


def test_missing_test_data_then_ticket_done_retests(stack: StackHandle, client: EngineClient, data, run_mlc) -> None:
    name = register(stack, data["good"], data, tag="retest", test_data=False)
    inst = submit(client, name)
    waiting_at(client, inst, "catch_test_ticket_updated")
    [ticket] = tickets(run_mlc, name)
    assert "MLC_MISSING_TEST_DATA" in ticket_text(run_mlc, ticket["key"])

    # the reviewer attaches test data and moves the ticket to Done: the watcher resumes the process
    assert run_mlc("model", "asset", f"{name}/1", f"TEST_DATA={data['paths']['test']}").returncode == 0
    r = run_mlc("ticket", "move", ticket["key"], "Done", "--comment", "test data attached")
    assert r.returncode == 0, r.stderr
    review(client, inst, approved=True)
    assert end_of(client, inst) == "end_deployed"
    runs = [a for a in client.history_activities(inst) if a.activity_id == "task_run_test"]
    assert len(runs) == 2  # the test ran again after the ticket was done


def test_missing_test_data_ticket_rejected_ends_rejected(stack: StackHandle, client: EngineClient, data, run_mlc) -> None:
    name = register(stack, data["good"], data, tag="norest", test_data=False)
    inst = submit(client, name)
    waiting_at(client, inst, "catch_test_ticket_updated")
    [ticket] = tickets(run_mlc, name)
    assert run_mlc("ticket", "move", ticket["key"], "Rejected").returncode == 0
    assert end_of(client, inst) == "end_rejected"


def test_job_failure_opens_a_rejection_ticket(stack: StackHandle, client: EngineClient, data, run_mlc) -> None:
    name = register(stack, data["good"], data, tag="jobfail", test_data=False)
    assert run_mlc("model", "asset", f"{name}/1", f"TEST_DATA={data['paths']['wrong_columns']}").returncode == 0
    inst = submit(client, name)
    waiting_at(client, inst, "catch_test_ticket_updated")
    variables = client.variables(inst)
    assert variables["MLC_ERROR_CODE"] == "MLC_JOB_FAILED"
    [ticket] = tickets(run_mlc, name)
    assert "mean_radius" in ticket_text(run_mlc, ticket["key"])  # the schema error names the column


def test_no_runtime_ends_failed_with_an_error_ticket(stack: StackHandle, client: EngineClient, data, run_mlc) -> None:
    name = register(stack, data["good"], data, tag="nowhere")
    inst = submit(client, name, MODEL_STAGE="NOWHERE")
    review(client, inst, approved=True)
    assert end_of(client, inst) == "end_failed"
    assert client.variables(inst)["MLC_ERROR_CODE"] == "MLC_NO_RUNTIME"
    [ticket] = tickets(run_mlc, name)
    text = ticket_text(run_mlc, ticket["key"])
    assert "MLC_NO_RUNTIME" in text and "local" in text  # names the refused runtime and why


def test_batch_deployment_and_batch_job(stack: StackHandle, client: EngineClient, data, run_mlc) -> None:
    stage = f"BATCH{uuid.uuid4().hex[:4].upper()}"
    assert run_mlc("runtime", "add", f"batch-{stage.lower()}", "--tag", f"stage={stage}").returncode == 0
    name = register(stack, data["good"], data, tag=f"svc{stage.lower()}")
    inst = submit(client, name, MODEL_STAGE=stage)
    review(client, inst, approved=True)
    assert end_of(client, inst) == "end_deployed"
    assert client.variables(inst)["DEPLOY_MODE"] == "batch"

    out = data["dir"] / f"scores-{stage}.csv"
    client.signal("mlc.deployed-batch-job", {"TAG": f"svc{stage.lower()}", "MODEL_STAGE": stage,
                                             "INPUT_FILE": str(data["paths"]["features"]), "OUTPUT_FILE": str(out)})
    [job] = wait_for(lambda: client.instances(process_key="mlc-run-batch-job", variables={"OUTPUT_FILE": str(out)}),
                     what="the batch job")
    assert end_of(client, job.id) == "end_scored"
    scored = pd.read_csv(out)
    features = data["test"].drop(columns=["target"])
    assert len(scored) == len(features)
    prediction = [c for c in scored.columns if c not in features.columns][0]
    assert scored[prediction].tolist() == data["good"].predict(features).tolist()
    assert client.variables(job.id)["ROWS_SCORED"] == len(features)


def test_batch_job_without_batch_deployment_fails_with_a_ticket(stack: StackHandle, client: EngineClient, run_mlc,
                                                                 tmp_path: Path) -> None:
    tag = f"ghost-{uuid.uuid4().hex[:6]}"
    client.signal("mlc.deployed-batch-job", {"TAG": tag, "INPUT_FILE": str(tmp_path / "in.csv"),
                                             "OUTPUT_FILE": str(tmp_path / "out.csv")})
    [job] = wait_for(lambda: client.instances(process_key="mlc-run-batch-job", variables={"TAG": tag}), what="batch job")
    assert end_of(client, job.id) == "end_failed"
    code = client.variables(job.id)["MLC_ERROR_CODE"]
    assert code in ("MLC_NO_RUNTIME", "MLC_MODEL_NOT_FOUND")
    r = run_mlc("ticket", "list", "--json")
    assert any(t["process_instance_id"] == job.id for t in json.loads(r.stdout))


def test_back_test_pass_notifies_and_fail_opens_a_ticket(stack: StackHandle, client: EngineClient, data, run_mlc) -> None:
    name = register(stack, data["good"], data, tag="backtest")
    client.signal("mlc.run-back-test", {"MODEL_ID": name, "INPUT_FILE": str(data["paths"]["test"])})
    [ok] = wait_for(lambda: client.instances(model_id=name, process_key="mlc-run-back-test"), what="back test")
    assert end_of(client, ok.id) == "end_passed"
    r = run_mlc("alerts", "--model-id", name, "--json")
    assert any(a["process_instance_id"] == ok.id for a in json.loads(r.stdout))
    assert tickets(run_mlc, name) == []

    client.signal("mlc.run-back-test", {"MODEL_ID": name, "INPUT_FILE": str(data["paths"]["flipped"])})
    bad = wait_for(lambda: [i for i in client.instances(model_id=name, process_key="mlc-run-back-test") if i.id != ok.id],
                   what="second back test")[0]
    assert end_of(client, bad.id) == "end_failed"
    [ticket] = tickets(run_mlc, name)
    assert ticket["process_instance_id"] == bad.id
    assert "roc_auc" in ticket_text(run_mlc, ticket["key"])


def test_back_test_of_unknown_model_notifies_the_reason(stack: StackHandle, client: EngineClient, run_mlc) -> None:
    name = f"ghost-{uuid.uuid4().hex[:6]}"
    client.signal("mlc.run-back-test", {"MODEL_ID": name})
    [inst] = wait_for(lambda: client.instances(model_id=name, process_key="mlc-run-back-test"), what="back test")
    assert end_of(client, inst.id) == "end_error"
    assert client.variables(inst.id)["MLC_ERROR_CODE"] == "MLC_MODEL_NOT_FOUND"
    r = run_mlc("alerts", "--json")
    assert any(a["process_instance_id"] == inst.id and name in a["message"] for a in json.loads(r.stdout))


def test_mlc_status_shows_every_part_healthy(stack: StackHandle, run_mlc) -> None:
    port = stack.runtime_url.rsplit(":", 1)[1]
    r = run_mlc("status", "--runtime-port", port, "--json")
    assert r.returncode == 0, r.stderr
    parts = {p["name"]: p for p in json.loads(r.stdout)}
    assert set(parts) == {"engine", "worker", "runtime", "ticket-watcher"}
    assert all(p["healthy"] for p in parts.values()), parts
    assert "worker(s)" in parts["worker"]["detail"]
    assert "round(s)" in parts["ticket-watcher"]["detail"]  # from the watcher's own status file
