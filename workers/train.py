"""Topic ``train``: train a new version from the current one on its training data.

Idempotent beyond the runner's replay: the new version carries the task's dedupe key as tag
``mlc.dedupe_key``, so a task redelivered after the version was registered (worker killed
before it could report) finds that version instead of training a second one. The training run
carries it too: a run a killed worker left RUNNING is marked KILLED when the task comes back.
"""

from __future__ import annotations

from typing import Any

from workers.handlers import TaskContext, topic
from workers.support import job_errors, model_name, model_spec
from workers.variables import MODEL_VERSION, PARENT_VERSION, TOPIC_TRAIN, TRAIN_RUN_ID, TRAINING_DATA


@topic(TOPIC_TRAIN, cpu_bound=True)
def train(ctx: TaskContext) -> dict[str, Any]:
    from modelops_mlc.jobs import train as train_job
    from modelops_mlc.jobs.runs import DEDUPE_TAG, settle_task_runs
    from modelops_mlc.registry import Registry

    registry = Registry(ctx.settings)
    with job_errors():
        for info in registry.list_versions(model_name(ctx)):
            if info.tags.get(DEDUPE_TAG) == ctx.dedupe_key:
                parent = info.tags.get("mlc.parent_version")
                return {
                    MODEL_VERSION: info.version,
                    PARENT_VERSION: int(parent) if parent and parent.isdigit() else None,
                    TRAIN_RUN_ID: info.tags.get("mlc.train_run_id") or info.run_id,
                }
        settle_task_runs(registry, ctx.dedupe_key, "train")
        result = train_job(registry, model_spec(ctx), training_data=ctx.get(TRAINING_DATA),
                           tags={DEDUPE_TAG: ctx.dedupe_key},
                           run_tags={DEDUPE_TAG: ctx.dedupe_key, "mlc.process_instance_id": ctx.process_instance_id})
    return {MODEL_VERSION: result.version, PARENT_VERSION: result.parent_version, TRAIN_RUN_ID: result.run_id}
