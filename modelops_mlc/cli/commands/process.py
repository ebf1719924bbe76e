"""Top-level process commands: deploy, processes, signal, instances, incidents, tasks."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from modelops_mlc.cli._common import JsonOpt, VarOpt, fail, info, parse_pairs, print_json, render, settings

SIGNAL_NAMESPACE = "mlc."


def _client():
    from modelops_mlc.engine import EngineClient

    return EngineClient(settings())


def signal_name(name: str) -> str:
    """Short names map to the namespaced signal: ``run-back-test`` -> ``mlc.run-back-test``."""
    return name if "." in name else SIGNAL_NAMESPACE + name


def deploy(
    files: Annotated[list[Path], typer.Argument(help="BPMN/DMN files or directories.", show_default=False)],
    name: Annotated[str, typer.Option(help="Name of the process deployment in the engine.")] = "mlc",
    force: Annotated[bool, typer.Option("--force", help="Deploy even unchanged resources.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Deploy MLC processes to the engine: BPMN and DMN files (unchanged ones are skipped)."""
    with _client() as client:
        result = client.deploy_processes(files, name=name, changed_only=not force)
    if as_json:
        print_json(result)
        return
    if not result.created:
        info(f"[dim]unchanged, nothing deployed: {', '.join(result.resources)}[/]")
        return
    defs = result.process_definitions + result.decision_definitions
    render([d.model_dump() for d in defs], as_json=False, columns=["kind", "key", "version", "resource", "id"],
           title=f"deployment {result.id}")


def processes(as_json: JsonOpt = False) -> None:
    """List the latest process and decision definitions."""
    with _client() as client:
        defs = client.process_definitions() + client.decision_definitions()
    render(defs, as_json=as_json, columns=["kind", "key", "version", "name", "resource"], empty="no definitions deployed")


