"""The files `mlc plan` writes parse and validate the way their consumers read them: Grafana's dashboard
model, `promtool`, KServe's InferenceService schema, Kubernetes' CronJob schema, JSON Schema."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from modelops_mlc.errors import UsageError
from modelops_mlc.plan import load_inputs, write_plan
from modelops_mlc.plan.validate import PlanInvalid, check_inference_service

ROOT = Path(__file__).resolve().parents[3]
BPMN = ROOT / "bpmn"
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(PROMTOOL is None, reason="promtool not installed (Debian package prometheus; "
                                                             ".ci/run installs it)")


def plan_inputs(**overrides: Any) -> Any:
    values: dict[str, Any] = {
        "model_name": "fraud", "model_type": "classification", "deployment_target": "online",
        "scale_requirements": {"latency_ms": 100, "rps": 2500}, "governance_level": "production",
        "model_format": "sklearn", "storage_uri": "s3://models/fraud", "namespace": "risk",
        "data": {"current": "/data/fraud/latest.csv", "training": "/data/fraud/train.csv"},
    }
    values.update(overrides)
    return load_inputs(values)


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory, mlflow_db_template: Path) -> Any:
    """One installation for the module, with a real (empty) MLflow registry: the InferenceService is built by
    `mlc manifest kserve`'s code, which looks the model up there."""
    from modelops_mlc.config import Settings

    home = tmp_path_factory.mktemp("plan-home")
    shutil.copyfile(mlflow_db_template, home / "mlflow.db")
    return Settings(home=home, engine_url="http://127.0.0.1:9/engine-rest", store_url=f"sqlite:///{home / 'mlc.db'}",
                    mlflow_tracking_uri=f"sqlite:///{home / 'mlflow.db'}", engine_auth="none")


