"""`mlc ticket`: list, show and move tickets (local, Jira, ServiceNow); run the ticket watcher."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from modelops_mlc.cli._common import JsonOpt, info, out, print_json, render, settings

app = typer.Typer(help="Tickets opened by MLC processes, and the watcher that feeds their changes back.",
                  no_args_is_help=True)

SystemOpt = Annotated[
    Optional[str],
    typer.Option("--system", help="Ticket system: local, jira or servicenow (default: MLC_TICKET_SYSTEM).",
                 show_default=False),
]

_COLUMNS = ["key", "state", "model_id", "model_version", "title", "process_instance_id", "updated_at"]


@app.command("list")
def list_(
    model_id: Annotated[Optional[str], typer.Option("--model-id", "-m", help="Only tickets about this model.")] = None,
    state: Annotated[Optional[str], typer.Option("--state", "-s", help="Open, In Progress, Done or Rejected.")] = None,
    system: SystemOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List tickets, newest first."""
    from modelops_mlc.tickets import get_ticket_system, normalise_state

    wanted = normalise_state(state) if state else None
    tickets = get_ticket_system(settings(), system).search(model_id=model_id, state=wanted)
    if as_json:
        print_json(tickets)
        return
    rows = [{**t.model_dump(exclude={"description", "history"}), "updated_at": _when(t.updated_at)} for t in tickets]
    render(rows, as_json=False, columns=_COLUMNS, empty="no tickets")


def _when(value) -> str:  # type: ignore[no-untyped-def]
    return value.strftime("%Y-%m-%d %H:%M:%S") if value else ""


@app.command("show")
def show(
    key: Annotated[str, typer.Argument(help="Ticket key, e.g. MLC-3, PROJ-12, INC0010001.")],
    system: SystemOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show one ticket with its description and history."""
    from modelops_mlc.tickets import system_for_key

    ticket = system_for_key(settings(), key, system).get(key)
    if as_json:
        print_json(ticket)
        return
    fields = ticket.model_dump(mode="json", exclude={"description", "history"})
    render(fields, as_json=False)
    out.print()
    out.print(ticket.description, markup=False, highlight=False)
    for event in ticket.history:
        if event["kind"] == "comment":
            line = f"{event['at']}  comment: {event['text']}"
        elif event["kind"] == "transition":
            line = f"{event['at']}  {event['from_state']} -> {event['to_state']}"
        else:
            line = f"{event['at']}  created ({event['to_state']})"
        out.print(line, markup=False, highlight=False)


@app.command("move")
def move(
    key: Annotated[str, typer.Argument(help="Ticket key.")],
    state: Annotated[str, typer.Argument(help="Open, In Progress, Done or Rejected.")],
    comment: Annotated[Optional[str], typer.Option("--comment", "-c", help="Comment to add.")] = None,
    system: SystemOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Move a ticket to another state (the watcher tells a waiting process)."""
    from modelops_mlc.tickets import normalise_state, system_for_key

    target = normalise_state(state)
    ticket = system_for_key(settings(), key, system).transition(key, target, comment=comment)
    if as_json:
        print_json(ticket)
        return
    info(f"{ticket.key} is now [bold]{ticket.state.value}[/]")


@app.command("comment")
def comment(
    key: Annotated[str, typer.Argument(help="Ticket key.")],
    text: Annotated[str, typer.Argument(help="Comment text.")],
    system: SystemOpt = None,
) -> None:
    """Add a comment to a ticket."""
    from modelops_mlc.tickets import system_for_key

    system_for_key(settings(), key, system).comment(key, text)
    info(f"comment added to {key}")


def _stop_now(reason: str) -> None:
    """A second stop signal: leave the round under way."""
    raise KeyboardInterrupt(reason)


@app.command("watch")
def watch(
    interval: Annotated[Optional[float], typer.Option("--interval", help="Seconds between polls (default: MLC_TICKET_WATCH_INTERVAL).", show_default=False)] = None,
    once: Annotated[bool, typer.Option("--once", help="Poll once and exit.")] = False,
    log_format: Annotated[
        str, typer.Option("--log-format", help="Daemon log lines on stderr: text or json.")
    ] = "text",
    as_json: JsonOpt = False,
) -> None:
    """Poll the tickets processes wait on and deliver Done/Rejected as message mlc.ticket-updated."""
    import dataclasses
    import logging

    from modelops_mlc.engine import EngineClient
    from modelops_mlc.tickets.watcher import TicketWatcher

    from modelops_mlc.errors import UsageError

    if interval is not None and interval <= 0:
        raise UsageError("--interval must be a positive number of seconds")
    if log_format not in ("text", "json"):
        raise UsageError("--log-format must be text or json")
    with EngineClient(settings()) as client:
        watcher = TicketWatcher(settings(), client, interval=interval)
        if once:
            if not logging.getLogger().handlers:  # problems are printed from the report below
                logging.getLogger("modelops_mlc").addHandler(logging.NullHandler())
            report = watcher.run_once()
            watcher.close()
            if as_json:
                print_json(dataclasses.asdict(report))
                return
            for key, state in report.delivered:
                info(f"delivered {state} of {key}")
            for key, why in report.refused:
                info(f"[yellow]not delivered {key}: {why}[/]")
            for problem in report.errors:
                info(f"[yellow]{problem}[/]")
            info(f"checked {report.checked} ticket(s), delivered {len(report.delivered)}")
            return
        from modelops_mlc.daemon import GracefulStop, StatusFile, configure_logging

        configure_logging("json" if log_format == "json" else "text", level=logging.INFO)
        stop = GracefulStop(watcher.interval, on_force=_stop_now)
        stop.install()
        info(f"watching tickets every {watcher.interval:g} s (Ctrl-C to stop)")
        watcher.run(stop, StatusFile(settings().home, "ticket-watcher", kind="watchers"))
