"""`mlc history MODEL` (and its alias `mlc timeline`): everything that happened to a model, who did it, where to look."""

from __future__ import annotations

from typing import Annotated

import typer

from modelops_mlc.cli._common import JsonOpt, render, settings

ModelArg = Annotated[str, typer.Argument(help="name, name/version (only that version's events) or name@alias.")]


def _registry():  # noqa: ANN202
    from modelops_mlc.cli.commands.model import _registry as registry

    return registry()


def history(
    model_id: ModelArg,
    limit: Annotated[int, typer.Option(help="At most this many process instances, newest first.")] = 200,
    as_json: JsonOpt = False,
) -> None:
    """A model's history: versions, processes and their path, tests, approvals, tickets, deployments, drift."""
    from modelops_mlc.engine import EngineClient
    from modelops_mlc.insight.history import model_history

    with EngineClient(settings()) as client:
        events = model_history(client, _registry(), model_id, limit=limit)
    render(events, as_json=as_json, columns=["time", "kind", "what", "actor", "version", "duration_ms", "link"],
           title=f"history of {model_id}", empty=f"nothing recorded for {model_id}")


def register(app: typer.Typer) -> None:
    app.command("history")(history)
