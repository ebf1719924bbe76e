"""`mlc engine start|stop|status|logs`: the local stock Camunda engine process, or one node of a
cluster of them (``--node NAME --port P``) over a shared PostgreSQL database."""

from __future__ import annotations

import time
from typing import Annotated

import typer

from modelops_mlc.cli._common import JsonOpt, err, info, out, print_json, render, settings

app = typer.Typer(help="Run the local Camunda 7 engine (built from engine/pom.xml on first use).", no_args_is_help=True)


NodeOpt = Annotated[
    str | None,
    typer.Option("--node", help="Name of a cluster node: its own PID file and log; needs a shared database (MLC_POSTGRES_URL)."),
]
PortOpt = Annotated[int | None, typer.Option("--port", help="Port the engine binds (default MLC_ENGINE_PORT).")]
HostOpt = Annotated[str | None, typer.Option(
    "--host", help="Address the engine binds (default MLC_ENGINE_HOST, 127.0.0.1); beyond loopback it needs "
                   "MLC_ENGINE_AUTH=basic and a password of your own, or --insecure.")]


def _local(node: str | None = None, port: int | None = None, host: str | None = None):
    from modelops_mlc.engine.local import LocalEngine

    return LocalEngine(settings(), node=node, port=port, host=host)


@app.command()
def start(
    timeout: Annotated[float | None, typer.Option(help="Seconds to wait for the REST API (default MLC_ENGINE_START_TIMEOUT).")] = None,
    node: NodeOpt = None,
    port: PortOpt = None,
    host: HostOpt = None,
    insecure: Annotated[bool, typer.Option(
        "--insecure", help="Listen beyond loopback without REST authentication (anyone who reaches the port "
                           "may do anything).")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Start the engine in the background; returns once /engine-rest answers. With
    MLC_ENGINE_AUTH=basic, Camunda's authorization is on and the MLC groups are made (docs/security.md)."""
    from dataclasses import asdict

    engine = _local(node, port, host)
    engine.check_exposure(insecure=insecure)
    with err.status("starting the engine…", spinner="dots") as status:
        started = time.monotonic()

        def on_build_line(line: str) -> None:
            if "Downloading" in line or "Downloaded" in line:
                status.update(f"building the engine jar (first use; Maven)… {line.split('/')[-1][:60]}")
            else:
                status.update(f"building the engine jar (first use; Maven)… {int(time.monotonic() - started)} s")

        def on_wait(waited: float) -> None:
            status.update(f"waiting for the engine at {engine.url} … {waited:.0f} s")

        result = engine.start(insecure=insecure, timeout=timeout, on_build_line=on_build_line, on_wait=on_wait)
    if as_json:
        render(asdict(result), as_json=True)
        return
    info(f"[green]engine {result.version} running[/] (pid {result.pid}) at {result.url}")
    info(f"  Cockpit: {result.url.removesuffix('/engine-rest')}/camunda/app/  log: {result.log}")
    if result.host and result.host != "127.0.0.1":
        info(f"  listening on {result.host}" + (" with authorization on" if result.authorization else
                                               " [bold red]without authentication[/]"))


@app.command()
def build(force: Annotated[bool, typer.Option("--force", help="Rebuild even when the jar exists.")] = False) -> None:
    """Build the engine jar with Maven (offline once the dependencies are local)."""
    engine = _local()
    if engine.jar_ready() and not force:
        info(f"[dim]engine jar ready: {engine.jar}[/]")
        return
    started = time.monotonic()
    with err.status("building the engine jar with Maven…", spinner="dots") as status:

        def on_line(line: str) -> None:
            status.update(f"building the engine jar with Maven… {int(time.monotonic() - started)} s  {line[-70:]}")

        jar = engine.build(on_line)
    info(f"[green]built[/] {jar} in {time.monotonic() - started:.0f} s")


@app.command()
def stop(node: NodeOpt = None) -> None:
    """Stop the engine (or the cluster node) started by `mlc engine start`."""
    info(_local(node).stop())


@app.command()
def status(node: NodeOpt = None, port: PortOpt = None, as_json: JsonOpt = False) -> None:
    """Show whether the engine runs and answers."""
    from dataclasses import asdict

    result = _local(node, port).status()
    render(asdict(result), as_json=as_json, title="engine")
    if not as_json and not result.running:
        raise typer.Exit(3)


@app.command()
def logs(
    lines: Annotated[int, typer.Option("--lines", "-n", help="How many lines from the end.")] = 50,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing new lines.")] = False,
    node: NodeOpt = None,
) -> None:
    """Print the engine's log."""
    from modelops_mlc.engine.local import tail
    from modelops_mlc.errors import NotFoundError

    engine = _local(node)
    if not engine.log_file.exists():
        raise NotFoundError(f"no engine log at {engine.log_file}", hint="start the engine with `mlc engine start`")
    for line in tail(engine.log_file, lines):
        out.print(line, markup=False, highlight=False)
    if follow:
        with engine.log_file.open("r", errors="replace") as fh:
            fh.seek(0, 2)
            try:
                while True:
                    line = fh.readline()
                    if line:
                        out.print(line.rstrip("\n"), markup=False, highlight=False)
                    else:
                        time.sleep(0.3)
            except KeyboardInterrupt:
                return


users_app = typer.Typer(help="Engine users and their MLC groups (with MLC_ENGINE_AUTH=basic).", no_args_is_help=True)
app.add_typer(users_app, name="users")


@users_app.command("add")
def users_add(
    user: Annotated[str, typer.Argument(help="User id (login name).")],
    group: Annotated[list[str] | None, typer.Option(
        "--group", "-g", help="Group to join (repeatable): mlc-reviewers, mlc-deployers, mlc-operators, mlc-workers.")] = None,
    password: Annotated[str | None, typer.Option(
        "--password", envvar="MLC_NEW_USER_PASSWORD", help="Password of a new user (the environment variable keeps "
                                                            "it out of the process list).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Create an engine user when missing and add it to groups; runs as the admin user (MLC_ENGINE_USER)."""
    from modelops_mlc.engine import EngineClient
    from modelops_mlc.engine.authorization import add_user

    with EngineClient(settings()) as client:
        done = add_user(client, user, password=password, groups=list(group or []))
    if as_json:
        print_json({"user": user, "done": done})
        return
    info(f"[green]{'; '.join(done)}[/]" if done else f"[dim]{user} already exists with those groups[/]")
