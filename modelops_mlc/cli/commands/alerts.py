"""`mlc alerts`: the notifications MLC processes raised, newest first."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from modelops_mlc.cli._common import JsonOpt, render, settings


def alerts(
    model_id: Annotated[Optional[str], typer.Option("--model-id", "-m", help="Only this model.")] = None,
    since: Annotated[
        Optional[str], typer.Option("--since", help="Only newer ones: 30m, 2h, 7d, or an ISO date/time.")
    ] = None,
    level: Annotated[Optional[str], typer.Option("--level", help="info, warning or error.")] = None,
    limit: Annotated[int, typer.Option("--limit", help="At most this many.", min=1)] = 200,
    as_json: JsonOpt = False,
) -> None:
    """List notifications (level, model, process instance, message, time)."""
    from modelops_mlc.errors import UsageError
    from modelops_mlc.tickets.notifications import LEVELS, list_notifications, parse_since

    if level and level.lower() not in LEVELS:
        raise UsageError(f"--level must be one of: {', '.join(LEVELS)}")
    rows = list_notifications(settings(), model_id=model_id, since=parse_since(since), level=level, limit=limit)
    if not as_json:
        rows = [{**r.model_dump(), "created_at": r.created_at.strftime("%Y-%m-%d %H:%M:%S")} for r in rows]
    render(rows, as_json=as_json, columns=["created_at", "level", "model_id", "process_instance_id", "message"],
           empty="no notifications")


def register(app: typer.Typer) -> None:
    app.command("alerts")(alerts)
