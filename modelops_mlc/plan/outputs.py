"""The files of a plan, each built, validated and only then written (:func:`write_plan`).

```
DIR/plan.json              the inputs and decisions (what `mlc plan apply` reads)
DIR/experiment.json        tracking: MLflow URI, artifact location, secrets as variable names
DIR/registry-schema.json   JSON Schema of the version metadata `mlc model register` enforces
DIR/deployment/            inferenceservice.yaml (KServe), cronjob.yaml (batch), export-onnx.yaml (edge)
DIR/monitoring/            dashboard.json (Grafana), alerts.yaml (Prometheus rules)
DIR/retraining.yaml        monitor and retrain schedules, triggers, steps
DIR/PLAN.md                each decision in plain words with its rule
```
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from modelops_mlc.errors import UsageError
from modelops_mlc.plan import monitoring
from modelops_mlc.plan.inputs import PlanInputs
from modelops_mlc.plan.rules import RULES, Decisions, decide
from modelops_mlc.plan.thresholds import MONITOR_DECISION, ThresholdHome, locate
from modelops_mlc.plan.validate import PROMETHEUS_RULES, check, check_dashboard, check_inference_service

if TYPE_CHECKING:
    from modelops_mlc.config import Settings

__all__ = ["Plan", "PlanFiles", "build_plan", "write_plan"]

PLAN_FILE = "plan.json"
BATCH_SCHEDULE = "0 2 * * *"
IMAGE = "modelops-mlc:local"  # the image docker/compose.yaml builds (docker/worker.Dockerfile)
SUPERVISED = {"classification", "regression", "ranking", "time-series", "recommendation", "computer-vision", "nlp"}
_ENV_NAME = {"type": "string", "pattern": "^[A-Z_][A-Z0-9_]*$"}
DEPLOYMENT_FILES = {"deployment/inferenceservice.yaml", "deployment/cronjob.yaml", "deployment/export-onnx.yaml"}


class Plan(BaseModel):
    """What `mlc plan` decided for one model; plan.json holds it."""

    inputs: PlanInputs
    decisions: Decisions
    thresholds: list[ThresholdHome]
    monitor_decision: str = MONITOR_DECISION


class PlanFiles(BaseModel):
    directory: str
    files: list[str]
    warnings: list[str] = []


# ---------------------------------------------------------------- experiment.json

EXPERIMENT_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object", "additionalProperties": False,
    "required": ["experiment_name", "tracking_uri", "registry_uri", "artifact_location", "stack", "secrets"],
    "properties": {
        "experiment_name": {"type": "string", "minLength": 1},
        "tracking_uri": {"type": "string", "minLength": 1, "not": {"pattern": "^[a-z+]+://[^/@]*:[^/@]*@"}},
        "registry_uri": {"type": "string", "minLength": 1},
        "artifact_location": {"type": ["string", "null"]},
        "stack": {"enum": ["simple", "shared"]},
        "secrets": {"type": "object", "additionalProperties": _ENV_NAME},
        "environment": {"type": "object", "additionalProperties": {"type": "string"}},
    },
}


def _secrets(tracking_uri: str, artifact_location: str | None, stack: str) -> dict[str, str]:
    """What the tracking setup needs from the environment: variable names only."""
    names: dict[str, str] = {}
    if tracking_uri.startswith(("http://", "https://")):
        names.update(tracking_username="MLFLOW_TRACKING_USERNAME", tracking_password="MLFLOW_TRACKING_PASSWORD",
                     tracking_token="MLFLOW_TRACKING_TOKEN")
    if tracking_uri.startswith(("postgresql", "mysql", "mssql")) or stack == "shared":
        names["database_url"] = "MLC_POSTGRES_URL"
    location = artifact_location or ""
    if location.startswith("s3://"):
        names.update(aws_access_key_id="AWS_ACCESS_KEY_ID", aws_secret_access_key="AWS_SECRET_ACCESS_KEY")
    elif location.startswith("gs://"):
        names["google_credentials"] = "GOOGLE_APPLICATION_CREDENTIALS"
    elif location.startswith(("wasbs://", "abfss://")):
        names["azure_storage"] = "AZURE_STORAGE_CONNECTION_STRING"
    return names


def without_credentials(uri: str) -> str:
    """``uri`` without the user and password of its authority (``postgresql+psycopg://HOST:5432/mlc``): the
    plan names the variables that carry them (``secrets``) and never holds them."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(uri)
    if "@" not in parts.netloc:
        return uri
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


def experiment(settings: "Settings", inputs: PlanInputs, d: Decisions) -> dict[str, Any]:
    from modelops_mlc.registry.client import EXPERIMENT

    uri = without_credentials(inputs.tracking_uri or settings.mlflow_tracking_uri)
    location = inputs.artifact_location
    if location is None and ("://" not in uri or uri.startswith(("sqlite:", "file:"))):
        location = settings.artifacts_dir.resolve().as_uri()
    doc = {"experiment_name": EXPERIMENT, "tracking_uri": uri, "registry_uri": uri, "artifact_location": location,
           "stack": d.stack, "secrets": _secrets(uri, location, d.stack),
           "environment": {"MLFLOW_TRACKING_URI": uri}}
    check("experiment.json", doc, EXPERIMENT_SCHEMA)
    return doc


# ---------------------------------------------------------------- registry-schema.json

def registry_schema(inputs: PlanInputs, d: Decisions) -> dict[str, Any]:
    """The version metadata the team must record: ``{"tags": {...}, "assets": [roles], "description": ...}``."""
    import jsonschema

    text = {"type": "string", "minLength": 1}
    tags: dict[str, Any] = {"owner": text}
    if inputs.model_type.value in SUPERVISED:
        tags["target"] = text
    if d.online or d.batch:
        tags["TAG"] = text  # the service tag runtimes and batch jobs match
    assets: list[str] = []
    if inputs.governance_level.value in ("staging", "production"):
        assets += ["TEST_DATA", "TRAINING_DATA"]
        tags["primary_metric"] = text
    optional = {"risk_tier": {"enum": ["HIGH", "MEDIUM", "LOW"]},
                "governance_level": {"const": inputs.governance_level.value}}
    schema: dict[str, Any] = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"urn:modelops-mlc:plan:{inputs.model_name}:registry-schema",
        "title": f"version metadata of {inputs.model_name}",
        "description": "Checked by `mlc model register` once `mlc plan apply` has registered it: the version's "
                       "tags (--tag), the roles of its assets (--asset) and its description.",
        "type": "object",
        "required": ["tags", "assets"] + (["description"] if inputs.governance_level.value == "production" else []),
        "properties": {
            "tags": {"type": "object", "required": sorted(tags), "properties": {**tags, **optional},
                     "additionalProperties": {"type": "string"}},
            "assets": {"type": "array", "items": {"type": "string"},
                       **({"allOf": [{"contains": {"const": role}} for role in assets]} if assets else {})},
            "description": text,
        },
    }
    try:
        jsonschema.Draft202012Validator.check_schema(schema)
    except jsonschema.SchemaError as exc:  # a bug of ours
        from modelops_mlc.plan.validate import PlanInvalid

        raise PlanInvalid(f"registry-schema.json is not a JSON Schema: {exc.message}") from exc
    return schema


