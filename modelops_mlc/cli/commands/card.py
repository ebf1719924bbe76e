"""`mlc model card MODEL[/VERSION]`: a Markdown model card, kept with the version's run and tagged on the version."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from modelops_mlc.cli._common import info, out
from modelops_mlc.cli.commands.history import _registry


def card(
    model_id: Annotated[str, typer.Argument(help="name (latest version), name/version or name@alias.")],
    out_file: Annotated[Path | None, typer.Option("--out", help="Also write the card to this file.")] = None,
) -> None:
    """Write the model card (Model Cards paper sections) with every recorded fact; placeholders mark the rest."""
    from modelops_mlc.insight.card import CARD_TAG, build_card, publish_card

    registry = _registry()
    result = publish_card(registry, build_card(registry, model_id), out=out_file)
    if out_file is None:
        out.print(result.markdown, markup=False, highlight=False)
    info(f"[green]model card of {result.model_id}[/]: {CARD_TAG}={result.artifact_uri or result.path}")


def register(model_app: typer.Typer) -> None:
    model_app.command("card")(card)
