"""Topic ``scan``: the security scan of a version's files before it is deployed.

Unsafe pickle content (picklescan) and unpinned or unknown requirements are findings; the
process reads SCAN_PASSED and quotes SCAN_SUMMARY in the rejection ticket. The report is
recorded in an MLflow run (SCAN_RUN_ID) and in the version tag ``security_scan``; the run carries
the task's key, so a redelivered task returns the report its earlier delivery logged.
"""

from __future__ import annotations

from typing import Any

from workers.handlers import TaskContext, topic
from workers.support import job_errors, model_spec
from workers.variables import SCAN_FINDINGS, SCAN_PASSED, SCAN_RUN_ID, SCAN_SUMMARY, TOPIC_SCAN


@topic(TOPIC_SCAN)
def scan(ctx: TaskContext) -> dict[str, Any]:
    from modelops_mlc.governance.scan import scan_version
    from modelops_mlc.jobs.runs import DEDUPE_TAG
    from modelops_mlc.registry import Registry

    with job_errors():
        report = scan_version(Registry(ctx.settings), model_spec(ctx), run_tags={
            DEDUPE_TAG: ctx.dedupe_key, "mlc.process_instance_id": ctx.process_instance_id})
    return {
        SCAN_PASSED: report.passed,
        SCAN_FINDINGS: [f.model_dump() for f in report.findings],
        SCAN_SUMMARY: report.summary(),
        SCAN_RUN_ID: report.run_id,
    }
