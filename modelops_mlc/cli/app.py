"""Assembles the ``mlc`` command groups; ``main`` is the console script and the one error path."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from modelops_mlc.cli import _common
from modelops_mlc.cli.commands import engine as engine_cmds
from modelops_mlc.cli.commands import process as process_cmds
from modelops_mlc.cli.commands import stack as stack_cmds
from modelops_mlc.cli.commands import timeline as timeline_cmds
from modelops_mlc.cli.commands import ticket as ticket_cmds
from modelops_mlc.cli.commands import alerts as alerts_cmds
from modelops_mlc.cli.commands import worker as worker_cmds
from modelops_mlc.cli.commands import runtime as runtime_cmds
from modelops_mlc.cli.commands import deployment as deployment_cmds
from modelops_mlc.cli.commands import manifest as manifest_cmds
from modelops_mlc.cli.commands import model as model_cmds
from modelops_mlc.cli.commands import monitor as monitor_cmds
from modelops_mlc.cli.commands import webhook as webhook_cmds
from modelops_mlc.cli.commands import retrain as retrain_cmds
from modelops_mlc.cli.commands import feedback as feedback_cmds
from modelops_mlc.cli.commands import history as history_cmds
from modelops_mlc.cli.commands import lineage as lineage_cmds
from modelops_mlc.cli.commands import kpi as kpi_cmds
from modelops_mlc.cli.commands import report as report_cmds
from modelops_mlc.cli.commands import audit as audit_cmds
from modelops_mlc.cli.commands import plan as plan_cmds
from modelops_mlc.cli.commands import predictions as predictions_cmds
from modelops_mlc.errors import MlcError, first_line

app = typer.Typer(
    name="mlc",
    help="modelops-mlc: model life cycle processes on Camunda 7, with MLflow as the registry.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)


@app.callback()
def _root(
    ctx: typer.Context,
    engine_url: Annotated[
        Optional[str], typer.Option("--engine-url", help="Engine REST base (default: MLC_ENGINE_URL).", show_default=False)
    ] = None,
    home: Annotated[
        Optional[Path], typer.Option("--home", help="State directory (default: MLC_HOME or ~/.mlc).", show_default=False)
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", help="Log debug output on stderr.")] = False,
    user: Annotated[
        Optional[str], typer.Option("--user", envvar="MLC_USER", show_default=False,
                                    help="Who is acting, for the audit log (default: the OS user).")
    ] = None,
) -> None:
    from modelops_mlc.insight.actor import cli_actor

    if engine_url or home:
        from modelops_mlc.config import load_settings

        _common.set_settings(load_settings(engine_url=engine_url, home=home))
    # On an engine with basic auth the actor is the signed-in user. The settings are read when that
    # matters: a --user is checked before the command changes anything (not for a --help, which
    # changes nothing: Click keeps no arguments on ctx for a group callback), else at the first change.
    cli_actor(ctx.invoked_subcommand, None if "--help" in sys.argv[1:] else user, _common.settings)
    if verbose:
        from rich.logging import RichHandler

        logging.basicConfig(level=logging.DEBUG, handlers=[RichHandler(console=_common.err)], format="%(message)s")


app.add_typer(engine_cmds.app, name="engine")
app.add_typer(runtime_cmds.app, name="runtime")
app.add_typer(deployment_cmds.app, name="deployment")
app.add_typer(manifest_cmds.app, name="manifest")
app.add_typer(plan_cmds.app, name="plan")
app.add_typer(predictions_cmds.app, name="predictions")
process_cmds.register(app)
model_cmds.register(app)
stack_cmds.register(app)
timeline_cmds.register(app)
app.add_typer(ticket_cmds.app, name="ticket")
alerts_cmds.register(app)
app.add_typer(worker_cmds.app, name="worker")
monitor_cmds.register(app)
webhook_cmds.register(app)
retrain_cmds.register(app)
feedback_cmds.register(app)
for _insight in (history_cmds, lineage_cmds, kpi_cmds, report_cmds, audit_cmds):
    _insight.register(app)


def main() -> None:
    """Console entry point: every MlcError and usage error becomes one line on stderr and its exit code."""
    try:
        code = app(standalone_mode=False)
        sys.exit(code if isinstance(code, int) else 0)
    except typer.TyperException as exc:  # bad arguments or options, as Click words them
        ctx = getattr(exc, "ctx", None)
        if type(exc).__name__ != "NoArgsIsHelpError":  # `mlc` or a group alone: Typer has shown its help
            _common.error_line(exc.format_message(), f"see `{ctx.command_path} --help`" if ctx is not None else None)
        sys.exit(exc.exit_code)
    except typer.Abort:
        _common.err.print("[yellow]aborted[/]")
        sys.exit(1)
    except MlcError as exc:
        _common.error_line(exc.message, exc.hint)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        _common.err.print("[yellow]interrupted[/]")
        sys.exit(130)
    except Exception as exc:  # a bug of ours: still one line, the traceback only on request
        if os.environ.get("MLC_DEBUG"):
            raise
        _common.err.print(
            f"[bold red]internal error:[/] {_common.escape(first_line(exc, typed=True))}"
        )
        _common.err.print("[dim]hint: set MLC_DEBUG=1 to see the traceback[/]")
        sys.exit(70)


if __name__ == "__main__":
    main()
