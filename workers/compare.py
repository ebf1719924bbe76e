"""Topic ``compare``: champion against challenger on the same test data."""

from __future__ import annotations

from typing import Any

from modelops_mlc.errors import TaskFailed
from workers.handlers import TaskContext, topic
from modelops_mlc.serialize import json_safe
from workers.support import job_errors, model_name, version_spec
from workers.variables import (
    CHALLENGER_VERSION,
    CHAMPION_VERSION,
    COMPARE_RESULTS,
    COMPARE_WINNER,
    INPUT_FILE,
    MODEL_VERSION,
    TOPIC_COMPARE,
)


@topic(TOPIC_COMPARE, cpu_bound=True)
def compare(ctx: TaskContext) -> dict[str, Any]:
    from modelops_mlc.jobs import compare as compare_job
    from modelops_mlc.registry import Registry

    name = model_name(ctx)
    champion = version_spec(name, ctx.get(CHAMPION_VERSION, "champion"))
    challenger_version = ctx.get(CHALLENGER_VERSION, ctx.get(MODEL_VERSION))
    if challenger_version is None:
        raise TaskFailed(f"topic compare needs {CHALLENGER_VERSION} (or {MODEL_VERSION})", retryable=False)
    with job_errors():
        result = compare_job(Registry(ctx.settings), champion, version_spec(name, challenger_version),
                             data_path=ctx.get(INPUT_FILE))
    return {
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
        }),
    }
