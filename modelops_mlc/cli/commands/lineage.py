"""`mlc lineage MODEL[/VERSION]`: training data -> training run -> version -> test runs -> deployments -> outputs."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from modelops_mlc.cli._common import JsonOpt, escape, out, print_json, settings
from modelops_mlc.cli.commands.history import _registry

if TYPE_CHECKING:
    from rich.tree import Tree

    from modelops_mlc.insight.lineage import LineageNode

_STYLE = {"training_data": "magenta", "training_run": "blue", "version": "bold green", "test_run": "cyan",
          "deployment": "yellow", "scoring_output": "magenta"}


def _tree(node: "LineageNode", parent: "Tree | None" = None) -> "Tree":
    from rich.tree import Tree

    text = f"[{_STYLE.get(node.kind, 'white')}]{escape(node.label)}[/]"
    if node.because:
        text += f"  [dim]({escape(node.because)})[/]"
    branch = Tree(text) if parent is None else parent.add(text)
    for child in node.children:
        _tree(child, branch)
    return branch


def lineage(
    model_id: Annotated[str, typer.Argument(help="name (latest version), name/version or name@alias.")],
    as_json: JsonOpt = False,
) -> None:
    """Where a version comes from and where it went; every arrow names the recorded fact behind it."""
    from modelops_mlc.engine import EngineClient
    from modelops_mlc.insight.lineage import version_lineage

    with EngineClient(settings()) as client:
        root = version_lineage(client, _registry(), model_id)
    if as_json:
        print_json(root)
    else:
        out.print(_tree(root))


def register(app: typer.Typer) -> None:
    app.command("lineage")(lineage)