def signal(
    name: Annotated[str, typer.Argument(help="Signal name; short names get the mlc. prefix.")],
    model_id: Annotated[str | None, typer.Option("--model-id", "-m", help="Sets MODEL_ID.")] = None,
    var: VarOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Throw a signal with variables, e.g. `mlc signal run-back-test --model-id fraud`."""
    variables = parse_pairs(var)
    if model_id:
        variables["MODEL_ID"] = model_id
    full = signal_name(name)
    with _client() as client:
        client.signal(full, variables)
    if as_json:
        print_json({"signal": full, "variables": variables})
    else:
        info(f"[green]signal {full} thrown[/]" + (f" with {', '.join(variables)}" if variables else ""))


def instances(
    model_id: Annotated[str | None, typer.Option("--model-id", "-m", help="Only instances with this MODEL_ID.")] = None,
    active: Annotated[bool, typer.Option("--active", help="Only running instances.")] = False,
    process: Annotated[str | None, typer.Option("--process", "-p", help="Only this process key.")] = None,
    with_vars: Annotated[bool, typer.Option("--vars", help="Include each instance's variables.")] = False,
    limit: Annotated[int, typer.Option(help="At most this many, newest first.")] = 50,
    as_json: JsonOpt = False,
) -> None:
    """List process instances (running and ended), newest first."""
    with _client() as client:
        rows = client.instances(model_id=model_id, active_only=active, process_key=process, limit=limit)
        if with_vars or as_json:
            for row in rows:
                row.variables = client.variables(row.id)
    render(rows, as_json=as_json, columns=["id", "process_key", "business_key", "state", "start_time", "end_time"]
           + (["variables"] if with_vars else []), empty="no process instances")


def incidents(
    retry: Annotated[str | None, typer.Option("--retry", help="Retry the incident with this id.")] = None,
    retry_all: Annotated[bool, typer.Option("--retry-all", help="Retry every open incident.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """List open incidents, or retry one (`--retry ID`)."""
    with _client() as client:
        if retry or retry_all:
            ids = [retry] if retry else [i.id for i in client.incidents()]
            done = [client.retry_incident(i) for i in ids]
            if as_json:
                print_json(done)
            else:
                for inc in done:
                    info(f"[green]retrying[/] {inc.id} ({inc.type} at {inc.activity_id})")
                if not done:
                    info("[dim]no incidents to retry[/]")
            return
        rows = client.incidents()
    render(rows, as_json=as_json, columns=["id", "type", "activity_id", "process_instance_id", "message", "timestamp"],
           empty="no incidents")


tasks_app = typer.Typer(help="User tasks (reviews): list and complete.", invoke_without_command=True)


@tasks_app.callback()
def tasks(
    ctx: typer.Context,
    group: Annotated[str | None, typer.Option("--group", "-g", help="Only tasks for this candidate group.")] = None,
    instance: Annotated[str | None, typer.Option("--instance", help="Only tasks of this process instance.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """List open user tasks."""
    if ctx.invoked_subcommand is not None:
        return
    with _client() as client:
        rows = client.tasks(candidate_group=group, process_instance_id=instance)
    render(rows, as_json=as_json, columns=["id", "name", "task_definition_key", "assignee", "process_instance_id", "created"],
           empty="no open tasks")


@tasks_app.command("complete")
def complete(
    task_id: Annotated[str, typer.Argument(help="Task id (see `mlc tasks`).")],
    var: VarOpt = None,
    user: Annotated[str | None, typer.Option(
        "--user", envvar="MLC_USER", help="Who completes it (default: `mlc --user`, else the login name; on an "
                                          "engine with basic auth, always the signed-in user); an unclaimed task "
                                          "is claimed for them first, so the process records the approver.")] = None,
) -> None:
    """Complete a user task with variables, e.g. `--var approved=true`.

    Under separation of duties (on for governance_level=production) the user who submitted the
    version cannot complete its review: the command refuses and changes nothing.
    """
    from modelops_mlc.errors import EngineError, UsageError
    from modelops_mlc.governance import SEPARATION_OF_DUTIES_PREFIX, separation_of_duties_refusal
    from modelops_mlc.insight.actor import cli_user

    variables = parse_pairs(var)
    if not task_id.strip():
        raise UsageError("a task id is required (see `mlc tasks`)")
    who = cli_user(user, "complete a task")  # with basic auth, the signed-in user and nobody else
    with _client() as client:
        try:
            task = client.request("GET", f"/task/{task_id}")
        except EngineError as exc:
            if exc.status == 404:
                fail(f"no open task {task_id}", hint="list them with `mlc tasks`")
            raise
        assignee = task.get("assignee")
        if assignee and assignee.lower() != who.lower():
            raise UsageError(f"task {task_id} is claimed by {assignee}; complete it as them (--user {assignee})")
        process = client.variables(task["processInstanceId"])
        refusal = separation_of_duties_refusal(
            enforced=process.get("SEPARATION_OF_DUTIES") is True, submitter=process.get("SUBMITTED_BY"),
            approver=who, model=process.get("MODEL_ID"), version=process.get("MODEL_VERSION"))
        if refusal:
            fail(refusal)
        if not assignee:
            client.claim(task_id, who)
        try:
            client.complete_task(task_id, variables)
        except EngineError as exc:
            if not assignee:  # the engine refused: give the task back as it was
                client.request("POST", f"/task/{task_id}/unclaim")
            if SEPARATION_OF_DUTIES_PREFIX in exc.message:
                fail(SEPARATION_OF_DUTIES_PREFIX + exc.message.split(SEPARATION_OF_DUTIES_PREFIX, 1)[1].split("'")[0])
            raise
    info(f"[green]completed task {task_id} as {who}[/]")


@tasks_app.command("claim")
def claim(
    task_id: Annotated[str, typer.Argument(help="Task id.")],
    user: Annotated[str, typer.Option("--user", help="Who claims it.")],
) -> None:
    """Claim a user task for a user."""
    with _client() as client:
        client.claim(task_id, user)
    info(f"[green]task {task_id} claimed by {user}[/]")


def register(app: typer.Typer) -> None:
    for fn in (deploy, processes, signal, instances, incidents):
        app.command(fn.__name__)(fn)
    app.add_typer(tasks_app, name="tasks")
