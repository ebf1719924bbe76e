"""The productionization router and the minimal productionization process, collected by generate.py.

mlc-productionize (bpmn/productionize.bpmn) is what `mlc model snapshot` starts: it lets the
decision mlc-process-selection pick a process from the model's tags, scans the model, holds
production models to their gate (model card, a process with a review) and calls the process the
decision named. mlc-productionize-minimal (bpmn/productionize_minimal.bpmn) is the path for
low-risk internal models: test, then deploy, no review.
"""

from __future__ import annotations

from xml.sax.saxutils import quoteattr

from bpmngen import Process, cx, cy
from common import BUSINESS_KEY, ERROR_DETAIL, EVALUATE, PASSED, REASON, failure_subprocess, var

SELECTION = "mlc-process-selection"
MINIMAL = "mlc-productionize-minimal"
SOD_PREFIX = "Separation of duties:"  # modelops_mlc.governance.SEPARATION_OF_DUTIES_PREFIX


def _from_result(variable: str, output: str) -> str:
    return (f"${{execution.setVariable('{variable}', DECISION_RESULT == null ? null : "
            f"DECISION_RESULT.get('{output}'))}}")


# The review task (mlc-deploy-with-test's task_review) records who approved and refuses the
# submitter when SEPARATION_OF_DUTIES is on. JUEL cannot throw, so the refusal is a lookup that
# fails with the sentence in its message; the engine rolls the completion back, nothing changes.
# The approver is who completes the task: the authenticated user when the engine knows one (REST
# with auth on, Tasklist), else the assignee (the CLI claims the task for its user first), so a
# reviewer who claims a task for someone else still approves as themselves.
_AUTHENTICATION = "execution.getProcessEngineServices().getIdentityService().getCurrentAuthentication()"
_APPROVER = f"(empty {_AUTHENTICATION} ? task.assignee : {_AUTHENTICATION}.userId)"
_SOD_BROKEN = (f"{var('SEPARATION_OF_DUTIES')} == true and (empty {var('APPROVED_BY')} or "
               f"{var('APPROVED_BY')}.equalsIgnoreCase({var('SUBMITTED_BY')}))")
_SOD_MESSAGE = (f"(empty {var('APPROVED_BY')} ? '{SOD_PREFIX} the approver of '.concat(MODEL_ID).concat('/')"
                f".concat(MODEL_VERSION).concat(' must be known; claim the task first') : '{SOD_PREFIX} '"
                f".concat(APPROVED_BY).concat(' submitted ').concat(MODEL_ID).concat('/').concat(MODEL_VERSION)"
                ".concat(' and cannot approve it; another reviewer must'))")
_RECORD_APPROVER = f"${{execution.setVariable('APPROVED_BY', {_APPROVER})}}"
_REFUSE = (f"${{{_SOD_BROKEN} ? execution.getProcessEngineServices().getDecisionService()"
           f".evaluateDecisionByKey({_SOD_MESSAGE}).evaluate() : null}}")
REVIEW_LISTENERS = "\n".join(
    f'<camunda:taskListener expression={quoteattr(e)} event="complete" />' for e in (_RECORD_APPROVER, _REFUSE))


