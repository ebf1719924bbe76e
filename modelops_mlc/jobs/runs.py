"""MLflow runs of one worker task: the task's key (tag ``mlc.dedupe_key``) on every run a job
starts for it, so a redelivered task can tell what its earlier delivery left.

A worker killed mid-job leaves its run RUNNING for ever; :func:`settle_task_runs` marks those
KILLED and returns the runs the earlier delivery finished, for a job whose run is its effect (a
scan report, a monitor record) to reuse instead of logging a second one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from modelops_mlc.registry import Registry

__all__ = ["DEDUPE_TAG", "settle_task_runs"]

DEDUPE_TAG = "mlc.dedupe_key"  # the worker task a run (or a trained version) was made for


def settle_task_runs(registry: "Registry", key: str, kind: str | None = None) -> list[Any]:
    """Mark KILLED the runs (of ``mlc.kind`` ``kind``, if given) an earlier delivery of task ``key``
    left RUNNING; return its FINISHED ones, newest first."""
    query = f"tags.`{DEDUPE_TAG}` = '{key}'" + (f" and tags.`mlc.kind` = '{kind}'" if kind else "")
    runs = registry.client.search_runs([registry.experiment_id], query, order_by=["attributes.start_time DESC"])
    for run in runs:
        if run.info.status == "RUNNING":
            registry.client.set_terminated(run.info.run_id, "KILLED")
    return [run for run in runs if run.info.status == "FINISHED"]
