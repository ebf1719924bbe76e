"""`mlc model ...`: register, list, show, tag, asset, alias, snapshot, test, export; and `mlc drift REF CUR`.

MLflow, pandas and sklearn are imported inside the commands (through the registry and jobs), so
`mlc --help` stays light.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from modelops_mlc.cli._common import JsonOpt, info, out, parse_pairs, print_json, render, settings
from modelops_mlc.errors import UsageError

if TYPE_CHECKING:
    from modelops_mlc.registry import ModelVersionInfo, Registry

app = typer.Typer(help="Registered models and their snapshots (MLflow model versions).", no_args_is_help=True)

TagOpt = Annotated[list[str] | None, typer.Option("--tag", "-t", help="Version tag key=value (repeatable).")]
AssetOpt = Annotated[
    list[str] | None, typer.Option("--asset", "-a", help="Data asset ROLE=FILE, e.g. TEST_DATA=test.csv (repeatable).")
]
MODEL_SUBMITTED = "mlc.model-submitted"


def _registry() -> Registry:
    import mlflow  # noqa: F401  (configures its loggers on import; quieten them afterwards)

    from modelops_mlc.registry import Registry
    from modelops_mlc.registry.quiet import quiet_mlflow_logs

    if not logging.getLogger().handlers:  # --verbose keeps MLflow's chatter
        quiet_mlflow_logs()
    return Registry(settings())


def _assets(items: list[str] | None) -> dict[str, str]:
    return {k.upper(): str(v) for k, v in parse_pairs(items, what="--asset", typed=False).items()}


def _tags(items: list[str] | None, what: str = "--tag") -> dict[str, str]:
    return parse_pairs(items, what=what, typed=False)


def _version_row(v: ModelVersionInfo) -> dict[str, Any]:
    tests = v.test_results or {}
    metrics = tests.get("metrics") or {}
    summary = ", ".join(f"{k}={val:.4g}" for k, val in list(metrics.items())[:3] if isinstance(val, (int, float)))
    return {
        "version": v.version,
        "aliases": v.aliases,
        "snapshot": v.flag("snapshot"),
        "created": v.created_at.strftime("%Y-%m-%d %H:%M") if v.created_at else "",
        "assets": sorted(v.assets),
        "tests": summary,
    }


def _show_version(v: ModelVersionInfo) -> None:
    render({
        "model": v.name,
        "version": v.version,
        "aliases": v.aliases,
        "source": v.source,
        "run": v.run_id,
        "flavors": v.flavors,
        "inputs": len(v.signature.get("inputs") or []) if v.signature else None,
        "created": v.created_at.isoformat(timespec="seconds") if v.created_at else None,
        "tags": v.tags,
    }, as_json=False, title=f"{v.name}/{v.version}")
    if v.assets:
        render([{"role": role, **a.model_dump(exclude={"added_at"})} for role, a in sorted(v.assets.items())],
               as_json=False, columns=["role", "uri", "sha256", "copied", "size"], title="assets")
    if v.test_results:
        tests = v.test_results
        rows = [{"metric": k, "value": f"{val:.6g}" if isinstance(val, float) else val}
                for k, val in (tests.get("metrics") or {}).items()]
        render(rows, as_json=False, columns=["metric", "value"],
               title=f"latest test ({tests.get('task_type')}, {tests.get('rows')} rows, {tests.get('at', '')[:19]}, "
                     f"run {tests.get('run_id')})")


@app.command("register")
def register_model(
    name: Annotated[str, typer.Argument(help="Registered model name.")],
    run_id: Annotated[str | None, typer.Option("--run-id", help="Register the model logged by this MLflow run.")] = None,
    path: Annotated[Path | None, typer.Option("--path", help="Register a saved MLflow model directory.")] = None,
    artifact_path: Annotated[str, typer.Option(help="Model's artifact path inside the run.")] = "model",
    tag: TagOpt = None,
    asset: AssetOpt = None,
    description: Annotated[str | None, typer.Option(help="Version description.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Register a new version from an MLflow run or a saved model directory."""
    if (run_id is None) == (path is None):
        raise UsageError("give exactly one of --run-id or --path")
    from modelops_mlc.plan.schema import check_version_metadata

    tags, assets = _tags(tag), _assets(asset)
    registry = _registry()
    check_version_metadata(registry, name, tags, assets, description)  # the schema an applied `mlc plan` registered
    v = registry.register(name, run_id=run_id, path=path, tags=tags, assets=assets,
                          artifact_path=artifact_path, description=description)
    if as_json:
        print_json(v)
    else:
        info(f"[green]registered {v.name}/{v.version}[/] ({', '.join(v.flavors)})")


