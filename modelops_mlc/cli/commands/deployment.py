"""`mlc deployment list|show|create|promote|rollback|compare|retire`: model versions on runtimes."""

from __future__ import annotations

from typing import Annotated

import typer

from modelops_mlc.cli._common import JsonOpt, err, fail, info, out, render, settings

app = typer.Typer(help="Deployments of model versions to runtimes: canary, shadow, promote, rollback.",
                  no_args_is_help=True)

_COLUMNS = ["id", "model_name", "model_version", "runtime", "mode", "state", "traffic_weight", "shadow", "stage",
            "endpoint", "requested_by", "created_at"]
RuntimeOpt = Annotated[str | None, typer.Option("--runtime", "-r", help="Only on this runtime.")]


def _manager():
    from modelops_mlc.runtimes.deployments import DeploymentManager

    return DeploymentManager(settings())


@app.command("list")
def list_(
    model: Annotated[str | None, typer.Option("--model", "-m", help="Only this model.")] = None,
    runtime: RuntimeOpt = None,
    state: Annotated[str | None, typer.Option("--state", help="deploying, deployed, failed or retired.")] = None,
    active: Annotated[bool, typer.Option("--active", help="Only deploying or deployed.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """List deployments, oldest first."""
    rows = _manager().list(model, runtime=runtime, state=state, active_only=active)
    render(rows, as_json=as_json, columns=_COLUMNS, empty="no deployments")


@app.command()
def show(deployment_id: Annotated[int, typer.Argument(help="Deployment id.")], as_json: JsonOpt = False) -> None:
    """Show one deployment and its history."""
    manager = _manager()
    dep = manager.get(deployment_id)
    events = manager.events(deployment_id)
    if as_json:
        render({**dep.model_dump(mode="json"), "events": [e.model_dump(mode="json") for e in events]}, as_json=True)
        return
    render(dep, as_json=False, title=f"deployment {dep.id}")
    if events:
        out.print()
        render(events, as_json=False, columns=["at", "action", "actor", "detail"], title="history")


@app.command()
def create(
    model_id: Annotated[str, typer.Argument(help="name, name/version or name@alias (latest version by default).")],
    stage: Annotated[str, typer.Option("--stage", "-s", help="Stage the runtime must serve.")] = "QA",
    weight: Annotated[int | None, typer.Option("--weight", "-w", min=0, max=100,
                                               help="Traffic percent (<100: canary; default 100).")] = None,
    shadow: Annotated[bool, typer.Option("--shadow", help="Mirror the live traffic of the serving version to this "
                                         "one, log its predictions, answer none (see `mlc deployment compare`).")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Deploy a model version now, without a process (the `deploy` worker does this in processes)."""
    if shadow and weight is not None:
        fail("--shadow takes no --weight: a shadow answers no traffic", code=2)
    with err.status(f"deploying {model_id} to a {stage} runtime…", spinner="dots"):
        dep = _manager().deploy(model_id, None, stage, traffic_weight=100 if weight is None else weight,
                                shadow=shadow)
    if as_json:
        render(dep, as_json=True)
        return
    share = "shadow" if dep.shadow else f"{dep.traffic_weight}%"
    info(f"[green]deployment {dep.id}[/]: {dep.model_name}/{dep.model_version} on {dep.runtime} "
         f"({dep.mode}, {share})" + (f" — {dep.message}" if dep.message else ""))


@app.command()
def promote(
    model: Annotated[str, typer.Argument(help="Registered model name.")],
    runtime: RuntimeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Move the canary of MODEL to 100% and retire the version beside it."""
    deps = _manager().promote(model, runtime=runtime)
    if as_json:
        render(deps, as_json=True)
        return
    for dep in deps:
        info(f"[green]promoted[/] {dep.model_name}/{dep.model_version} on {dep.runtime} (deployment {dep.id}, 100%)")


@app.command()
def rollback(
    model: Annotated[str, typer.Argument(help="Registered model name.")],
    runtime: RuntimeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Return MODEL to its previous version at 100% (retires the newest one)."""
    deps = _manager().rollback(model, runtime=runtime)
    if as_json:
        render(deps, as_json=True)
        return
    for dep in deps:
        info(f"[green]rolled back[/] {dep.model_name} on {dep.runtime} to version {dep.model_version} "
             f"(deployment {dep.id}, {dep.traffic_weight}%)")


@app.command()
def compare(deployment_id: Annotated[int, typer.Argument(help="Id of a shadow deployment.")],
            as_json: JsonOpt = False) -> None:
    """Agreement of a shadow with the primary on the same requests; both versions' metrics on labelled ones."""
    from modelops_mlc.runtimes.feedback import FeedbackStore

    result = FeedbackStore(settings()).compare(deployment_id)
    render(result, as_json=as_json, title=f"shadow deployment {result.deployment_id}")
    if not as_json and result.paired == 0:
        info("[dim]no request answered by a primary version has a shadow prediction yet[/]")


@app.command()
def retire(deployment_id: Annotated[int, typer.Argument(help="Id of a shadow deployment.")],
           as_json: JsonOpt = False) -> None:
    """End a shadow deployment (its logged predictions stay for `mlc deployment compare`)."""
    dep = _manager().retire_shadow(deployment_id)
    if as_json:
        render(dep, as_json=True)
        return
    info(f"[green]retired[/] shadow {dep.model_name}/{dep.model_version} on {dep.runtime} (deployment {dep.id})")
