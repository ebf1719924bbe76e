"""Topic ``run-test``: the metrics test of a version on its TEST_DATA (or INPUT_FILE).

The metrics become Double variables under the contract's names, the inputs of the
``mlc-test-criteria`` decision the process evaluates next. The evaluation run gets the metrics,
params and tags but not MLflow's plots, most of a classifier's test time (``mlc model test`` still
draws them).

The evaluation run carries the task's key (``mlc.dedupe_key``) and process instance: a run that a
worker killed mid-test left RUNNING is marked KILLED when the task comes back, so the version
keeps one finished evaluation per test step (a finished task's outcome is replayed, see effects).
"""

from __future__ import annotations

from typing import Any

from workers.handlers import TaskContext, topic
from workers.support import finite, job_errors, model_spec
from workers.variables import (
    INPUT_FILE,
    METRIC_NAMES,
    OUTPUT_FILE,
    TASK_TYPE,
    TEST_METRICS,
    TEST_RUN_ID,
    TOPIC_RUN_TEST,
)


@topic(TOPIC_RUN_TEST, cpu_bound=True)
def run_test(ctx: TaskContext) -> dict[str, Any]:
    from modelops_mlc.jobs import metrics_test
    from modelops_mlc.jobs.runs import DEDUPE_TAG, settle_task_runs
    from modelops_mlc.registry import Registry

    registry = Registry(ctx.settings)
    with job_errors():
        settle_task_runs(registry, ctx.dedupe_key)
        result = metrics_test(registry, model_spec(ctx), data_path=ctx.get(INPUT_FILE),
                              output_path=ctx.get(OUTPUT_FILE), plots=False,
                              run_tags={DEDUPE_TAG: ctx.dedupe_key, "mlc.process_instance_id": ctx.process_instance_id})
    metrics = {name: value for name, raw in result.metrics.items() if (value := finite(raw)) is not None}
    variables: dict[str, Any] = {
        TASK_TYPE: result.task_type,
        TEST_METRICS: metrics,
        TEST_RUN_ID: result.run_id,
    }
    variables.update({name: metrics[name] for name in METRIC_NAMES if name in metrics})
    if result.output_path:
        variables[OUTPUT_FILE] = result.output_path
    return variables

