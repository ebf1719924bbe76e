"""Topic ``score``: batch-score INPUT_FILE with a version into OUTPUT_FILE.

Rerunning it rewrites the same output from the same input; the score run carries the task's key,
so a task redelivered after its handler finished returns the output that run recorded (when the
file still has that hash) instead of scoring again and logging a second run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from modelops_mlc.errors import BpmnError
from workers.handlers import TaskContext, topic
from workers.support import job_errors, model_spec
from workers.variables import INPUT_FILE, MLC_MISSING_TEST_DATA, OUTPUT_FILE, OUTPUT_SHA256, ROWS_SCORED, TOPIC_SCORE


@topic(TOPIC_SCORE, cpu_bound=True)
def score(ctx: TaskContext) -> dict[str, Any]:
    from modelops_mlc.jobs import score as score_job
    from modelops_mlc.jobs.runs import DEDUPE_TAG, settle_task_runs
    from modelops_mlc.registry import Registry

    input_file = ctx.get(INPUT_FILE)
    if not input_file:
        raise BpmnError(MLC_MISSING_TEST_DATA, f"no {INPUT_FILE} to score")
    output_file = ctx.get(OUTPUT_FILE) or str(_default_output(ctx, Path(str(input_file))))
    registry = Registry(ctx.settings)
    with job_errors():
        done = _scored(settle_task_runs(registry, ctx.dedupe_key, "score"), Path(str(output_file)))
        if done is not None:
            return done
        result = score_job(registry, model_spec(ctx), str(input_file), str(output_file), run_tags={
            DEDUPE_TAG: ctx.dedupe_key, "mlc.process_instance_id": ctx.process_instance_id})
    return {ROWS_SCORED: result.rows, OUTPUT_FILE: result.output_path, OUTPUT_SHA256: result.output_sha256}


def _scored(runs: list[Any], output: Path) -> dict[str, Any] | None:
    """The variables of a finished score run of this task whose output is still on disk as it wrote it."""
    from modelops_mlc.registry import sha256_file

    for run in runs:
        params = run.data.params
        if (params.get("output") == str(output.resolve()) and output.is_file()
                and params.get("output_sha256") == sha256_file(output)):
            return {ROWS_SCORED: int(run.data.metrics["rows"]), OUTPUT_FILE: str(output),
                    OUTPUT_SHA256: params["output_sha256"]}
    return None


def _default_output(ctx: TaskContext, source: Path) -> Path:
    folder = ctx.settings.home / "outputs"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{source.stem}-scored-{ctx.process_instance_id}{source.suffix or '.csv'}"
