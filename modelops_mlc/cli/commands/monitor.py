"""`mlc monitor schedule|unschedule|list|run|history` (and `watch`, from monitor_watch.py).

The engine, the registry and the store are imported inside the commands, so `mlc --help` stays light.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from modelops_mlc.cli._common import JsonOpt, info, out, print_json, render, settings
from modelops_mlc.errors import UsageError

monitor_app = typer.Typer(help="Monitor production models: schedules, runs, history (process mlc-monitor).",
                          no_args_is_help=True)

ModelArg = Annotated[str, typer.Argument(help="Registered model: name, name/version or name@alias.")]
DataOpt = Annotated[Optional[Path], typer.Option(
    "--data", "-d", help="Current data (CSV or Parquet; labels optional), required: what each run compares with the "
                         "reference. A schedule reads the file again each time, so point it at a file your pipeline refreshes.")]
ReferenceOpt = Annotated[
    Optional[Path], typer.Option("--reference", "-r", help="Reference data (default: the model's TRAINING_DATA asset).")
]
_VERDICT_STYLE = {"ok": "green", "notify": "yellow", "investigate": "dark_orange", "retrain": "bold red"}


def _client() -> Any:
    from modelops_mlc.engine import EngineClient

    return EngineClient(settings())


def _existing_file(path: Path | None, what: str, *, required: bool = False) -> str | None:
    if path is None:
        if required:
            raise UsageError(f"--data is required: the {what} a monitor run compares with the reference")
        return None
    if not path.is_file():
        raise UsageError(f"{what} not found: {path}")
    return str(path.resolve())


def _check_model(model: str) -> None:
    """Fail with a one-line error (exit 4) unless the registry knows ``model``."""
    from modelops_mlc.cli.commands.model import _registry

    _registry().resolve(model)


@monitor_app.command("schedule")
def schedule_command(
    model: ModelArg,
    every: Annotated[Optional[str], typer.Option("--every", help="Interval: 30s, 15m, 1h, 1d, PT1H or R/PT1H.")] = None,
    cron: Annotated[Optional[str], typer.Option("--cron", help='Crontab schedule, e.g. "0 2 * * 0" (Sundays 02:00).')] = None,
    data: DataOpt = None,
    reference: ReferenceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Monitor MODEL on a schedule (a timer in the engine); replaces the model's schedule if it has one."""
    from modelops_mlc.monitoring.schedules import schedule, timer_expression

    timer_expression(every=every, cron=cron)  # bad input fails before the registry is opened
    current, ref = _existing_file(data, "current data", required=True), _existing_file(reference, "reference data")
    _check_model(model)
    with _client() as client:
        result = schedule(client, model, every=every, cron=cron, current_data=current, reference_data=ref)
    if as_json:
        print_json(result)
        return
    info(f"monitor of {result.model} scheduled ({result.spec}, timer {result.timer}); next run {result.next_due}")


@monitor_app.command("unschedule")
def unschedule_command(model: ModelArg) -> None:
    """Remove MODEL's monitor schedule."""
    from modelops_mlc.monitoring.schedules import unschedule

    with _client() as client:
        unschedule(client, model)
    info(f"monitor schedule of {model} removed")


@monitor_app.command("list")
def list_command(as_json: JsonOpt = False) -> None:
    """Every model's schedule, with the next due time: monitor schedules and retrain schedules
    (`mlc retrain MODEL --every`)."""
    from modelops_mlc.monitoring.schedules import MONITOR, RETRAIN, list_schedules

    with _client() as client:
        rows = list_schedules(client, (MONITOR, RETRAIN))
    render(rows, as_json=as_json, columns=["model", "kind", "version", "spec", "timer", "next_due", "current_data",
                                           "training_data", "instance_id"],
           empty="no schedules")


@monitor_app.command("run")
def run_command(
    model: ModelArg,
    data: DataOpt = None,
    reference: ReferenceOpt = None,
    wait: Annotated[bool, typer.Option("--wait", help="Wait for the run's verdict.")] = False,
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds --wait waits.", min=1)] = 300,
    as_json: JsonOpt = False,
) -> None:
    """Monitor MODEL now: throws the signal mlc.monitor (what a scheduler would do through REST)."""
    from modelops_mlc.monitoring.schedules import monitor_outcome, run_monitor

    current, ref = _existing_file(data, "current data", required=True), _existing_file(reference, "reference data")
    _check_model(model)
    with _client() as client:
        request_id = run_monitor(client, model, current_data=current, reference_data=ref)
        outcome = monitor_outcome(client, request_id, wait=timeout if wait else 0)
    if as_json:
        print_json(outcome)
        return
    if not wait:
        info(f"mlc.monitor thrown for {model} (MONITOR_REQUEST_ID {request_id})")
        return
    if outcome.state in (None, "ACTIVE"):
        info(f"[yellow]the monitor of {model} has not finished within {timeout:.0f} s[/] (instance {outcome.instance_id})")
        raise typer.Exit(1)
    style = _VERDICT_STYLE.get(outcome.verdict or "", "red")
    out.print(f"verdict: [{style}]{outcome.verdict or outcome.end_event}[/]" + (f" ({outcome.reason})" if outcome.reason else ""))
    if outcome.summary:
        out.print(outcome.summary)


def _trend(previous: float | None, current: float | None) -> str:
    if previous is None or current is None:
        return ""
    if abs(current - previous) < 0.005:
        return "="
    return "up" if current > previous else "down"


@monitor_app.command("history")
def history_command(
    model: ModelArg,
    limit: Annotated[int, typer.Option("--limit", help="The last this many runs.", min=1)] = 50,
    as_json: JsonOpt = False,
) -> None:
    """MODEL's monitor runs, oldest first: verdict, largest PSI and its trend, prediction drift, accuracy drop."""
    from modelops_mlc.monitoring.history import history

    runs = history(settings(), model, limit=limit, features=as_json)
    if as_json:
        print_json(runs)
        return
    rows, previous = [], None
    for r in runs:
        rows.append({
            "at": r.at.strftime("%Y-%m-%d %H:%M:%S") if r.at else "", "version": r.model_version, "trigger": r.trigger,
            "verdict": r.verdict, "max_psi": "" if r.max_psi is None else f"{r.max_psi:.3f}",
            "trend": _trend(previous, r.max_psi), "feature": r.max_psi_feature, "drifted": r.drifted_features,
            "prediction_psi": "" if r.prediction_psi is None else f"{r.prediction_psi:.3f}",
            "accuracy_drop": "" if r.accuracy_drop is None else f"{r.accuracy_drop:+.1%}",
        })
        previous = r.max_psi if r.max_psi is not None else previous
    render(rows, as_json=False, title=f"monitor history of {model}", empty=f"no monitor runs of {model}",
           columns=["at", "version", "trigger", "verdict", "max_psi", "trend", "feature", "drifted", "prediction_psi",
                    "accuracy_drop"])


def register(app: typer.Typer) -> None:
    """Add `mlc monitor ...` (with `watch` from monitor_watch.py) to the root app."""
    from modelops_mlc.cli.commands import monitor_watch

    monitor_watch.register(monitor_app)
    app.add_typer(monitor_app, name="monitor")
