"""`mlc audit`: the append-only log of changes to models, deployments, runtimes and tickets."""

from __future__ import annotations

from typing import Annotated

import typer

from modelops_mlc.cli._common import JsonOpt, render, settings
from modelops_mlc.cli.commands.kpi import SinceOpt


def audit(
    model_id: Annotated[str | None, typer.Option("--model-id", "-m", help="Only changes of this model.")] = None,
    kind: Annotated[str | None, typer.Option("--kind", help="Only model, deployment, runtime or ticket changes.")] = None,
    since: SinceOpt = None,
    limit: Annotated[int, typer.Option(help="At most this many rows, the newest.")] = 500,
    as_json: JsonOpt = False,
) -> None:
    """Who changed what, before and after, oldest first."""
    from modelops_mlc.insight.audit import audit_entries
    from modelops_mlc.tickets.notifications import parse_since

    rows = audit_entries(settings(), model_id=model_id, target_kind=kind, since=parse_since(since), limit=limit)
    if not as_json:  # a table cell holds the gist; --json has every value whole
        rows = [{**r, "before": _short(r["before"]), "after": _short(r["after"])} for r in rows]
    render(rows, as_json=as_json, columns=["at", "actor", "action", "target", "before", "after", "process_instance_id"],
           title="audit log", empty="no changes recorded")


def _short(values: dict | None, width: int = 60) -> str:
    text = ", ".join(f"{k}={v}" for k, v in (values or {}).items())
    return text if len(text) <= width else text[: width - 1] + "…"


def register(app: typer.Typer) -> None:
    app.command("audit")(audit)
