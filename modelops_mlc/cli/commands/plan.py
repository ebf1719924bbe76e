"""`mlc plan --out DIR ...` (requirements as flags or --file inputs.yaml) and `mlc plan apply DIR`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from modelops_mlc.cli._common import JsonOpt, info, print_json, render, settings
from modelops_mlc.errors import UsageError

app = typer.Typer(help="Turn a team's requirements into a validated MLOps setup (`mlc plan --out DIR`) and apply "
                       "it to the running stack (`mlc plan apply DIR`).", invoke_without_command=True)

Opt = Optional[str]


def _bpmn_dir(given: Path | None) -> Path | None:
    from modelops_mlc.stack import find_bpmn_dir

    found = given or find_bpmn_dir()
    if given is not None and not given.is_dir():
        raise UsageError(f"--bpmn-dir not found: {given}")
    return found


def _quiet_mlflow() -> None:
    import logging

    import mlflow  # noqa: F401  (configures its loggers on import; quieten them afterwards)

    from modelops_mlc.registry.quiet import quiet_mlflow_logs

    if not logging.getLogger().handlers:  # --verbose keeps MLflow's chatter
        quiet_mlflow_logs()


def _merge(base: dict[str, Any], flags: dict[str, Any]) -> dict[str, Any]:
    """The inputs of the YAML file with the flags given laid over them (a mapping key by key)."""
    out = dict(base)
    for key, value in flags.items():
        if isinstance(value, dict):
            given = out.get(key)
            if given is not None and not isinstance(given, dict):
                kind = {"str": "a string", "list": "a list", "int": "a number", "float": "a number",
                        "bool": "true or false"}.get(type(given).__name__, type(given).__name__)
                raise UsageError(f"invalid plan input: {key} must be a mapping of {', '.join(value)}, not {kind}")
            out[key] = {**(given or {}), **{k: v for k, v in value.items() if v is not None}}
        elif value is not None:
            out[key] = value
    return out


@app.callback()
def plan(
    ctx: typer.Context,
    out_dir: Annotated[Optional[Path], typer.Option("--out", "-o", help="Directory the plan's files go to.")] = None,
    file: Annotated[Optional[Path], typer.Option("--file", "-f", help="Inputs as YAML (flags override it).")] = None,
    model: Annotated[Opt, typer.Option("--model", "-m", help="Registered model name the plan is for.")] = None,
    model_type: Annotated[Opt, typer.Option("--model-type", help="classification, regression, clustering, ranking, "
                                                                   "generative, time-series, recommendation, computer-vision, nlp.")] = None,
    target: Annotated[Opt, typer.Option("--target", help="deployment_target: batch, online, edge, embedded, hybrid.")] = None,
    rps: Annotated[Optional[float], typer.Option("--rps", help="Requests per second.")] = None,
    latency_ms: Annotated[Optional[float], typer.Option("--latency-ms", help="Latency budget (ms).")] = None,
    data_volume_gb: Annotated[Optional[float], typer.Option("--data-volume-gb")] = None,
    concurrent_users: Annotated[Optional[int], typer.Option("--concurrent-users")] = None,
    governance: Annotated[Opt, typer.Option("--governance", help="experimental, staging, production.")] = None,
    existing_stack: Annotated[Opt, typer.Option("--existing-stack", help="mlflow, kubeflow, vertex_ai, sagemaker, "
                                                                         "azure_ml, databricks, neptune, wandb, custom.")] = None,
    team_size: Annotated[Optional[int], typer.Option("--team-size")] = None,
    model_format: Annotated[Opt, typer.Option("--model-format", help="sklearn, xgboost, lightgbm, pytorch, "
                                                                     "tensorflow, onnx, custom.")] = None,
    hardware: Annotated[Opt, typer.Option("--hardware", help="cpu (default) or gpu.")] = None,
    estimators: Annotated[Optional[int], typer.Option("--estimators", help="Members of an ensemble.")] = None,
    risk_tier: Annotated[Opt, typer.Option("--risk-tier", help="HIGH, MEDIUM, LOW (default: from --governance).")] = None,
    tracking_uri: Annotated[Opt, typer.Option("--tracking-uri", help="MLflow URI (default: MLFLOW_TRACKING_URI).")] = None,
    artifact_location: Annotated[Opt, typer.Option("--artifact-location")] = None,
    storage_uri: Annotated[Opt, typer.Option("--storage-uri", help="Where a cluster reads the model.")] = None,
    namespace: Annotated[Opt, typer.Option("--namespace", "-n")] = None,
    current_data: Annotated[Opt, typer.Option("--current-data", help="File each monitor run reads.")] = None,
    reference_data: Annotated[Opt, typer.Option("--reference-data")] = None,
    training_data: Annotated[Opt, typer.Option("--training-data", help="File a scheduled retrain trains on.")] = None,
    batch_input: Annotated[Opt, typer.Option("--batch-input", help="File the batch job scores.")] = None,
    batch_output: Annotated[Opt, typer.Option("--batch-output", help="File the batch job writes.")] = None,
    bpmn_dir: Annotated[Optional[Path], typer.Option("--bpmn-dir", help="Processes and decisions (default: bpmn/).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Write a plan for one model: experiment.json, registry-schema.json, deployment/, monitoring/,
    retraining.yaml and PLAN.md, each validated before it is written."""
    if ctx.invoked_subcommand is not None:
        return
    from modelops_mlc.plan import load_inputs, read_yaml, write_plan

    if out_dir is None:
        raise UsageError("--out DIR is required: the directory the plan's files go to")
    base = read_yaml(file) if file else {}
    flags = {
        "model_name": model, "model_type": model_type, "deployment_target": target, "governance_level": governance,
        "existing_stack": existing_stack, "team_size": team_size, "model_format": model_format, "hardware": hardware,
        "estimators": estimators, "risk_tier": risk_tier, "tracking_uri": tracking_uri,
        "artifact_location": artifact_location, "storage_uri": storage_uri, "namespace": namespace,
        "scale_requirements": {"rps": rps, "latency_ms": latency_ms, "data_volume_gb": data_volume_gb,
                               "concurrent_users": concurrent_users},
        "data": {"current": current_data, "reference": reference_data, "training": training_data,
                 "batch_input": batch_input, "batch_output": batch_output},
    }
    inputs = load_inputs(_merge(base, flags))
    _quiet_mlflow()
    written = write_plan(settings(), inputs, out_dir, _bpmn_dir(bpmn_dir))
    if as_json:
        print_json(written)
        return
    for warning in written.warnings:
        info(f"[yellow]warning:[/] {warning}")
    info(f"[green]plan for {inputs.model_name} written to {out_dir}[/]: {', '.join(written.files)}")


@app.command("apply")
def apply(
    directory: Annotated[Path, typer.Argument(help="A directory `mlc plan --out` wrote.")],
    bpmn_dir: Annotated[Optional[Path], typer.Option("--bpmn-dir", help="Processes and decisions (default: bpmn/).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Make the plan real on the running stack: deploy its processes, set the model's risk tier, governance
    level and registry schema, start its monitor and retrain schedules. Running it again changes nothing."""
    from modelops_mlc.plan import apply_plan

    found = _bpmn_dir(bpmn_dir)
    if found is None:
        raise UsageError("no bpmn/ directory found", hint="give --bpmn-dir")
    _quiet_mlflow()
    result = apply_plan(settings(), directory, found)
    if as_json:
        print_json({"model": result.model, "changed": result.changed, "steps": result.steps})
        return
    render(result.steps, as_json=False, columns=["step", "status", "detail"], title=f"plan apply: {result.model}")
    info(f"[green]plan of {result.model} applied[/]" if result.changed
         else f"[dim]nothing changed: the plan of {result.model} was already applied[/]")
