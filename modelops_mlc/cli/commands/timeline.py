"""`mlc timeline MODEL_ID`: where a model has been, step by step, from the engine's history."""

from __future__ import annotations

from typing import Annotated

import typer

from modelops_mlc.cli._common import JsonOpt, render, settings


def timeline(
    model_id: Annotated[str, typer.Argument(help="Model name (name/version and name@alias use the name).")],
    limit: Annotated[int, typer.Option(help="At most this many process instances, newest first.")] = 50,
    as_json: JsonOpt = False,
) -> None:
    """Show a model's timeline across its MLC processes."""
    from modelops_mlc.engine import EngineClient
    from modelops_mlc.insight import model_timeline

    with EngineClient(settings()) as client:
        events = model_timeline(client, model_id, limit=limit)
    render(events, as_json=as_json, columns=["time", "process", "business_key", "step", "kind", "duration_ms", "who", "state"],
           title=f"timeline of {model_id}", empty=f"no process instances for {model_id}")


def register(app: typer.Typer) -> None:
    app.command("timeline")(timeline)
