"""`mlc up`, `mlc down`, `mlc status`: the whole stack on one machine."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer

from modelops_mlc.cli._common import JsonOpt, err, info, render, settings


def _stack(runtime_port: int | None = None, bpmn: Path | None = None, watch: list[str] | None = None,
           mlflow_server: bool = False):
    from modelops_mlc.stack import DEFAULT_RUNTIME_PORT, Stack, check_bpmn_dir

    return Stack(settings(), runtime_port=runtime_port or DEFAULT_RUNTIME_PORT,
                 bpmn_dir=check_bpmn_dir(bpmn) if bpmn else None, watches=_watches(watch),
                 mlflow_server=mlflow_server)


def _watches(items: list[str] | None) -> list[tuple[str, str]]:
    from modelops_mlc.errors import UsageError

    pairs = []
    for item in items or []:
        folder, sep, model = item.rpartition("=")
        if not sep or not folder.strip() or not model.strip():
            raise UsageError(f"--watch expects DIR=MODEL, got {item!r}")
        pairs.append((folder.strip(), model.strip()))
    return pairs


RuntimePort = Annotated[int | None, typer.Option("--runtime-port", envvar="MLC_RUNTIME_PORT",
                                                 help="Port of the local runtime (default 8091).")]


def up(
    runtime_port: RuntimePort = None,
    bpmn: Annotated[Path | None, typer.Option(help="Directory of processes to deploy (default: bpmn/).")] = None,
    watch: Annotated[list[str] | None, typer.Option(
        "--watch", help="Also run a new-data watcher: DIR=MODEL (repeatable; see `mlc monitor watch`).")] = None,
    mlflow_server: Annotated[bool, typer.Option(
        "--mlflow-server", help="Also run `mlflow server` on the registry database (port MLC_MLFLOW_PORT) and the "
                                "webhook receiver (MLC_WEBHOOK_SECRET); the daemons write through the server.")] = False,
    postgres: Annotated[str | None, typer.Option(
        "--postgres", metavar="URL", help="One PostgreSQL database (postgresql://USER:PASSWORD@HOST:5432/DB) for the "
                                          "engine, the MLC store and MLflow; as MLC_POSTGRES_URL, which the other "
                                          "commands read.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Start the engine, deploy bpmn/, and start a worker, a local runtime and the ticket watcher."""
    if postgres:
        from modelops_mlc.cli._common import set_settings
        from modelops_mlc.config import load_settings

        set_settings(load_settings(postgres_url=postgres, home=settings().home, engine_url=settings().engine_url))
    stack = _stack(runtime_port, bpmn, watch, mlflow_server)
    with err.status("bringing the stack up…", spinner="dots") as status:
        parts = stack.up(on_step=lambda m: status.update(m + "…"))
    render([asdict(p) for p in parts], as_json=as_json, columns=["name", "running", "healthy", "pid", "detail"])
    if stack.extras.mlflow_server and settings().mlflow_tracking_uri != stack.extras.mlflow_url:
        info(f"[dim]webhooks fire for registry writes through the server: "
             f"export MLFLOW_TRACKING_URI={stack.extras.mlflow_url}[/]")
    if not all(p.healthy for p in parts):
        raise typer.Exit(1)


def down() -> None:
    """Stop everything `mlc up` started."""
    stopped = _stack().down()
    info("stopped " + ", ".join(stopped) if stopped else "nothing was running")


def status(runtime_port: RuntimePort = None, as_json: JsonOpt = False) -> None:
    """Show each part of the stack, healthy or not."""
    parts = _stack(runtime_port).status()
    render([asdict(p) for p in parts], as_json=as_json, columns=["name", "running", "healthy", "pid", "detail", "log"])
    if not all(p.healthy for p in parts):
        raise typer.Exit(3)


def register(app: typer.Typer) -> None:
    for fn in (up, down, status):
        app.command(fn.__name__)(fn)