def productionize() -> Process:
    p = Process(
        "mlc-productionize", "MLC: productionize",
        "Started by signal mlc.model-submitted (mlc model snapshot) with MODEL_ID, MODEL_VERSION and SUBMITTED_BY. "
        f"Reads the model's tags, lets the decision {SELECTION} pick the productionization process "
        "(PRODUCTIONIZE_PROCESS, and PRODUCTIONIZE_RULE says why), scans the model's files (topic scan) and, for "
        "governance_level production, checks that the version has a model card and that the chosen process "
        "reviews. Then calls the chosen process with every variable. Ends in end_productionized (the called "
        "process ended; its own end says how), end_rejected (scan findings or production gate, with a ticket), "
        "end_no_process (the decision matched no rule; error ticket) or end_failed.",
        "definitions_productionize",
    )
    p.signal_start("start_submitted", "Model submitted", "mlc.model-submitted", 0, 0)
    p.external("task_get_model", "Get model", "get-model", 1, 0)
    p.rule("task_select_process", "Select process", 2, 0, attrs={
        "camunda:asyncBefore": "true",
        "camunda:decisionRef": SELECTION,
        "camunda:mapDecisionResult": "singleResult",
        "camunda:resultVariable": "DECISION_RESULT",
    }, inputs=[("DECISION_RESULT", "")], extra_ext="\n".join([
        f'<camunda:executionListener expression={quoteattr(_from_result("PRODUCTIONIZE_PROCESS", "process"))} event="end" />',
        f'<camunda:executionListener expression={quoteattr(_from_result("PRODUCTIONIZE_RULE", "rule"))} event="end" />',
        '<camunda:executionListener expression="${execution.removeVariableLocal(\'DECISION_RESULT\')}" event="end" />',
    ]), documentation=f"Evaluates {SELECTION} over BUSINESS_UNIT, RISK_TIER, FRAMEWORK and GOVERNANCE_LEVEL "
                      "into PRODUCTIONIZE_PROCESS and PRODUCTIONIZE_RULE; the decision's history keeps the "
                      "matched rule too.")
    p.gateway("gw_selected", "Process chosen?", 3, 0, label="top")
    p.external("task_scan", "Security scan", "scan", 4, 0,
               documentation="Scans the version's files for unsafe pickle content and its requirements for "
                             "unpinned or unknown packages: SCAN_PASSED, SCAN_FINDINGS, SCAN_SUMMARY, SCAN_RUN_ID.")
    p.gateway("gw_scan", "Scan passed?", 5, 0, label="top")
    p.gateway("gw_production", "Production gate met?", 6, 0, label="top")
    p.call("call_productionize", "Productionize", "${PRODUCTIONIZE_PROCESS}", 7, 0,
           documentation="Calls the process the decision chose (by key, latest version), passing every variable "
                         "and the business key both ways.")
    p.end("end_productionized", "Productionized", 8, 0)

    p.external("task_ticket_no_process", "Open error ticket: no process", "create-ticket", 3, 1, inputs=[
        ("TICKET_KIND", "error"),
        ("TICKET_REASON", f"${{'Decision {SELECTION} chose no process for '.concat(MODEL_ID).concat(' version ')"
                          ".concat(MODEL_VERSION)}"),
    ])
    p.external("task_ticket_scan", "Open rejection ticket: scan", "create-ticket", 5, 1, inputs=[
        ("TICKET_KIND", "rejection"),
        ("TICKET_REASON", "${'Security scan found problems: '.concat(SCAN_SUMMARY)}"),
    ])
    p.external("task_ticket_production", "Open rejection ticket: production gate", "create-ticket", 6, 1, inputs=[
        ("TICKET_KIND", "rejection"),
        ("TICKET_REASON", f"${{{var('HAS_MODEL_CARD')} != true ? 'governance_level production needs a model card "
                          "(version tag mlc.model_card or run artifact model_card.md) before deployment' : "
                          "'governance_level production needs a review, and '.concat(PRODUCTIONIZE_PROCESS)"
                          ".concat(' has none')}"),
    ])
    p.end("end_no_process", "No process", 4, 1)
    p.gateway("gw_rejected_join", "", 7, 1)
    p.end("end_rejected", "Rejected", 8, 1)

    failure_subprocess(p, 2.3, "'Productionize failed with '.concat(MLC_ERROR_CODE)",
                       documentation="Any BPMN error (model not found, scan job failed, ...) opens an error ticket.")

    production_ok = (f"${{{var('GOVERNANCE_LEVEL')} != 'production' or ({var('HAS_MODEL_CARD')} == true and "
                     f"PRODUCTIONIZE_PROCESS != '{MINIMAL}')}}")
    p.flow("flow_start", "start_submitted", "task_get_model")
    p.flow("flow_model_found", "task_get_model", "task_select_process", listeners=[BUSINESS_KEY])
    p.flow("flow_selected", "task_select_process", "gw_selected")
    p.flow("flow_process_chosen", "gw_selected", "task_scan", name="yes",
           condition=f"${{not empty {var('PRODUCTIONIZE_PROCESS')}}}")
    p.flow("flow_no_process", "gw_selected", "task_ticket_no_process", name="no", default=True)
    p.flow("flow_scanned", "task_scan", "gw_scan")
    p.flow("flow_scan_passed", "gw_scan", "gw_production", name="yes", condition="${SCAN_PASSED == true}")
    p.flow("flow_scan_failed", "gw_scan", "task_ticket_scan", name="no", default=True)
    p.flow("flow_production_ok", "gw_production", "call_productionize", name="yes", condition=production_ok)
    p.flow("flow_production_not_ok", "gw_production", "task_ticket_production", name="no", default=True)
    p.flow("flow_called", "call_productionize", "end_productionized")
    p.flow("flow_no_process_ticket_open", "task_ticket_no_process", "end_no_process")
    p.flow("flow_scan_ticket_open", "task_ticket_scan", "gw_rejected_join",
           route=[p.nodes["task_ticket_scan"].anchor("bottom"), (cx(5), cy(1.55)), (cx(7), cy(1.55)),
                  p.nodes["gw_rejected_join"].anchor("bottom")])
    p.flow("flow_production_ticket_open", "task_ticket_production", "gw_rejected_join")
    p.flow("flow_to_end_rejected", "gw_rejected_join", "end_rejected")
    return p


