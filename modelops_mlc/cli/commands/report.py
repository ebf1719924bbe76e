"""`mlc report --out DIR`: a static HTML page of KPIs, life cycle timelines, metric and drift trends."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from modelops_mlc.cli._common import JsonOpt, info, print_json, settings
from modelops_mlc.cli.commands.history import _registry
from modelops_mlc.cli.commands.kpi import SinceOpt


def report(
    out_dir: Annotated[Path, typer.Option("--out", help="Directory to write index.html into.")],
    model_id: Annotated[str | None, typer.Option("--model-id", "-m", help="Only this model.")] = None,
    since: SinceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Write one self-contained HTML page (opens from disk, no network) with Plotly charts."""
    from modelops_mlc.engine import EngineClient
    from modelops_mlc.insight.report import write_report
    from modelops_mlc.tickets.notifications import parse_since

    start = parse_since(since)
    with EngineClient(settings()) as client:
        result = write_report(client, _registry(), out_dir, model_id=model_id, since=start)
    if as_json:
        print_json(result)
    else:
        info(f"[green]report written[/]: {result.path} ({len(result.models)} model(s), {result.plots} plot(s))")


def register(app: typer.Typer) -> None:
    app.command("report")(report)
