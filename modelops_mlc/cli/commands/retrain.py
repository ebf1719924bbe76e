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
    as_json: JsonOpt = False,
) -> None:
    """Retrain a model: fire `mlc.retrain`, which validates the data, trains a challenger, compares it
    with the champion and, if it wins and is approved, rolls it out by canary."""
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


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""
    app.command("retrain")(retrain)
