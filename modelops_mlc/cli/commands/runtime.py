"""`mlc runtime add|list|show|remove|serve|predict`: where models run."""

from __future__ import annotations

from typing import Annotated

import typer

from modelops_mlc.cli._common import JsonOpt, info, parse_pairs, render, settings

app = typer.Typer(help="Keep the runtime catalog and run model servers.", no_args_is_help=True)

TagOpt = Annotated[
    list[str] | None,
    typer.Option("--tag", "-t", help="Runtime tag key=value (repeatable), e.g. stage=QA, tag=credit-risk."),
]
FlavorOpt = Annotated[
    list[str] | None,
    typer.Option("--flavor", help="Model flavor the runtime runs (repeatable; default python_function)."),
]
_COLUMNS = ["name", "mode", "status", "tags", "flavors", "endpoints", "last_heartbeat"]


def _catalog():
    from modelops_mlc.runtimes.catalog import RuntimeCatalog

    return RuntimeCatalog(settings())


@app.command()
def add(
    name: Annotated[str, typer.Argument(help="Runtime name.")],
    tag: TagOpt = None,
    endpoint: Annotated[
        list[str] | None,
        typer.Option("--endpoint", "-e", help="Model server URL (repeatable); none makes a batch runtime."),
    ] = None,
    flavor: FlavorOpt = None,
    replace: Annotated[bool, typer.Option("--replace", help="Overwrite a runtime of the same name.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Add a runtime to the catalog: batch without --endpoint, online with one."""
    runtime = _catalog().add(
        name, parse_pairs(tag, what="--tag", typed=False), flavor or None, endpoint or [], replace=replace
    )
    if as_json:
        render(runtime, as_json=True)
        return
    info(f"[green]runtime {runtime.name} added[/] ({runtime.mode})")


@app.command("list")
def list_(as_json: JsonOpt = False) -> None:
    """List runtimes with their mode, health and tags."""
    render(_catalog().list(), as_json=as_json, columns=_COLUMNS, empty="no runtimes in the catalog")


@app.command()
def show(name: Annotated[str, typer.Argument(help="Runtime name.")], as_json: JsonOpt = False) -> None:
    """Show one runtime."""
    render(_catalog().get(name), as_json=as_json, title=f"runtime {name}")


@app.command()
def remove(
    name: Annotated[str, typer.Argument(help="Runtime name.")],
    force: Annotated[bool, typer.Option("--force", help="Retire its active deployments too.")] = False,
) -> None:
    """Remove a runtime (refused while it has active deployments, unless --force)."""
    _catalog().remove(name, force=force)
    info(f"[green]runtime {name} removed[/]")


@app.command()
def serve(
    name: Annotated[str, typer.Argument(help="Runtime name (added to the catalog, or updated, on start).")],
    port: Annotated[int, typer.Option("--port", "-p", help="Port to listen on (0 picks a free one).")] = 8000,
    host: Annotated[str, typer.Option("--host", help="Address to bind.")] = "127.0.0.1",
    tag: TagOpt = None,
    flavor: FlavorOpt = None,
    advertise: Annotated[
        str | None, typer.Option("--advertise", help="URL to advertise instead of http://HOST:PORT.")
    ] = None,
    log_level: Annotated[str, typer.Option("--log-level", help="uvicorn log level.")] = "warning",
    workers: Annotated[int, typer.Option("--workers", "-w", min=1, max=64,
                                         help="Server processes on the one port (metrics summed across them).")] = 1,
) -> None:
    """Run a model server for this runtime: enters its endpoint in the catalog, heartbeats, serves deployed models."""
    import logging

    from modelops_mlc.runtimes.server import serve as run_server

    logging.basicConfig(level=getattr(logging, log_level.upper(), logging.WARNING),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    def on_ready(endpoint: str) -> None:
        procs = f", {workers} processes" if workers > 1 else ""
        info(f"[green]runtime {name} serving at {endpoint}[/]{procs} (Ctrl+C to stop)")
        if settings().runtime_admin_token is None:
            info("[dim]admin API disabled (set MLC_RUNTIME_ADMIN_TOKEN); deployments are picked up by polling[/]")

    run_server(
        settings(), name, host=host, port=port, tags=parse_pairs(tag, what="--tag", typed=False),
        flavors=flavor or None, advertise=advertise, on_ready=on_ready, log_level=log_level.lower(), workers=workers,
    )


@app.command()
def predict(
    model: Annotated[str, typer.Argument(help="Registered model name.")],
    data: Annotated[str, typer.Option("--data", "-d", help="Rows to predict: a CSV or Parquet file.")],
    runtime: Annotated[str | None, typer.Option("--runtime", "-r", help="The runtime to ask, when several serve "
                                                "the model.")] = None,
    version: Annotated[str | None, typer.Option("--version", help="Ask this version (default: the traffic split).")]
    = None,
    as_json: JsonOpt = False,
) -> None:
    """Predict rows with MODEL where its runtime serves it now (the endpoint follows a restarted runtime)."""
    from modelops_mlc.jobs._data import read_frame, require_file
    from modelops_mlc.runtimes.client import predict as run_predict

    frame = read_frame(require_file(data, "--data file"), "--data file")
    answer = run_predict(settings(), model, {"columns": [str(c) for c in frame.columns], "data": frame.values.tolist()},
                         runtime=runtime, version=version)
    if as_json:
        render(answer, as_json=True)
        return
    outputs = answer.get("outputs") or [{}]
    render([{"row": i, "prediction": v} for i, v in enumerate(outputs[0].get("data") or [])], as_json=False,
           title=f"{answer.get('model_name')}/{answer.get('model_version')} (request {answer.get('id')})")