# ---------------------------------------------------------------- deployment/

def _inference_service(settings: "Settings", inputs: PlanInputs, d: Decisions) -> tuple[dict[str, Any], list[str]]:
    """Reuses `mlc manifest kserve`: the registered model's latest version, or ``storage_uri`` before it exists."""
    from modelops_mlc.errors import NotFoundError
    from modelops_mlc.runtimes.manifest import inference_service, kserve_manifest

    options: dict[str, Any] = {"canary_percent": d.canary_percent, "namespace": inputs.namespace,
                               "min_replicas": d.min_replicas, "max_replicas": d.max_replicas}
    warnings: list[str] = []
    try:
        manifest = kserve_manifest(settings, inputs.model_name, storage_uri=inputs.storage_uri, **options)
        document, warnings = manifest.document, manifest.warnings
    except NotFoundError:
        if not inputs.storage_uri:
            raise UsageError(f"model {inputs.model_name} has no registered version, so the InferenceService has "
                             "no storageUri",
                             hint="register a version first, or give storage_uri (s3://, gs://, pvc://...)") from None
        document = inference_service(inputs.model_name, "champion", inputs.storage_uri, **options)
    if d.autoscaling:
        document["metadata"].setdefault("annotations", {})["serving.kserve.io/autoscalerClass"] = "hpa"
        document["spec"]["predictor"].update(scaleMetric="cpu", scaleTarget=70)
    check_inference_service(document)
    return document, warnings