@app.command("list")
def list_models(as_json: JsonOpt = False) -> None:
    """List registered models with their latest version and aliases."""
    models = _registry().list_models()
    render(models, as_json=as_json, columns=["name", "latest_version", "versions", "aliases", "updated_at"],
           empty="no models registered")


@app.command("show")
def show(
    model_id: Annotated[str, typer.Argument(help="name, name/version or name@alias.")],
    as_json: JsonOpt = False,
) -> None:
    """Show a version (tags, aliases, assets, latest test results) and the model's versions."""
    reg = _registry()
    v = reg.get_version(model_id)
    versions = reg.list_versions(v.name)
    model = reg.get_model(v.name)
    if as_json:
        print_json({"model": model, "version": v, "versions": [_version_row(x) for x in versions]})
        return
    _show_version(v)
    render([_version_row(x) for x in versions], as_json=False,
           columns=["version", "aliases", "snapshot", "created", "assets", "tests"], title=f"versions of {v.name}")


@app.command("tag")
def tag(
    model_id: Annotated[str, typer.Argument(help="name, name/version or name@alias.")],
    pairs: Annotated[list[str] | None, typer.Argument(help="key=value tags.", show_default=False)] = None,
    unset: Annotated[list[str] | None, typer.Option("--unset", help="Remove this tag (repeatable).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Set (or --unset) version tags, e.g. `mlc model tag fraud@challenger run_test=true jira=false`."""
    tags: dict[str, Any] = _tags(pairs, what="tag")
    tags.update({key: None for key in unset or []})
    if not tags:
        raise UsageError("give at least one key=value tag or --unset KEY")
    v = _registry().set_tags(model_id, tags)
    if as_json:
        print_json({"name": v.name, "version": v.version, "tags": v.tags})
    else:
        info(f"[green]tagged {v.name}/{v.version}[/]: {', '.join(f'{k}={val}' for k, val in tags.items())}")


@app.command("asset")
def asset(
    model_id: Annotated[str, typer.Argument(help="name, name/version or name@alias.")],
    role_file: Annotated[str, typer.Argument(help="ROLE=FILE or ROLE=URI, e.g. TEST_DATA=test.csv.")],
    no_copy: Annotated[bool, typer.Option("--no-copy", help="Record the file's path instead of copying it.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Attach a data asset to a version (copied into its artifacts and hashed)."""
    (role, src), = _assets([role_file]).items()
    reg = _registry()
    ref = reg.resolve(model_id)
    a = reg.add_asset(ref, role, src, copy=False if no_copy else None)
    if as_json:
        print_json({"name": ref.name, "version": ref.version, "role": role, **a.model_dump(mode="json")})
    else:
        info(f"[green]{role} of {ref}[/] -> {a.uri}" + (f" (sha256 {a.sha256[:12]})" if a.sha256 else ""))


@app.command("alias")
def alias(
    name: Annotated[str, typer.Argument(help="Registered model name.")],
    moves: Annotated[list[str], typer.Argument(help="alias=version pairs, e.g. champion=3 challenger=4.")],
    as_json: JsonOpt = False,
) -> None:
    """Set or move aliases together, e.g. `mlc model alias fraud champion=4 challenger=5`."""
    targets = _tags(moves, what="alias")
    for key, value in targets.items():
        if not str(value).isdigit():
            raise UsageError(f"alias {key} needs a version number, got {value!r}")
    aliases = _registry().move_aliases(name, {k: int(v) for k, v in targets.items()})
    if as_json:
        print_json({"name": name, "aliases": aliases})
    else:
        info(f"[green]{name}[/]: " + ", ".join(f"{k}={v}" for k, v in sorted(aliases.items())))


@app.command("snapshot")
def snapshot(
    name: Annotated[str, typer.Argument(help="Model name (or name@alias / name/version).")],
    version: Annotated[int | None, typer.Option("--version", help="Version to snapshot (default: latest).")] = None,
    tag: TagOpt = None,
    new: Annotated[bool, typer.Option("--new", help="Create a fresh version from the same model first.")] = False,
    no_signal: Annotated[bool, typer.Option("--no-signal", help="Only mark the version; do not start a process.")] = False,
    user: Annotated[str | None, typer.Option(
        "--user", envvar="MLC_USER", help="Who submits it (default: `mlc --user`, else the login name; on an "
                                          "engine with basic auth, always the signed-in user); they cannot "
                                          "approve it when separation of duties applies.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Mark a version as a snapshot and fire `mlc.model-submitted` (MODEL_ID, MODEL_VERSION, SUBMITTED_BY);
    mlc-productionize picks the process for it with the decision mlc-process-selection."""
    from modelops_mlc.insight.actor import cli_user

    submitter = cli_user(user, "submit a model")  # with basic auth, the signed-in user and nobody else
    v = _registry().snapshot(name, version, {**_tags(tag), "submitted_by": submitter}, new=new)
    variables = {"MODEL_ID": v.name, "MODEL_VERSION": v.version, "SUBMITTED_BY": submitter}
    if not no_signal:
        from modelops_mlc.engine import EngineClient

        with EngineClient(settings()) as client:
            client.signal(MODEL_SUBMITTED, variables)
    if as_json:
        print_json({"name": v.name, "version": v.version, "tags": v.tags,
                    "signal": None if no_signal else MODEL_SUBMITTED, "variables": variables})
    else:
        fired = "" if no_signal else f", signal {MODEL_SUBMITTED} thrown"
        info(f"[green]snapshot {v.name}/{v.version}[/]{fired}")


@app.command("test")
def test(
    model_id: Annotated[str, typer.Argument(help="name, name/version or name@alias.")],
    data: Annotated[Path | None, typer.Option("--data", help="Labelled data (default: the TEST_DATA asset).")] = None,
    target: Annotated[str | None, typer.Option(help="Target column (default: tag 'target' or 'target').")] = None,
    output: Annotated[Path | None, typer.Option("--output", help="Write the data with predictions here.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Run the metrics test now and keep its results on the version."""
    from modelops_mlc.jobs import metrics_test

    result = metrics_test(_registry(), model_id, data_path=data, target=target, output_path=output)
    if as_json:
        print_json(result)
        return
    render([{"metric": k, "value": f"{v:.6g}"} for k, v in result.metrics.items()], as_json=False,
           columns=["metric", "value"], title=f"{result.model_name}/{result.version} {result.task_type}, {result.rows} rows")


EXPORT_FORMATS = ("onnx",)


@app.command("export")
def export(
    model_id: Annotated[str, typer.Argument(help="name, name/version or name@alias.")],
    fmt: Annotated[str, typer.Option("--format", help=f"Export format: {', '.join(EXPORT_FORMATS)}.")],
    data: Annotated[Path | None, typer.Option("--data", help="Data to check parity on (default: the TEST_DATA asset).")] = None,
    target: Annotated[str | None, typer.Option(help="Column left out of the features (default: tag 'target' or 'target').")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Export a scikit-learn version to ONNX (skl2onnx), check onnxruntime's predictions against the
    original's on its test data, and register the file as its EDGE_MODEL asset (once)."""
    if fmt.strip().lower() not in EXPORT_FORMATS:
        raise UsageError(f"unknown export format {fmt!r}: the allowed formats are {', '.join(EXPORT_FORMATS)}")
    from modelops_mlc.edge import export_onnx

    result = export_onnx(_registry(), model_id, data_path=data, target=target)
    if as_json:
        print_json(result)
        return
    tol = result.tolerance
    stated = (f"labels equal, probabilities within {tol.proba_atol:g}" if result.task_type == "classification"
              else f"|diff| <= {tol.atol:g} + {tol.rtol:g} x |prediction|")
    rows = [{"figure": "rows checked", "value": f"{result.rows} ({result.data_uri})"},
            {"figure": "tolerance", "value": stated}]
    if result.label_mismatches is not None:
        rows.append({"figure": "label mismatches", "value": str(result.label_mismatches)})
    if result.max_abs_diff is not None:
        rows.append({"figure": "max abs diff", "value": f"{result.max_abs_diff:.3g} "
                     f"(at most {result.tolerance_used:.1%} of the tolerance on any row)"})
    rows += [{"figure": "inputs", "value": ", ".join(result.inputs[:5]) + (" ..." if len(result.inputs) > 5 else "")},
             {"figure": "opset", "value": str(result.opset)},
             {"figure": "size", "value": f"{result.size} bytes, sha256 {result.sha256[:12]}"}]
    render(rows, as_json=False, columns=["figure", "value"],
           title=f"ONNX export of {result.model_name}/{result.version} ({result.task_type}), parity met")
    state = "registered" if result.registered else "unchanged, already registered"
    info(f"[green]EDGE_MODEL of {result.model_name}/{result.version}[/] {state}: {result.asset.uri}")


def drift_command(
    files: Annotated[list[Path], typer.Argument(
        help="REFERENCE CURRENT (CSV or Parquet); with --model just CURRENT (the reference is its training data).",
        show_default=False)],
    model: Annotated[Optional[str], typer.Option("--model", "-m", help="Model (name, name/version, name@alias): "
                     "its TRAINING_DATA asset is the reference, its signature names the features, its outputs "
                     "are checked too.")] = None,
    html: Annotated[Optional[Path], typer.Option("--html", help="Also write a self-contained HTML report of the "
                    "distributions to this file.")] = None,
    feature: Annotated[list[str] | None, typer.Option("--feature", "-f", help="Only these features (repeatable).")] = None,
    exclude: Annotated[list[str] | None, typer.Option("--exclude", "-x", help="Leave out a column, e.g. the target.")] = None,
    categorical: Annotated[list[str] | None, typer.Option("--categorical", help="Treat a numeric column as categorical.")] = None,
    bins: Annotated[int, typer.Option(help="PSI bins for numeric features.")] = 10,
    binning: Annotated[str, typer.Option(help="quantile (reference deciles) or uniform (equal width).")] = "quantile",
    as_json: JsonOpt = False,
) -> None:
    """PSI and KS/chi-squared drift per feature, reference vs current, with an overall verdict."""
    from modelops_mlc.jobs import drift

    wanted = "CURRENT, or REFERENCE CURRENT" if model else "REFERENCE CURRENT"
    if len(files) not in ((1, 2) if model else (2,)):
        raise UsageError(f"expected {wanted}, got {len(files)} file(s)")
    for p in files:
        if not p.is_file():
            raise UsageError(f"file not found: {p}")
    prediction = None
    if model:
        from modelops_mlc.monitoring.checks import model_drift

        if exclude:
            raise UsageError("--exclude does not go with --model: the model's signature names the features",
                             hint="name them with --feature")
        result, prediction, reference = model_drift(
            _registry(), model, files[-1], files[0] if len(files) == 2 else None, predictions=True,
            features=feature, categorical=categorical, bins=bins, binning=binning)
    else:
        reference = str(files[0])
        result = drift(files[0], files[1], features=feature, exclude=exclude, categorical=categorical, bins=bins,
                       binning=binning)  # type: ignore[arg-type]
    if html is not None:
        from modelops_mlc.monitoring.report import drift_report

        drift_report(result, reference, files[-1], html, prediction=prediction,
                     title=f"Drift of {files[-1].name}" + (f" for {model}" if model else f" against {Path(reference).name}"))
        info(f"report written to {html}")
    if as_json:
        print_json(result if prediction is None else {**result.model_dump(), "prediction": prediction})
        return
    rows = [{"feature": f.feature, "kind": f.kind, "psi": f"{f.psi:.4f}", "test": f.test,
             "statistic": f"{f.statistic:.4f}", "p_value": f"{f.p_value:.3g}", "verdict": f.verdict}
            for f in ([*result.features, prediction] if prediction is not None else result.features)]
    render(rows, as_json=False, columns=["feature", "kind", "psi", "test", "statistic", "p_value", "verdict"],
           title=f"drift: {result.reference_rows} reference rows vs {result.current_rows} current rows")
    style = {"ok": "green", "notify": "yellow", "investigate": "dark_orange", "retrain": "bold red"}[result.verdict]
    out.print(f"verdict: [{style}]{result.verdict}[/]" + (" (prediction: the model's outputs)" if prediction else ""))


def register(root: typer.Typer) -> None:
    """Add `mlc model ...` and the top-level `mlc drift` to the root app."""
    root.add_typer(app, name="model")
    from modelops_mlc.cli.commands import card  # `mlc model card`

    card.register(app)
    root.command("drift")(drift_command)
