"""Topic ``compare``: champion against challenger on the same test data (metrics without MLflow's
plot images, as ``run-test`` does).

Besides the winner and the full table it writes the inputs of the retrain decision
(``mlc-retrain-decision``): the primary metric, the challenger's signed relative improvement on
it and the guard metrics it loses on (see :mod:`modelops_mlc.retraining.decision`).
"""

from __future__ import annotations

from typing import Any

from modelops_mlc.errors import TaskFailed
from workers.handlers import TaskContext, topic
from modelops_mlc.serialize import json_safe
from workers.support import job_errors, model_name, version_spec
from workers.variables import (
    CHALLENGER_VERSION,
    CHAMPION_VERSION,
    COMPARE_GUARD_LOSSES,
    COMPARE_IMPROVEMENT,
    COMPARE_PRIMARY_METRIC,
    COMPARE_RESULTS,
    COMPARE_WINNER,
    INPUT_FILE,
    MODEL_VERSION,
    TOPIC_COMPARE,
)


@topic(TOPIC_COMPARE, cpu_bound=True)
def compare(ctx: TaskContext) -> dict[str, Any]:
    from modelops_mlc.jobs import compare as compare_job
    from modelops_mlc.jobs.runs import DEDUPE_TAG, settle_task_runs
    from modelops_mlc.registry import Registry
    from modelops_mlc.retraining.decision import guard_metrics, improvement

    name = model_name(ctx)
    champion = version_spec(name, ctx.get(CHAMPION_VERSION, "champion"))
    challenger_version = ctx.get(CHALLENGER_VERSION, ctx.get(MODEL_VERSION))
    if challenger_version is None:
        raise TaskFailed(f"topic compare needs {CHALLENGER_VERSION} (or {MODEL_VERSION})", retryable=False)
    registry = Registry(ctx.settings)
    challenger = version_spec(name, challenger_version)
    with job_errors():
        settle_task_runs(registry, ctx.dedupe_key)  # a killed delivery's comparison: KILLED, not RUNNING
        result = compare_job(registry, champion, challenger, data_path=ctx.get(INPUT_FILE), plots=False,
                             run_tags={DEDUPE_TAG: ctx.dedupe_key, "mlc.process_instance_id": ctx.process_instance_id})
        guards = guard_metrics(registry.get_version(challenger).tags.get("guard_metrics"), result.task_type)
    decision_inputs = improvement(result, guards)
    return {
        COMPARE_PRIMARY_METRIC: decision_inputs.primary_metric,
        COMPARE_IMPROVEMENT: decision_inputs.improvement,
        COMPARE_GUARD_LOSSES: ", ".join(decision_inputs.guard_losses),
        COMPARE_WINNER: result.winner,
        COMPARE_RESULTS: json_safe({
            "winner": result.winner,
            "champion_version": result.champion_version,
            "challenger_version": result.challenger_version,
            "task_type": result.task_type,
            "primary_metric": result.primary_metric,
            "metrics": result.as_table(),
            "thresholds_passed": result.thresholds_passed,
            "threshold_failures": result.threshold_failures,
            "run_id": result.run_id,
            "improvement": decision_inputs.improvement,
            "guard_metrics": decision_inputs.guard_metrics,
            "guard_losses": decision_inputs.guard_losses,
        }),
    }
