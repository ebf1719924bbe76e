"""`mlc predictions prune`: the retention of the runtimes' prediction log and its labels, on demand."""

from __future__ import annotations

from typing import Annotated

import typer

from modelops_mlc.cli._common import JsonOpt, escape, info, render, settings

app = typer.Typer(help="The prediction log the model servers keep in the MLC store, with its labels.",
                  no_args_is_help=True)


@app.command()
def prune(
    older_than: Annotated[str | None, typer.Option(
        "--older-than", help="Remove what is older: 30d, 12h, P30D, or an ISO date. Default: MLC_PREDICTION_RETENTION.")] = None,
    model: Annotated[str | None, typer.Option("--model", "-m", help="Only this registered model's rows.")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Count what would go; remove nothing.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Remove logged predictions and labels older than a duration (the model server does it hourly when
    MLC_PREDICTION_RETENTION is set)."""
    from modelops_mlc.errors import UsageError
    from modelops_mlc.runtimes.feedback import FeedbackStore
    from modelops_mlc.tickets.notifications import parse_since

    cfg = settings()  # a retention setting that is no duration was refused here, naming it
    before = parse_since(older_than or cfg.prediction_retention, flag="--older-than")
    if before is None:
        raise UsageError("no retention given", hint="--older-than 30d, or set MLC_PREDICTION_RETENTION")
    done = FeedbackStore(cfg).prune(before, model_name=model, dry_run=dry_run)
    if as_json:
        render(done.model_dump(mode="json"), as_json=True)
        return
    verb = "would remove" if dry_run else "removed"
    scope = f" of {escape(model)}" if model else ""
    info(f"{verb} {done.predictions} predictions and {done.labels} labels{scope} older than "
         f"{done.before.isoformat(timespec='seconds')}")