CRONJOB_SCHEMA = {
    "type": "object", "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "batch/v1"}, "kind": {"const": "CronJob"},
        "metadata": {"type": "object", "required": ["name"]},
        "spec": {"type": "object", "required": ["schedule", "jobTemplate"], "properties": {
            "schedule": {"type": "string", "pattern": r"^(\S+\s+){4}\S+$"},
            "jobTemplate": {"type": "object", "required": ["spec"]}}},
    },
}


def _cronjob(settings: "Settings", inputs: PlanInputs) -> dict[str, Any]:
    from modelops_mlc.runtimes.manifest import service_name

    data = inputs.data
    if not (data.batch_input and data.batch_output):
        raise UsageError("batch scoring needs data.batch_input and data.batch_output (the files the job reads and writes)")
    args = ["mlc", "signal", "deployed-batch-job", "--var", f"TAG={inputs.model_name}",
            "--var", f"INPUT_FILE={data.batch_input}", "--var", f"OUTPUT_FILE={data.batch_output}"]
    secret = {"name": "MLC_ENGINE_PASSWORD",
              "valueFrom": {"secretKeyRef": {"name": "mlc-engine", "key": "password", "optional": True}}}
    doc = {
        "apiVersion": "batch/v1", "kind": "CronJob",
        "metadata": {"name": f"{service_name(inputs.model_name)}-batch"[:52],
                     "labels": {"app.kubernetes.io/managed-by": "modelops-mlc"},
                     **({"namespace": inputs.namespace} if inputs.namespace else {})},
        "spec": {
            "schedule": BATCH_SCHEDULE, "concurrencyPolicy": "Forbid",
            "jobTemplate": {"spec": {"backoffLimit": 2, "template": {"spec": {
                "restartPolicy": "Never",
                "containers": [{"name": "score", "image": IMAGE, "command": args,
                                "env": [{"name": "MLC_ENGINE_URL", "value": settings.engine_url.split(",")[0]}, secret]}],
            }}}},
        },
    }
    check("the batch CronJob", doc, CRONJOB_SCHEMA)
    return doc


EXPORT_SCHEMA = {
    "type": "object", "additionalProperties": False, "required": ["step", "command", "produces"],
    "properties": {"step": {"const": "export"}, "command": {"type": "array", "items": {"type": "string"}},
                   "produces": {"type": "object", "required": ["asset_role", "format"]}, "why": {"type": "string"}},
}


def _export_step(inputs: PlanInputs, d: Decisions) -> dict[str, Any]:
    doc = {"step": "export", "command": ["mlc", "model", "export", inputs.model_name, "--format", "onnx"],
           "produces": {"asset_role": "EDGE_MODEL", "format": "onnx",
                        "parity": "checked by the export on the version's TEST_DATA"},
           "why": "edge serving" if d.edge else "latency under 50 ms: an optimised model"}
    check("the ONNX export step", doc, EXPORT_SCHEMA)
    return doc


# ---------------------------------------------------------------- retraining.yaml

RETRAINING_SCHEMA = {
    "type": "object", "additionalProperties": False, "required": ["model", "monitor", "retrain", "triggers", "steps"],
    "properties": {
        "model": {"type": "string"},
        "monitor": {"type": "object", "required": ["process", "decision", "schedule"], "properties": {
            "schedule": {"type": ["object", "null"], "required": ["every", "data"]}}},
        "retrain": {"type": "object", "required": ["process", "decision", "schedule"], "properties": {
            "schedule": {"type": ["object", "null"], "required": ["every", "data"]}}},
        "triggers": {"type": "array", "items": {"type": "object", "required": ["on", "starts"]}},
        "steps": {"type": "array", "items": {"type": "string"}, "minItems": 1},
        "commands": {"type": "array", "items": {"type": "string"}},
    },
}


