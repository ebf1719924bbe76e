"""`mlc feedback MODEL FILE`: true labels for logged predictions, joined by request id."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from modelops_mlc.cli._common import JsonOpt, escape, fail, info, render, settings


def feedback(
    model: Annotated[str, typer.Argument(help="Registered model name the predictions were made by.")],
    file: Annotated[Path, typer.Argument(help="CSV or Parquet with request_id, optional row, and the label.")],
    label_column: Annotated[str, typer.Option("--label-column", "-l", help="Column holding the true label.")] = "label",
    source: Annotated[str, typer.Option("--source", help="Where the labels come from (kept with them).")] = "cli",
    as_json: JsonOpt = False,
) -> None:
    """Record true labels for MODEL's logged predictions; reports request ids with no logged prediction."""
    from modelops_mlc.runtimes.feedback import FeedbackStore, read_feedback_file

    rows = read_feedback_file(file, label_column)
    recorded = FeedbackStore(settings()).record(model, rows, source=source)
    report = recorded.report(model)
    if as_json:
        render(report, as_json=True)
    else:
        info(f"[green]{int(recorded)} of {recorded.received} labels[/] joined logged predictions of {escape(model)}")
        if recorded.unknown:
            info(f"[yellow]{recorded.unknown} with no logged prediction[/] (kept; they join once logged): "
                 + escape(", ".join(recorded.unknown_ids)))
    if int(recorded) == 0:
        fail(f"none of the {recorded.received} request ids in {file} has a logged prediction of model {model}",
             code=4, hint="request ids are the X-Request-Id headers (V2 response id) the model server returned")


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""
    app.command("feedback")(feedback)
