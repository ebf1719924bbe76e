"""`mlc manifest kserve MODEL_ID`: deployment manifests for Kubernetes users."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from modelops_mlc.cli._common import info, settings

app = typer.Typer(help="Write deployment manifests (KServe) for a model version.", no_args_is_help=True)


@app.command()
def kserve(
    model_id: Annotated[str, typer.Argument(help="name, name/version or name@alias (latest version by default).")],
    canary_percent: Annotated[
        int | None, typer.Option("--canary-percent", min=0, max=100, help="canaryTrafficPercent of the predictor.")
    ] = None,
    out_file: Annotated[Path | None, typer.Option("--out", "-o", help="Write to this file instead of stdout.")] = None,
    namespace: Annotated[str | None, typer.Option("--namespace", "-n", help="metadata.namespace.")] = None,
    name: Annotated[str | None, typer.Option("--name", help="InferenceService name (default: from the model).")] = None,
    storage_uri: Annotated[
        str | None, typer.Option("--storage-uri", help="Where the cluster reads the model (default: its artifacts).")
    ] = None,
    min_replicas: Annotated[int, typer.Option("--min-replicas", min=0)] = 1,
    max_replicas: Annotated[int, typer.Option("--max-replicas", min=1)] = 3,
    cpu: Annotated[str, typer.Option("--cpu", help="CPU request.")] = "500m",
    cpu_limit: Annotated[str, typer.Option("--cpu-limit", help="CPU limit.")] = "1",
    memory: Annotated[str, typer.Option("--memory", help="Memory request.")] = "1Gi",
    memory_limit: Annotated[str, typer.Option("--memory-limit", help="Memory limit.")] = "2Gi",
) -> None:
    """Write a KServe InferenceService (serving.kserve.io/v1beta1) for a registered model version."""
    from modelops_mlc.runtimes.manifest import kserve_manifest

    manifest = kserve_manifest(
        settings(), model_id, canary_percent=canary_percent, namespace=namespace, name=name, storage_uri=storage_uri,
        min_replicas=min_replicas, max_replicas=max_replicas, cpu_request=cpu, cpu_limit=cpu_limit,
        memory_request=memory, memory_limit=memory_limit,
    )
    for warning in manifest.warnings:
        info(f"[yellow]warning:[/] {warning}")
    text = manifest.to_yaml()
    if out_file is None:
        typer.echo(text, nl=False)
        return
    out_file.parent.mkdir(parents=True, exist_ok=True)
    out_file.write_text(text)
    info(f"[green]wrote[/] {out_file}")