def retraining(inputs: PlanInputs, d: Decisions, thresholds: list[ThresholdHome]) -> dict[str, Any]:
    """Schedules and triggers as `mlc monitor schedule` and `mlc retrain --every` take them; the retrain verdict's
    figures are those ``thresholds`` found in the decision for the plan's risk tier."""
    from modelops_mlc.monitoring.schedules import every_to_cycle

    data, name = inputs.data, inputs.model_name
    monitor = None
    if d.monitor_every:
        every_to_cycle(d.monitor_every)
        monitor = {"every": d.monitor_every, "data": data.current, "reference": data.reference}
    retrain = None
    if d.retrain_every:
        every_to_cycle(d.retrain_every)
        retrain = {"every": d.retrain_every, "data": data.training}
    triggers = []
    if monitor:
        triggers.append({"on": f"schedule every {d.monitor_every}", "starts": "mlc-monitor (signal mlc.monitor)"})
    if "mlc-monitor" in d.processes:
        retrain_at = ", ".join(t.condition for t in thresholds if t.condition and t.home == "dmn" and t.action == "retrain")
        triggers += [{"on": f"verdict retrain of {MONITOR_DECISION}" + (f" ({retrain_at})" if retrain_at else ""),
                      "starts": "mlc-retrain (signal mlc.retrain)"},
                     {"on": "new data file: `mlc monitor watch DIR --model " + name + "`", "starts": "mlc-monitor"}]
    if retrain:
        triggers.append({"on": f"schedule every {d.retrain_every}", "starts": "mlc-retrain (signal mlc.retrain)"})
    steps = ["validate the new data against the champion's TRAINING_DATA", "train the challenger as a job",
             "compare champion and challenger on TEST_DATA", "mlc-retrain-decision"]
    steps += ["review (user task, or a ticket for governance_level=production)"] if d.approval else []
    steps += ["mlc-canary-rollout: 10 % canary, SLO decision, promote or roll back"] if d.canary else ["deploy"]
    commands = []
    if monitor:
        commands.append(f"mlc monitor schedule {name} --every {d.monitor_every} --data {data.current or 'FILE'}"
                        + (f" --reference {data.reference}" if data.reference else ""))
    if retrain:
        commands.append(f"mlc retrain {name} --every {d.retrain_every}" + (f" --data {data.training}" if data.training else ""))
    doc = {"model": name,
           "monitor": {"process": "mlc-monitor", "decision": MONITOR_DECISION, "schedule": monitor},
           "retrain": {"process": "mlc-retrain", "decision": "mlc-retrain-decision", "schedule": retrain},
           "triggers": triggers, "steps": steps, "commands": commands}
    check("retraining.yaml", doc, RETRAINING_SCHEMA)
    return doc


# ---------------------------------------------------------------- PLAN.md

def plan_markdown(plan: Plan, warnings: list[str]) -> str:
    i, d = plan.inputs, plan.decisions
    by_id = {r.id: r for r in RULES}
    lines = [f"# MLOps plan for {i.model_name}", "",
             f"{i.model_type.value} model, target {i.deployment_target.value}, governance {i.governance_level.value}"
             + (f", team of {i.team_size}" if i.team_size else "") + (f", stack {i.existing_stack.value}" if i.existing_stack else "")
             + ".", "", "## Decisions", ""]
    for rule_id in d.fired:
        rule = by_id[rule_id]
        lines.append(f"- **{rule.then}** — because {rule.when} (rule `{rule.id}`).")
    lines += ["", f"Risk tier {d.risk_tier}; processes deployed by `mlc plan apply`: {', '.join(d.processes)}.", "",
              "## Thresholds", ""]
    for t in plan.thresholds:
        where = f"nowhere yet: {t.note}" if t.home == "none" else t.where + (f" ({t.note})" if t.note else "")
        lines.append(f"- {t.words}: {where}.")
    if i.existing_stack and i.existing_stack.value not in ("mlflow", "custom"):
        lines += ["", f"The team's {i.existing_stack.value} stays where it is: modelops-mlc keeps MLflow as its registry "
                      "and tracking store (experiment.json)."]
    if warnings:
        lines += ["", "## Warnings", ""] + [f"- {w}" for w in warnings]
    lines += ["", "The model servers export the latest monitor run's PSI per feature as `mlc_drift_psi` "
                  "(monitoring/dashboard.json charts it); `mlc monitor history MODEL` shows every run's figures.", ""]
    return "\n".join(lines)


# ---------------------------------------------------------------- the whole plan