@pytest.fixture(scope="module")
def written(settings: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("plan") / "plan"
    write_plan(settings, plan_inputs(), out, BPMN)
    return out


def test_the_plan_writes_every_output(written: Path) -> None:
    files = sorted(str(p.relative_to(written)) for p in written.rglob("*") if p.is_file())
    assert files == ["PLAN.md", "deployment/inferenceservice.yaml", "experiment.json", "monitoring/alerts.yaml",
                     "monitoring/dashboard.json", "plan.json", "registry-schema.json", "retraining.yaml"]


# ---------------------------------------------------------------- Grafana

def test_the_dashboard_loads_as_a_grafana_dashboard_model(written: Path) -> None:
    from grafana_foundation_sdk.cog.plugins import register_default_plugins
    from grafana_foundation_sdk.models.dashboard import Dashboard, Panel
    from grafana_foundation_sdk.models.prometheus import Dataquery

    register_default_plugins()
    model = Dashboard.from_json(json.loads((written / "monitoring/dashboard.json").read_text()))
    assert model.title == "modelops-mlc runtimes: fraud" and model.uid
    titles = [p.title for p in model.panels or [] if isinstance(p, Panel)]
    assert {"Requests per second", "Error rate", "Latency p50 / p95 / p99",
            "Drift: PSI per feature (latest monitor run)"} <= set(titles)
    psi = next(p for p in model.panels if isinstance(p, Panel) and p.title.startswith("Drift"))
    assert "mlc_drift_psi" in psi.targets[0].expr
    # the plan is production-level with no tier given, so HIGH: the lines are that tier's DMN figures
    assert [t.value for t in psi.field_config.defaults.thresholds.steps] == [
        None, 0.1, _dmn_psi("HIGH", "investigate"), _dmn_psi("HIGH", "retrain")]
    assert "risk tier HIGH" in psi.description
    latency = next(p for p in model.panels if isinstance(p, Panel) and p.title.startswith("Latency"))
    assert all(isinstance(t, Dataquery) for t in latency.targets)
    assert [t.expr.split(",")[0] for t in latency.targets] == [
        "histogram_quantile(0.5", "histogram_quantile(0.95", "histogram_quantile(0.99"]
    assert model.templating.list_val[0].current.value == "fraud"


def _served_metric_names(settings: Any) -> set[str]:
    """What a real model server exposes at /metrics after one good and one failed request, serving a model
    with a monitor run in the store."""
    from prometheus_client.parser import text_string_to_metric_families

    from modelops_mlc.monitoring.history import FeatureResult, MonitorRun, record_run
    from modelops_mlc.registry import Registry
    from modelops_mlc.runtimes.server import _Metrics

    record_run(settings, Registry(settings), MonitorRun(model_id="fraud", model_version="1", verdict="notify",
                                                        features=[FeatureResult(feature="amount", psi=0.12)]),
               dedupe_key="plan-metric-names:1")
    metrics = _Metrics()
    metrics.track_drift(settings, lambda: ["fraud"])
    metrics.observe("fraud", "1", "v2", 0.01, 200)
    metrics.observe("fraud", "1", "v2", 0.02, 500)
    return {s.name for f in text_string_to_metric_families(metrics.render().decode()) for s in f.samples}


def test_dashboard_and_alerts_query_only_metrics_the_model_server_exposes(written: Path, settings: Any) -> None:
    import re

    exposed = _served_metric_names(settings)
    board = json.loads((written / "monitoring/dashboard.json").read_text())
    rules = yaml.safe_load((written / "monitoring/alerts.yaml").read_text())
    queries = [t["expr"] for p in board["panels"] for t in p.get("targets", [])]
    queries += [v["query"] for v in board["templating"]["list"]]
    queries += [r["expr"] for g in rules["groups"] for r in g["rules"]]
    used = {name for q in queries for name in re.findall(r"\b(mlc_[a-z_]+)\b", q)}
    assert used and used <= exposed, used - exposed
    assert {"mlc_inference_requests_total", "mlc_inference_errors_total", "mlc_inference_latency_seconds_bucket",
            "mlc_drift_psi"} <= used


# ---------------------------------------------------------------- Prometheus

@needs_promtool
def test_the_alert_rules_pass_promtool(written: Path) -> None:
    run = subprocess.run([PROMTOOL, "check", "rules", str(written / "monitoring/alerts.yaml")],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "SUCCESS: 3 rules found" in run.stdout


@needs_promtool
def test_the_error_rate_alerts_fire_at_their_thresholds(written: Path, tmp_path: Path) -> None:
    """promtool's rule unit tests: 2 % errors alerts (warning) and does not page; 10 % pages."""
    def series(errors_per_min: int) -> list[dict[str, str]]:
        return [{"series": 'mlc_inference_requests_total{model="fraud",version="1",protocol="v2"}',
                 "values": "0+100x20"},
                {"series": 'mlc_inference_errors_total{model="fraud",version="1",protocol="v2",status="500"}',
                 "values": f"0+{errors_per_min}x20"}]

    def fires(name: str, action: str, threshold: int, rate: int) -> dict[str, Any]:
        labels = {"model": "fraud", "severity": "warning" if action == "alert" else "page",
                  "mlc_threshold": f"error_rate_{action}"}
        notes = {"summary": f"model fraud: error rate above {threshold}%",
                 "description": f"{rate}% of the inference requests of model fraud failed over 5 minutes "
                                f"(threshold {threshold}%)."}
        return {"eval_time": "15m", "alertname": name, "exp_alerts": [{"exp_labels": labels, "exp_annotations": notes}]}

    def silent(name: str) -> dict[str, Any]:
        return {"eval_time": "15m", "alertname": name, "exp_alerts": []}

    tests = {"rule_files": [str(written / "monitoring/alerts.yaml")], "evaluation_interval": "1m", "tests": [
        {"interval": "1m", "input_series": series(2),
         "alert_rule_test": [fires("MlcErrorRateHigh", "alert", 1, 2), silent("MlcErrorRatePage")]},
        {"interval": "1m", "input_series": series(10),
         "alert_rule_test": [fires("MlcErrorRateHigh", "alert", 1, 10), fires("MlcErrorRatePage", "page", 5, 10)]},
        {"interval": "1m", "input_series": series(0),
         "alert_rule_test": [silent("MlcErrorRateHigh"), silent("MlcErrorRatePage")]},
    ]}
    spec = tmp_path / "alerts-test.yaml"
    spec.write_text(yaml.safe_dump(tests))
    run = subprocess.run([PROMTOOL, "test", "rules", str(spec)], capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr


# ---------------------------------------------------------------- KServe and Kubernetes

def test_the_inference_service_matches_kserves_schema(written: Path) -> None:
    doc = yaml.safe_load((written / "deployment/inferenceservice.yaml").read_text())
    check_inference_service(doc)
    predictor = doc["spec"]["predictor"]
    assert predictor["model"]["storageUri"] == "s3://models/fraud" and doc["metadata"]["namespace"] == "risk"
    assert (predictor["minReplicas"], predictor["maxReplicas"], predictor["scaleMetric"]) == (2, 5, "cpu")
    assert doc["metadata"]["annotations"]["serving.kserve.io/autoscalerClass"] == "hpa"
    assert predictor["canaryTrafficPercent"] == 10


def test_the_schema_check_refuses_what_kserve_refuses(written: Path) -> None:
    doc = yaml.safe_load((written / "deployment/inferenceservice.yaml").read_text())
    doc["spec"]["predictor"]["minReplica"] = 2  # a typo
    with pytest.raises(PlanInvalid, match="minReplica"):
        check_inference_service(doc)
    doc = yaml.safe_load((written / "deployment/inferenceservice.yaml").read_text())
    doc["spec"]["predictor"]["scaleMetric"] = "gpu"
    with pytest.raises(PlanInvalid, match="scaleMetric"):
        check_inference_service(doc)


def test_a_batch_plan_writes_a_cronjob_kubernetes_accepts(settings: Any, tmp_path: Path) -> None:
    kubernetes_validate = pytest.importorskip("kubernetes_validate", reason="kubernetes-validate (test extra) missing")
    out = tmp_path / "plan"
    write_plan(settings, plan_inputs(deployment_target="batch", scale_requirements={"data_volume_gb": 50},
                                     data={"batch_input": "/data/in.parquet", "batch_output": "/data/out.parquet"}),
               out, BPMN)
    assert not (out / "deployment/inferenceservice.yaml").exists()
    doc = yaml.safe_load((out / "deployment/cronjob.yaml").read_text())
    kubernetes_validate.validate(doc, "1.33", strict=True)
    command = doc["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["command"]
    assert command[:3] == ["mlc", "signal", "deployed-batch-job"]
    assert "INPUT_FILE=/data/in.parquet" in command and "TAG=fraud" in command


def test_a_new_plan_for_another_target_leaves_no_old_manifest(settings: Any, tmp_path: Path) -> None:
    out = tmp_path / "plan"
    write_plan(settings, plan_inputs(), out, BPMN)
    assert (out / "deployment/inferenceservice.yaml").exists()
    write_plan(settings, plan_inputs(deployment_target="batch", scale_requirements={"data_volume_gb": 5},
                                     data={"batch_input": "/in.csv", "batch_output": "/out.csv"}), out, BPMN)
    assert sorted(p.name for p in (out / "deployment").iterdir()) == ["cronjob.yaml"]


def test_a_batch_plan_without_its_files_writes_nothing(settings: Any, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="data.batch_input and data.batch_output"):
        write_plan(settings, plan_inputs(deployment_target="batch", scale_requirements={"data_volume_gb": 5}),
                   tmp_path / "plan", BPMN)
    assert not (tmp_path / "plan").exists()


def test_an_edge_plan_names_the_onnx_export_step(settings: Any, tmp_path: Path) -> None:
    out = tmp_path / "plan"
    write_plan(settings, plan_inputs(deployment_target="edge", scale_requirements={"latency_ms": 10}), out, BPMN)
    step = yaml.safe_load((out / "deployment/export-onnx.yaml").read_text())
    assert step["command"] == ["mlc", "model", "export", "fraud", "--format", "onnx"]
    assert step["produces"]["asset_role"] == "EDGE_MODEL"
    _parses_as_mlc_command(" ".join(step["command"]))  # the export command's options, as the CLI has them
    assert not (out / "deployment/inferenceservice.yaml").exists()


def test_a_registered_models_flavor_gives_the_format_and_its_version_the_manifest(settings: Any, tmp_path: Path,
                                                                                   breast_cancer: Any) -> None:
    from modelops_mlc.plan.rules import PlanConflict
    from modelops_mlc.registry import Registry

    X, _, estimator = breast_cancer
    Registry(settings).register("scorer", estimator=estimator, input_example=X.head(2))
    out = tmp_path / "plan"
    write_plan(settings, plan_inputs(model_name="scorer", model_format=None, storage_uri=None), out, BPMN)
    isvc = yaml.safe_load((out / "deployment/inferenceservice.yaml").read_text())
    assert isvc["metadata"]["annotations"]["mlc.modelops.io/model-uri"] == "models:/scorer/1"
    write_plan(settings, plan_inputs(model_name="scorer", model_format=None, deployment_target="edge"), out, BPMN)
    assert json.loads((out / "plan.json").read_text())["inputs"]["model_format"] == "sklearn"
    with pytest.raises(PlanConflict, match="give model_format"):  # not registered: nothing to read the format from
        write_plan(settings, plan_inputs(model_name="unknown", model_format=None, deployment_target="edge"), out, BPMN)


# ---------------------------------------------------------------- tracking, registry schema, retraining, PLAN.md

def test_experiment_json_names_secrets_by_variable_only(settings: Any, tmp_path: Path) -> None:
    out = tmp_path / "plan"
    write_plan(settings, plan_inputs(tracking_uri="https://mlflow.example.com", artifact_location="s3://art/fraud",
                                     team_size=12), out, BPMN)
    doc = json.loads((out / "experiment.json").read_text())
    assert doc["tracking_uri"] == doc["registry_uri"] == "https://mlflow.example.com"
    assert doc["artifact_location"] == "s3://art/fraud" and doc["stack"] == "shared"
    assert doc["secrets"] == {"tracking_username": "MLFLOW_TRACKING_USERNAME",
                              "tracking_password": "MLFLOW_TRACKING_PASSWORD", "tracking_token": "MLFLOW_TRACKING_TOKEN",
                              "database_url": "MLC_POSTGRES_URL", "aws_access_key_id": "AWS_ACCESS_KEY_ID",
                              "aws_secret_access_key": "AWS_SECRET_ACCESS_KEY"}


def test_the_default_tracking_is_this_installations_registry(written: Path, settings: Any) -> None:
    doc = json.loads((written / "experiment.json").read_text())
    assert doc["tracking_uri"] == settings.mlflow_tracking_uri and doc["secrets"] == {}
    assert doc["artifact_location"] == settings.artifacts_dir.resolve().as_uri()


def test_the_registry_schema_asks_production_for_data_owner_and_description(written: Path) -> None:
    import jsonschema

    from modelops_mlc.plan.schema import version_metadata

    schema = json.loads((written / "registry-schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    good = version_metadata({"owner": "risk-team", "target": "label", "TAG": "fraud", "primary_metric": "f1"},
                            ["test_data", "TRAINING_DATA"], "gradient boosting on 2025 claims")
    jsonschema.validate(good, schema)
    for broken in ({**good, "assets": ["TEST_DATA"]}, {k: v for k, v in good.items() if k != "description"},
                   {**good, "tags": {**good["tags"], "governance_level": "experimental"}}):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(broken, schema)


@pytest.mark.parametrize(("level", "required_assets"), [("experimental", []), ("staging", ["TEST_DATA", "TRAINING_DATA"])])
def test_every_governance_level_gets_a_valid_registry_schema(level: str, required_assets: list[str]) -> None:
    import jsonschema

    from modelops_mlc.plan.outputs import registry_schema
    from modelops_mlc.plan.rules import decide
    from modelops_mlc.plan.schema import version_metadata

    given = plan_inputs(governance_level=level)
    schema = registry_schema(given, decide(given))
    jsonschema.Draft202012Validator.check_schema(schema)
    tags = {"owner": "o", "target": "label", "TAG": "fraud", "primary_metric": "f1"}
    jsonschema.validate(version_metadata(tags, required_assets, None), schema)
    if required_assets:
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(version_metadata(tags, required_assets[:1], None), schema)


def _command_line_error(line: str) -> str | None:
    """Why the real `mlc` CLI refuses the command line (None: it accepts it). The line runs through the Typer app
    with ``--help`` appended: click parses every option and argument first (an unknown option or command fails
    with exit 2), then prints the help of the command the line resolved to instead of running it."""
    import shlex

    from typer.testing import CliRunner

    from modelops_mlc.cli.app import app

    result = CliRunner().invoke(app, [*shlex.split(line)[1:], "--help"], env={"COLUMNS": "200"})
    if result.exit_code != 0:
        return result.output
    usage = next(text for text in result.output.splitlines() if "Usage:" in text)
    return f"the line names a group, no command: {usage.strip()}" if "COMMAND [ARGS]" in usage else None


def _parses_as_mlc_command(line: str) -> None:
    """The line is a command the real `mlc` CLI accepts (its options parse)."""
    assert _command_line_error(line) is None, (line, _command_line_error(line))


def test_the_command_line_check_refuses_what_mlc_refuses() -> None:
    _parses_as_mlc_command("mlc retrain fraud --every 1w --data /d/train.csv")
    assert "--bogus" in (_command_line_error("mlc retrain fraud --every 1w --bogus 3") or "")
    assert "nosuch" in (_command_line_error("mlc monitor nosuch fraud") or "")
    assert "names a group" in (_command_line_error("mlc monitor") or "")


def test_retraining_maps_onto_the_monitor_and_retrain_schedules(written: Path) -> None:
    from modelops_mlc.monitoring.schedules import every_to_cycle

    doc = yaml.safe_load((written / "retraining.yaml").read_text())
    assert doc["monitor"]["schedule"] == {"every": "1d", "data": "/data/fraud/latest.csv", "reference": None}
    assert doc["retrain"]["schedule"] == {"every": "1w", "data": "/data/fraud/train.csv"}
    assert every_to_cycle(doc["monitor"]["schedule"]["every"]) == "R/P1D"
    assert doc["commands"] == ["mlc monitor schedule fraud --every 1d --data /data/fraud/latest.csv",
                               "mlc retrain fraud --every 1w --data /data/fraud/train.csv"]
    for line in doc["commands"]:
        _parses_as_mlc_command(line)
    assert doc["steps"][-1].startswith("mlc-canary-rollout")


def test_plan_md_gives_each_decision_with_its_rule(written: Path) -> None:
    plan = json.loads((written / "plan.json").read_text())
    text = (written / "PLAN.md").read_text()
    assert plan["decisions"]["fired"] == ["latency_50_to_500ms", "rps_over_1000", "governance_production", "team_under_5"]
    for rule_id in plan["decisions"]["fired"]:
        assert f"(rule `{rule_id}`)" in text
    assert "because rps above 1000 for online serving" in text


def test_plan_thresholds_point_at_the_dmn_rules_and_the_alert_rules(written: Path) -> None:
    homes = {t["id"]: t for t in json.loads((written / "plan.json").read_text())["thresholds"]}
    assert homes["accuracy_retrain"]["where"] == "mlc-monitor-criteria rule rule_accuracy_drop_retrain"
    assert homes["accuracy_investigate"]["where"] == "mlc-monitor-criteria rule rule_accuracy_drop_investigate"
    assert all(t["home"] != "none" for t in homes.values()), [t for t in homes.values() if t["home"] == "none"]
    assert homes["psi_retrain"]["home"] == "dmn" and homes["psi_monitor"]["home"] == "dmn"
    assert homes["error_rate_alert"]["where"] == "monitoring/alerts.yaml alert MlcErrorRateHigh"
    assert homes["error_rate_page"]["where"] == "monitoring/alerts.yaml alert MlcErrorRatePage"
    text = (written / "PLAN.md").read_text()
    for t in homes.values():
        assert t["words"] in text
    assert "nowhere yet" not in text and "does not act" not in text


# ---------------------------------------------------------------- thresholds per risk tier

def _dmn_psi(tier: str, verdict: str) -> float:
    """The PSI figure of bpmn/mlc-monitor-criteria.dmn's rule for ``verdict`` at risk tier ``tier`` (rule ids
    rule_psi_<verdict>_<tier>), read straight from the DMN's XML."""
    import xml.etree.ElementTree as ET

    ns = {"dmn": "https://www.omg.org/spec/DMN/20191111/MODEL/"}
    table = ET.parse(BPMN / "mlc-monitor-criteria.dmn").getroot().find(".//dmn:decisionTable", ns)
    assert table is not None
    columns = [i.findtext("dmn:inputExpression/dmn:text", namespaces=ns).strip() for i in table.findall("dmn:input", ns)]
    rule = table.find(f"dmn:rule[@id='rule_psi_{verdict}_{tier.lower()}']", ns)
    assert rule is not None, f"rule_psi_{verdict}_{tier.lower()}"
    entry = rule.findall("dmn:inputEntry", ns)[columns.index("MONITOR_MAX_PSI")].findtext("dmn:text", namespaces=ns)
    op, number = entry.split()
    assert op == ">"
    return float(number)


@pytest.mark.parametrize("tier", ["HIGH", "LOW"])
def test_plan_md_and_retraining_state_the_psi_figures_the_dmn_applies_to_the_tier(
        settings: Any, tmp_path: Path, tier: str) -> None:
    investigate, retrain = _dmn_psi(tier, "investigate"), _dmn_psi(tier, "retrain")
    assert (investigate, retrain) != (0.2, 0.25)  # the tier has figures of its own, else this proves nothing
    out = tmp_path / "plan"
    write_plan(settings, plan_inputs(risk_tier=tier), out, BPMN)
    text = (out / "PLAN.md").read_text()
    assert f"- PSI above {investigate:g} -> investigate: mlc-monitor-criteria rule rule_psi_investigate_{tier.lower()}" in text
    assert f"- PSI above {retrain:g} -> retrain: mlc-monitor-criteria rule rule_psi_retrain_{tier.lower()}" in text
    assert f"risk tier {tier}: the decision tests MONITOR_MAX_PSI > {investigate:g} instead of the default > 0.2" in text
    assert "is not a Prometheus metric" not in text and "`mlc_drift_psi`" in text
    triggers = [t["on"] for t in yaml.safe_load((out / "retraining.yaml").read_text())["triggers"]]
    assert (f"verdict retrain of mlc-monitor-criteria (PSI above {retrain:g}, accuracy drop above 10%)"
            in triggers), triggers
    board = json.loads((out / "monitoring/dashboard.json").read_text())
    psi = next(p for p in board["panels"] if p["title"].startswith("Drift"))
    assert [s["value"] for s in psi["fieldConfig"]["defaults"]["thresholds"]["steps"]] == [
        None, 0.1, investigate, retrain]


# ---------------------------------------------------------------- no secret in a plan or its errors

def test_a_schema_error_names_the_place_and_the_rule_never_the_value() -> None:
    from modelops_mlc.plan.outputs import EXPERIMENT_SCHEMA
    from modelops_mlc.plan.validate import check

    doc = {"experiment_name": "mlc", "tracking_uri": "postgresql+psycopg://mlc:Pw0rdX@db:5432/mlc",
           "registry_uri": "x", "artifact_location": None, "stack": "simple", "secrets": {}}
    with pytest.raises(PlanInvalid) as caught:
        check("experiment.json", doc, EXPERIMENT_SCHEMA)
    assert caught.value.message.startswith("experiment.json does not validate at tracking_uri: it breaks the schema "
                                           'rule {"not": {"pattern": ')
    assert "Pw0rdX" not in caught.value.message
    with pytest.raises(PlanInvalid) as caught:
        check("experiment.json", {**doc, "tracking_uri": "x", "stack": "Pw0rdX"}, EXPERIMENT_SCHEMA)
    assert "at stack:" in caught.value.message and "Pw0rdX" not in caught.value.message


def test_without_the_decision_the_dashboard_draws_the_default_psi_lines_and_says_so(settings, tmp_path: Path) -> None:
    """An installed mlc with no bpmn/ beside it cannot read mlc-monitor-criteria: the dashboard keeps the
    default lines, labelled as defaults, rather than none."""
    out = tmp_path / "plan"
    write_plan(settings, plan_inputs(), out, None)
    board = json.loads((out / "monitoring/dashboard.json").read_text())
    psi = next(p for p in board["panels"] if p["title"].startswith("Drift"))
    assert [s["value"] for s in psi["fieldConfig"]["defaults"]["thresholds"]["steps"]] == [None, 0.1, 0.2, 0.25]
    assert "the monitor's default thresholds" in psi["description"]
