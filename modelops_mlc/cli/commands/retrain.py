"""`mlc retrain` commands."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from modelops_mlc.cli._common import JsonOpt, VarOpt, fail, info, parse_pairs, print_json, settings


def retrain(
    model: Annotated[str, typer.Argument(help="Model to retrain: name (its champion, else its latest version), "
                                              "name/version or name@alias.", show_default=False)],
    data: Annotated[Path | None, typer.Option("--data", "-d", help="New training data (CSV or Parquet); "
                                                                   "default: the model's TRAINING_DATA asset.")] = None,
    margin: Annotated[float | None, typer.Option("--margin", help="Relative improvement the challenger needs on "
                                                                  "the primary metric (IMPROVEMENT_MARGIN, default 0.01).")] = None,
    var: VarOpt = None,
    every: Annotated[str | None, typer.Option("--every", help="Retrain on a schedule instead of now: 1d, 1w, P7D "
                                                              "or R/P7D (replaces the model's retrain schedule).")] = None,
    cron: Annotated[str | None, typer.Option("--cron", help='Retrain on a crontab schedule instead of now, e.g. '
                                                            '"0 3 * * 0" (Sundays 03:00).')] = None,
    unschedule: Annotated[bool, typer.Option("--unschedule", help="Remove the model's retrain schedule.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Retrain a model: fire `mlc.retrain`, which validates the data, trains a challenger, compares it
    with the champion and, if it wins and is approved, rolls it out by canary. With --every or --cron
    the engine fires it on a schedule instead (listed by `mlc monitor list`)."""
    if every is not None or cron is not None or unschedule:
        if var:
            from modelops_mlc.errors import UsageError

            raise UsageError("--var is not kept by a schedule: give --data and --margin, or fire it now without --every")
        _schedule(model, data, margin, every=every, cron=cron, unschedule=unschedule, as_json=as_json)
        return
    from modelops_mlc.retraining.trigger import request_retrain

    started = request_retrain(settings(), model, training_data=data, improvement_margin=margin,
                              extra=parse_pairs(var))
    if started.process_instance_id is None:
        fail(f"signal mlc.retrain thrown for {model}, but no mlc-retrain instance started", code=4,
             hint="deploy the MLC processes: mlc deploy bpmn/")
    if as_json:
        print_json(started)
        return
    info(f"[green]retrain of {model} started[/]: instance {started.process_instance_id} "
         f"(follow it with `mlc instances --model-id {model}`)")


def _schedule(model: str, data: Path | None, margin: float | None, *, every: str | None, cron: str | None, unschedule: bool,
              as_json: bool) -> None:
    from modelops_mlc.engine import EngineClient
    from modelops_mlc.errors import UsageError
    from modelops_mlc.monitoring import schedules

    if unschedule:
        if every is not None or cron is not None or data is not None or margin is not None:
            raise UsageError("--unschedule takes no --every, --cron, --data or --margin")
        with EngineClient(settings()) as client:
            schedules.unschedule(client, model, kind=schedules.RETRAIN)
        info(f"retrain schedule of {model} removed")
        return
    schedules.timer_expression(every=every, cron=cron)  # bad input fails before the registry is opened
    if data is not None and not data.is_file():
        raise UsageError(f"training data not found: {data}")
    from modelops_mlc.cli.commands.model import _registry

    _registry().resolve(model)
    with EngineClient(settings()) as client:
        made = schedules.schedule(client, model, every=every, cron=cron, kind=schedules.RETRAIN,
                                  training_data=str(data.resolve()) if data is not None else None,
                                  improvement_margin=margin)
    if as_json:
        print_json(made)
        return
    info(f"retrain of {made.model} scheduled ({made.spec}, timer {made.timer}); next run {made.next_due}")


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""
    app.command("retrain")(retrain)