def _with_format(settings: "Settings", inputs: PlanInputs) -> PlanInputs:
    """``inputs`` with model_format taken from the registered model's latest version when not given."""
    from modelops_mlc.errors import NotFoundError
    from modelops_mlc.plan.inputs import ModelFormat
    from modelops_mlc.registry import Registry

    if inputs.model_format is not None:
        return inputs
    try:
        flavors = Registry(settings).get_version(inputs.model_name).flavors
    except NotFoundError:
        return inputs
    known = {f.value for f in ModelFormat}
    found = next((f for f in flavors if f in known), None)
    return inputs.model_copy(update={"model_format": ModelFormat(found) if found else ModelFormat.custom})


def build_plan(settings: "Settings", inputs: PlanInputs, bpmn_dir: Path | None) -> tuple[Plan, dict[str, Any], list[str]]:
    """Decide and build every document (validated); returns the plan, {relative path: document} and warnings."""
    inputs = _with_format(settings, inputs)
    decisions = decide(inputs)
    plan = Plan(inputs=inputs, decisions=decisions, thresholds=locate(bpmn_dir, decisions.risk_tier))
    warnings: list[str] = []
    docs: dict[str, Any] = {
        "experiment.json": experiment(settings, inputs, decisions),
        "registry-schema.json": registry_schema(inputs, decisions),
    }
    if decisions.online:
        docs["deployment/inferenceservice.yaml"], found = _inference_service(settings, inputs, decisions)
        warnings += found
    if decisions.batch:
        docs["deployment/cronjob.yaml"] = _cronjob(settings, inputs)
    if decisions.onnx_export:
        docs["deployment/export-onnx.yaml"] = _export_step(inputs, decisions)
    # the PSI figures the decision applies at the plan's tier; None (the defaults, said so) when the
    # decision could not be read (no bpmn/ beside an installed mlc)
    read = any(t.home == "dmn" for t in plan.thresholds)
    psi_lines = {t.action: t.value for t in plan.thresholds
                 if t.id.startswith("psi_") and t.home == "dmn" and t.action and t.value is not None} if read else None
    dashboard = monitoring.dashboard(inputs.model_name, psi_lines, decisions.risk_tier)
    check_dashboard(dashboard)
    docs["monitoring/dashboard.json"] = dashboard
    rules = monitoring.alert_rules(inputs.model_name,
                                   latency_ms=inputs.scale_requirements.latency_ms if decisions.online else None)
    check("monitoring/alerts.yaml", rules, PROMETHEUS_RULES)
    docs["monitoring/alerts.yaml"] = rules
    docs["retraining.yaml"] = retraining(inputs, decisions, plan.thresholds)
    if decisions.monitor_every and not inputs.data.current:
        warnings.append(f"no data.current: `mlc plan apply` cannot schedule the monitor (every {decisions.monitor_every}) "
                        "until the plan names the file each run reads")
    if decisions.stack == "shared" and docs["experiment.json"]["tracking_uri"].startswith("sqlite:"):
        warnings.append("the shared stack wants an MLflow server: `mlc up --postgres URL --mlflow-server`, then "
                        "tracking_uri http://HOST:5000")
    docs["PLAN.md"] = plan_markdown(plan, warnings)
    docs[PLAN_FILE] = json.loads(plan.model_dump_json())
    return plan, docs, warnings


def _text(path: str, document: Any) -> str:
    import yaml

    if isinstance(document, str):
        return document
    if path.endswith(".json"):
        return json.dumps(document, indent=2, sort_keys=False) + "\n"
    return yaml.safe_dump(document, sort_keys=False, default_flow_style=False)


def write_plan(settings: "Settings", inputs: PlanInputs, out_dir: Path, bpmn_dir: Path | None) -> PlanFiles:
    """Build the plan, then write its files under ``out_dir`` (nothing is written when a check fails)."""
    _, docs, warnings = build_plan(settings, inputs, bpmn_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for stale in DEPLOYMENT_FILES - set(docs):  # a re-plan of another target leaves no old manifest behind
        (out_dir / stale).unlink(missing_ok=True)
    for rel, document in docs.items():
        target = out_dir / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(_text(rel, document))
    return PlanFiles(directory=str(out_dir), files=sorted(docs), warnings=warnings)
