"""Lineage of a model version: training data (hash) -> training run -> version -> test runs ->
deployments -> batch scoring outputs (hash).

Every edge names the recorded fact it comes from (``because``): a version's source run or its
``mlc.train_run_id`` tag, a run's params, the tags MLC puts on its runs (``mlc.kind``,
``mlc.model_name``, ``mlc.model_version``), a deployment row, the variables of the process
instance that deployed or scored. Where no fact links two things, no edge is drawn.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from modelops_mlc.insight.facts import iso, mlflow_runs, run_link

if TYPE_CHECKING:
    from modelops_mlc.engine import EngineClient
    from modelops_mlc.registry import ModelVersionInfo, Registry

__all__ = ["LineageNode", "version_lineage"]

BATCH_JOB = "mlc-run-batch-job"


class LineageNode(BaseModel):
    kind: str  # training_data, training_run, version, test_run, deployment, scoring_output
    id: str
    label: str
    because: str | None = None  # the recorded fact that links this node to its parent
    time: str | None = None
    link: str | None = None
    facts: dict[str, Any] = Field(default_factory=dict)
    children: list["LineageNode"] = Field(default_factory=list)


def _short(sha: str | None) -> str:
    return f"sha256 {sha[:12]}" if sha else "no hash recorded"


def _training(registry: "Registry", info: "ModelVersionInfo", version_node: LineageNode) -> LineageNode:
    """Put the training run and training data above the version, as far as they are recorded; the root."""
    root = version_node
    run_id = info.tags.get("mlc.train_run_id") or info.run_id
    if run_id:
        try:
            run = registry.client.get_run(run_id)
        except Exception:  # a run deleted from MLflow: the version still names it
            run = None
        params = run.data.params if run else {}
        run_node = LineageNode(
            kind="training_run", id=run_id,
            label=f"{(run.data.tags.get('mlc.kind') if run else None) or 'source'} run {run_id[:12]}"
                  + (f" ({run.info.run_name})" if run and run.info.run_name else ""),
            time=iso(run.info.start_time) if run else None,
            link=run_link(registry, run_id, run.info.experiment_id if run else None),
            facts={k: params[k] for k in ("entrypoint", "seed", "training_rows", "parent_version") if k in params},
            children=[version_node],
        )
        version_node.because = ("version tag mlc.train_run_id" if info.tags.get("mlc.train_run_id")
                                else "registry: the version's source run")
        root = run_node
        if params.get("training_data"):
            run_node.because = f"params training_data, training_data_sha256 of run {run_id[:12]}"
            return LineageNode(
                kind="training_data", id=params.get("training_data_sha256") or params["training_data"],
                label=f"{params['training_data']} ({_short(params.get('training_data_sha256'))})",
                facts={"uri": params["training_data"], "sha256": params.get("training_data_sha256") or None},
                children=[run_node],
            )
    asset = info.assets.get("TRAINING_DATA")
    if asset is not None:  # recorded on the version, not on a run: drawn as the version's data
        version_node.children.insert(0, LineageNode(
            kind="training_data", id=asset.sha256 or asset.uri, label=f"{asset.uri} ({_short(asset.sha256)})",
            because="version asset TRAINING_DATA", time=iso(asset.added_at),
            facts={"uri": asset.uri, "sha256": asset.sha256}))
    return root


def version_lineage(client: "EngineClient", registry: "Registry", model_id: str) -> LineageNode:
    """The lineage tree of one version (``name`` means the latest), rooted at its training data
    when that is recorded, else at its training run, else at the version."""
    from modelops_mlc.runtimes.deployments import DeploymentManager

    info = registry.get_version(model_id)
    version_node = LineageNode(
        kind="version", id=info.model_id, label=f"version {info.model_id}"
        + (f" @{', @'.join(info.aliases)}" if info.aliases else ""),
        time=iso(info.created_at), link=run_link(registry, info.run_id),
        facts={"source": info.source, "run_id": info.run_id, "flavors": info.flavors,
               "parent_version": info.tags.get("mlc.parent_version")},
    )
    tests: dict[str, LineageNode] = {}
    for run in mlflow_runs(registry, info.name, "test"):
        if run.data.tags.get("mlc.model_version") != str(info.version):
            continue
        params = run.data.params
        node = LineageNode(
            kind="test_run", id=run.info.run_id, label=f"test run {run.info.run_id[:12]} on {params.get('data_uri', '?')} "
            f"({_short(params.get('data_sha256'))})",
            because="run tags mlc.kind=test, mlc.model_version", time=iso(run.info.start_time),
            link=run_link(registry, run.info.run_id, run.info.experiment_id),
            facts={"metrics": dict(sorted(run.data.metrics.items())), "data": params.get("data_uri"),
                   "data_sha256": params.get("data_sha256") or None, "status": run.info.status},
        )
        tests[run.info.run_id] = node
        version_node.children.append(node)

    manager = DeploymentManager(registry.settings)
    for dep in manager.list(info.name):
        if dep.model_version != str(info.version):
            continue
        node = LineageNode(
            kind="deployment", id=str(dep.id),
            label=f"deployment {dep.id}: {dep.mode} on {dep.runtime} ({dep.stage}), {dep.state}",
            time=iso(dep.created_at), facts={"mode": dep.mode, "runtime": dep.runtime, "stage": dep.stage,
                                             "state": dep.state, "endpoint": dep.endpoint,
                                             "process_instance_id": dep.process_instance_id},
        )
        parent = version_node
        node.because = "deployment row model_name, model_version"
        if dep.process_instance_id:
            test_run = client.variables(dep.process_instance_id).get("TEST_RUN_ID")
            if test_run and str(test_run) in tests:
                parent = tests[str(test_run)]
                node.because = f"deployment row process_instance_id {dep.process_instance_id} -> variable TEST_RUN_ID"
        parent.children.append(node)
        recorded = {"DEPLOYMENT_ID": dep.id, "MODEL_ID": info.name, "MODEL_VERSION": info.version}
        for job in reversed(client.instances(process_key=BATCH_JOB, variables=recorded)):
            v = client.variables(job.id)
            if not v.get("OUTPUT_FILE"):
                continue
            node.children.append(LineageNode(
                kind="scoring_output", id=str(v.get("OUTPUT_SHA256") or v["OUTPUT_FILE"]),
                label=f"{v['OUTPUT_FILE']} ({_short(v.get('OUTPUT_SHA256'))}), {v.get('ROWS_SCORED', '?')} rows",
                because=f"{BATCH_JOB} instance {job.id} variables MODEL_ID, MODEL_VERSION, DEPLOYMENT_ID, "
                        "OUTPUT_FILE, OUTPUT_SHA256",
                time=iso(job.end_time or job.start_time),
                facts={"output": v["OUTPUT_FILE"], "sha256": v.get("OUTPUT_SHA256"), "rows": v.get("ROWS_SCORED"),
                       "input": v.get("INPUT_FILE"), "process_instance_id": job.id},
            ))

    return _training(registry, info, version_node)
