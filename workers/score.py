"""Topic ``score``: batch-score INPUT_FILE with a version into OUTPUT_FILE.

Rerunning it rewrites the same output from the same input, so a redelivery is harmless.
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
    from modelops_mlc.registry import Registry

    input_file = ctx.get(INPUT_FILE)
    if not input_file:
        raise BpmnError(MLC_MISSING_TEST_DATA, f"no {INPUT_FILE} to score")
    output_file = ctx.get(OUTPUT_FILE) or str(_default_output(ctx, Path(str(input_file))))
    with job_errors():
        result = score_job(Registry(ctx.settings), model_spec(ctx), str(input_file), str(output_file))
    return {ROWS_SCORED: result.rows, OUTPUT_FILE: result.output_path, OUTPUT_SHA256: result.output_sha256}


def _default_output(ctx: TaskContext, source: Path) -> Path:
    folder = ctx.settings.home / "outputs"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{source.stem}-scored-{ctx.process_instance_id}{source.suffix or '.csv'}"
