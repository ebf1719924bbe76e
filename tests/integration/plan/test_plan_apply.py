"""`mlc plan` then `mlc plan apply` on the real stack (the session's engine, a real MLflow registry), twice:
the first run deploys the processes, sets the model's risk tier, governance level and registry schema and
starts its schedules; the second changes nothing and says so. Then `mlc model register` enforces the schema."""

from __future__ import annotations

import json
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from modelops_mlc.config import Settings
from modelops_mlc.engine import EngineClient
from tests.conftest import mlc_command
from tests.support.home import home_env, home_settings

ROOT = Path(__file__).resolve().parents[3]


@dataclass
class Stack:
    home: Path
    env: dict[str, str]
    settings: Settings
    client: EngineClient
    model: str

    def mlc(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*mlc_command(), *map(str, args)], env=self.env, capture_output=True, text=True,
                              timeout=300, cwd=self.home)


@pytest.fixture(scope="module")
def stack(engine: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A home on the session's engine with model version 1 registered (before any plan) and its data files."""
    import mlflow.sklearn
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression

    from modelops_mlc.registry import Registry

    home = tmp_path_factory.mktemp("plan-home")
    shutil.copytree(ROOT / "bpmn", home / "bpmn", ignore=shutil.ignore_patterns("tools"))  # one snapshot for both runs
    env = home_env(home, engine.url, MLC_TICKET_SYSTEM="local")
    settings = home_settings(env)
    x, y = load_breast_cancer(return_X_y=True, as_frame=True)
    frame = x.iloc[:, :5].assign(label=y)
    frame.to_csv(home / "train.csv", index=False)
    frame.tail(100).to_csv(home / "current.csv", index=False)
    estimator = LogisticRegression(max_iter=2000).fit(frame.drop(columns="label"), frame["label"])
    mlflow.sklearn.save_model(estimator, str(home / "model"), input_example=frame.drop(columns="label").head(2))
    name = f"planned-{uuid.uuid4().hex[:6]}"
    Registry(settings).register(name, estimator=estimator, tags={"target": "label", "TAG": name},
                                input_example=frame.drop(columns="label").head(2))
    client = EngineClient(settings)
    try:
        yield Stack(home=home, env=env, settings=settings, client=client, model=name)
    finally:
        for key in ("mlc-monitor-schedule", "mlc-retrain-schedule"):
            for instance in client.instances(process_key=key, active_only=True, business_key=name):
                client.request("DELETE", f"/process-instance/{instance.id}", params={"skipCustomListeners": "true"})
        client.close()


def _schedules(stack: Stack) -> dict[str, list[str]]:
    return {key: [i.id for i in stack.client.instances(process_key=key, active_only=True, business_key=stack.model)]
            for key in ("mlc-monitor-schedule", "mlc-retrain-schedule")}


def _deployed_xml(stack: Stack, key: str) -> str:
    """The XML of the latest definition of ``key`` (a process or a decision) as the engine holds it."""
    process = stack.client.process_definitions(key=key)
    if process:
        return stack.client.request("GET", f"/process-definition/{process[0].id}/xml")["bpmn20Xml"]
    decision = next(d for d in stack.client.decision_definitions() if d.key == key)
    return stack.client.request("GET", f"/decision-definition/{decision.id}/xml")["dmnXml"]


def _planned_xml(stack: Stack, key: str) -> str:
    from modelops_mlc.plan.apply import definition_files

    [path] = definition_files(stack.home / "bpmn", [key])
    return path.read_text()


@dataclass
class Applied:
    plan_dir: Path
    report: dict[str, Any]


@pytest.fixture(scope="module")
def applied(stack: Stack) -> Applied:
    """`mlc plan` then a first `mlc plan apply` of a production plan for the stack's model."""
    inputs = {
        "model_name": stack.model, "model_type": "classification", "deployment_target": "online",
        "scale_requirements": {"latency_ms": 150, "rps": 50}, "governance_level": "production",
        "model_format": "sklearn", "storage_uri": f"s3://models/{stack.model}",
        "data": {"current": str(stack.home / "current.csv"), "training": str(stack.home / "train.csv")},
    }
    (stack.home / "inputs.yaml").write_text(yaml.safe_dump(inputs))
    made = stack.mlc("plan", "--file", "inputs.yaml", "--out", "plan", "--bpmn-dir", "bpmn", "--json")
    assert made.returncode == 0, made.stderr
    plan_dir = stack.home / "plan"
    isvc = yaml.safe_load((plan_dir / "deployment/inferenceservice.yaml").read_text())
    assert isvc["metadata"]["labels"]["mlc.modelops.io/version"] == "1"  # `mlc manifest kserve`'s code, from the registry

    first = stack.mlc("plan", "apply", "plan", "--bpmn-dir", "bpmn", "--json")
    assert first.returncode == 0, first.stderr
    return Applied(plan_dir=plan_dir, report=json.loads(first.stdout))


def test_plan_apply_twice_makes_the_plan_real_once(stack: Stack, applied: Applied) -> None:
    plan_dir, report = applied.plan_dir, applied.report
    assert report["changed"] is True
    steps = {s["step"]: s for s in report["steps"]}
    assert steps["model"]["status"] == "changed"
    assert steps["monitor schedule"]["status"] == steps["retrain schedule"]["status"] == "changed"

    # the engine runs the plan's definitions (the latest version of each chosen key is the plan's file, not
    # just some definition of that key on the shared engine), the schedules run, the registry has the tags
    chosen = json.loads((plan_dir / "plan.json").read_text())["decisions"]["processes"]
    assert chosen
    for key in chosen:
        assert _deployed_xml(stack, key) == _planned_xml(stack, key), key
    schedules = _schedules(stack)
    assert [len(v) for v in schedules.values()] == [1, 1]
    timer = stack.client.variables(schedules["mlc-monitor-schedule"][0])
    assert timer["MONITOR_SCHEDULE"] == "R/P1D" and timer["CURRENT_DATA"] == str(stack.home / "current.csv")
    from mlflow import MlflowClient

    tags = MlflowClient(stack.settings.mlflow_tracking_uri).get_registered_model(stack.model).tags
    assert tags["risk_tier"] == "HIGH" and tags["governance_level"] == "production"
    assert json.loads(tags["mlc.registry_schema"]) == json.loads((plan_dir / "registry-schema.json").read_text())
    deployments = stack.client.request("GET", "/deployment/count", params={"name": "mlc"})["count"]

    second = stack.mlc("plan", "apply", "plan", "--bpmn-dir", "bpmn")
    assert second.returncode == 0, second.stderr
    assert "nothing changed" in second.stderr
    assert "changed " not in second.stdout.replace("unchanged", "")
    assert _schedules(stack) == schedules  # the same instances, not replaced
    assert stack.client.request("GET", "/deployment/count", params={"name": "mlc"})["count"] == deployments


def test_register_enforces_the_applied_schema(stack: Stack, applied: Applied) -> None:
    refused = stack.mlc("model", "register", stack.model, "--path", "model", "--tag", "target=label")
    assert refused.returncode == 2
    assert refused.stderr.startswith("error: version metadata of " + stack.model)
    assert "Traceback" not in refused.stderr and "required" in refused.stderr
    from modelops_mlc.registry import Registry

    assert [v.version for v in Registry(stack.settings).list_versions(stack.model)] == [1]
    accepted = stack.mlc("model", "register", stack.model, "--path", "model", "--tag", "target=label",
                         "--tag", f"TAG={stack.model}", "--tag", "owner=risk", "--tag", "primary_metric=f1",
                         "--description", "logistic regression", "--asset", "TRAINING_DATA=train.csv",
                         "--asset", "TEST_DATA=current.csv", "--json")
    assert accepted.returncode == 0, accepted.stderr
    assert json.loads(accepted.stdout)["version"] == 2


def test_a_later_plan_without_a_schedule_ends_the_earlier_one(stack: Stack, applied: Applied) -> None:
    """The model's schedules follow its latest applied plan: a staging plan (a weekly monitor, no retrain
    schedule) replaces the production plan's daily monitor and ends its weekly retrain; applied again, it
    changes nothing."""
    plan = json.loads((applied.plan_dir / "plan.json").read_text())["inputs"]
    staging = {**{k: plan[k] for k in ("model_name", "model_type", "deployment_target", "scale_requirements",
                                       "model_format", "storage_uri", "data")}, "governance_level": "staging"}
    (stack.home / "staging.yaml").write_text(yaml.safe_dump(staging))
    made = stack.mlc("plan", "--file", "staging.yaml", "--out", "staging", "--bpmn-dir", "bpmn")
    assert made.returncode == 0, made.stderr
    before = _schedules(stack)
    assert [len(v) for v in before.values()] == [1, 1]

    first = stack.mlc("plan", "apply", "staging", "--bpmn-dir", "bpmn", "--json")
    assert first.returncode == 0, first.stderr
    steps = {s["step"]: s for s in json.loads(first.stdout)["steps"]}
    assert steps["retrain schedule"]["status"] == "changed"
    assert steps["retrain schedule"]["detail"] == "ended the every 1w schedule: the plan has no retrain schedule"
    assert steps["monitor schedule"]["status"] == "changed"
    after = _schedules(stack)
    assert after["mlc-retrain-schedule"] == []
    [monitor] = after["mlc-monitor-schedule"]
    assert monitor not in before["mlc-monitor-schedule"]
    assert stack.client.variables(monitor)["MONITOR_SCHEDULE"] == "R/P7D"
    from mlflow import MlflowClient

    assert MlflowClient(stack.settings.mlflow_tracking_uri).get_registered_model(stack.model).tags[
        "governance_level"] == "staging"

    second = stack.mlc("plan", "apply", "staging", "--bpmn-dir", "bpmn", "--json")
    assert second.returncode == 0, second.stderr
    assert json.loads(second.stdout)["changed"] is False
    assert _schedules(stack) == after
