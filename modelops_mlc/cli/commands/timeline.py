"""`mlc timeline MODEL_ID`: the earlier name of `mlc history`, kept as an alias (one implementation)."""

from __future__ import annotations

import typer

from modelops_mlc.cli.commands.history import history


def register(app: typer.Typer) -> None:
    app.command("timeline", help="Alias of `mlc history`: a model's history across its MLC processes.")(history)
