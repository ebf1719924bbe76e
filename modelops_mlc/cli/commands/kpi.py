"""`mlc kpi`: how long models take to reach deployment and approval, test pass rate, deployments, incidents."""

from __future__ import annotations

from typing import Annotated

import typer

from modelops_mlc.cli._common import JsonOpt, print_json, render, settings
from modelops_mlc.cli.commands.history import _registry

SinceOpt = Annotated[str | None, typer.Option("--since", help="Only since: 30m, 2h, 7d, or an ISO date/time.",
                                             show_default=False)]


def kpi(
    since: SinceOpt = None,
    model_id: Annotated[str | None, typer.Option("--model-id", "-m", help="Only this model.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """KPIs from the engine's history: snapshot to deployment, approval and ticket waits, tests, incidents."""
    from modelops_mlc.engine import EngineClient
    from modelops_mlc.insight.kpi import compute_kpis
    from modelops_mlc.tickets.notifications import parse_since

    start = parse_since(since)
    registry = _registry()
    if model_id:
        registry.get_model(model_id.split("@", 1)[0].split("/", 1)[0])
    with EngineClient(settings()) as client:
        kpis = compute_kpis(client, registry, since=start, model_id=model_id)
    if as_json:
        print_json(kpis)
    else:
        render(kpis.figures(), as_json=False, title="KPIs" + (f" of {model_id}" if model_id else "")
               + (f" since {kpis.since}" if since else ""))


def register(app: typer.Typer) -> None:
    app.command("kpi")(kpi)