def productionize_minimal() -> Process:
    p = Process(
        MINIMAL, "MLC: productionize (minimal)",
        "For low-risk internal models: called by mlc-productionize (or started by key) with MODEL_ID and "
        "MODEL_VERSION. Runs the metrics test, evaluates the model's decision (tag dmn, default "
        "mlc-test-criteria, thresholds by RISK_TIER) and deploys; no review. A failed test or unmet criteria "
        "open a rejection ticket. Ends in end_deployed, end_rejected or end_failed.",
        "definitions_productionize_minimal",
    )
    p.start("start_productionize", "Productionize", 0, 0)
    p.external("task_get_model", "Get model", "get-model", 1, 0)
    p.external("task_run_test", "Run metrics test", "run-test", 2, 0)
    p.rule("task_evaluate_criteria", "Evaluate test criteria", 3, 0, **EVALUATE)
    p.gateway("gw_criteria", "Criteria met?", 4, 0, label="top")
    p.external("task_deploy", "Deploy model", "deploy", 5, 0)
    p.external("task_notify_deployed", "Notify deployed", "notify", 6, 0, inputs=[
        ("NOTIFY_LEVEL", "info"),
        ("NOTIFY_MESSAGE", "${'Model '.concat(MODEL_ID).concat(' version ').concat(MODEL_VERSION).concat(' deployed')"
                           f".concat(empty {var('DEPLOY_MODE')} ? '' : ' ('.concat(DEPLOY_MODE).concat(')'))"
                           ".concat(' without review')}"),
    ])
    p.end("end_deployed", "Deployed", 7, 0)

    p.boundary_error("error_test_data_missing", "Test data missing", "task_run_test", "MLC_MISSING_TEST_DATA", -30, label="left")
    p.boundary_error("error_test_job_failed", "Test job failed", "task_run_test", "MLC_JOB_FAILED", 30, label="right")
    p.gateway("gw_test_error_join", "", 2, 1)
    p.external("task_test_rejection_ticket", "Open rejection ticket: test", "create-ticket", 3, 1, inputs=[
        ("TICKET_KIND", "rejection"),
        ("TICKET_REASON", "${(MLC_ERROR_CODE == 'MLC_MISSING_TEST_DATA' ? 'Test data is missing' : "
                          f"'The metrics test job failed').concat{ERROR_DETAIL}}}"),
    ])
    p.external("task_ticket_criteria", "Open rejection ticket: criteria", "create-ticket", 4, 1, inputs=[
        ("TICKET_KIND", "rejection"),
        ("TICKET_REASON", "${'Test criteria not met: '.concat(" + REASON + ")}"),
    ])
    p.gateway("gw_rejected_join", "", 6, 1)
    p.end("end_rejected", "Rejected", 7, 1)

    failure_subprocess(p, 2.3, "'Minimal productionize failed with '.concat(MLC_ERROR_CODE)",
                       documentation="Any other BPMN error (model not found, no runtime, deploy failed, ...) opens "
                                     "an error ticket.")

    p.flow("flow_start", "start_productionize", "task_get_model")
    p.flow("flow_model_found", "task_get_model", "task_run_test", listeners=[BUSINESS_KEY])
    p.flow("flow_tested", "task_run_test", "task_evaluate_criteria")
    p.flow("flow_evaluated", "task_evaluate_criteria", "gw_criteria")
    p.flow("flow_criteria_met", "gw_criteria", "task_deploy", name="met", condition=PASSED)
    p.flow("flow_criteria_not_met", "gw_criteria", "task_ticket_criteria", name="not met", default=True)
    p.flow("flow_deployed", "task_deploy", "task_notify_deployed")
    p.flow("flow_notified", "task_notify_deployed", "end_deployed")
    a = p.nodes["error_test_data_missing"].anchor("bottom")
    b = p.nodes["error_test_job_failed"].anchor("bottom")
    g = p.nodes["gw_test_error_join"]
    t = p.nodes["task_test_rejection_ticket"]
    p.flow("flow_test_data_missing", "error_test_data_missing", "gw_test_error_join",
           route=[a, (a[0], cy(0.6)), (cx(1.6), cy(0.6)), (cx(1.6), g.y), g.anchor("left")])
    p.flow("flow_test_job_failed", "error_test_job_failed", "gw_test_error_join",
           route=[b, (b[0], cy(0.6)), (g.x, cy(0.6)), g.anchor("top")])
    p.flow("flow_to_test_ticket", "gw_test_error_join", "task_test_rejection_ticket")
    j = p.nodes["gw_rejected_join"]
    p.flow("flow_test_ticket_open", "task_test_rejection_ticket", "gw_rejected_join",
           route=[t.anchor("bottom"), (t.x, cy(1.55)), (j.x, cy(1.55)), j.anchor("bottom")])
    p.flow("flow_criteria_ticket_open", "task_ticket_criteria", "gw_rejected_join")
    p.flow("flow_to_end_rejected", "gw_rejected_join", "end_rejected")
    return p


PROCESSES = {
    "productionize.bpmn": productionize,
    "productionize_minimal.bpmn": productionize_minimal,
}
