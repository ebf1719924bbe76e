"""Write bpmn/*.bpmn for the three MLC processes (see docs/process-contract.md).

Run ``python bpmn/tools/generate.py`` after changing a process here; commit the regenerated files.
The .bpmn files are the source of truth for the engine and for Camunda Modeler: an edit made in
Modeler is fine too, as long as this script is updated or retired with it.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bpmngen import Process, cx, cy  # noqa: E402
from common import (  # noqa: E402
    BUSINESS_KEY,
    ERROR_DETAIL,
    EVALUATE,
    PASSED,
    REASON,
    failure_subprocess,
    review_by_ticket,
    var,
)

BPMN_DIR = Path(__file__).resolve().parent.parent

def deploy_with_test() -> Process:
    p = Process(
        "mlc-deploy-with-test", "MLC: deploy with test",
        "Called by mlc-productionize when the decision mlc-process-selection picks it (or started by key) with "
        "MODEL_ID and MODEL_VERSION. "
        "Optionally trains (tag train), runs the metrics test (tag run_test) and evaluates the model's decision "
        "(tag dmn, default mlc-test-criteria), asks for a review (a Jira ticket when tag jira, a ServiceNow ticket "
        "when tag servicenow, else a user task for mlc-reviewers that records APPROVED_BY and refuses the "
        "submitter when SEPARATION_OF_DUTIES is on) and deploys to a compatible runtime. Ends in end_deployed, "
        "end_rejected or end_failed.",
        "definitions_deploy_with_test",
    )
    # main line
    from governance_processes import REVIEW_LISTENERS

    p.start("start_submitted", "Productionize", 0, 0)
    p.external("task_get_model", "Get model", "get-model", 1, 0)
    p.gateway("gw_train", "Train?", 2, 0, label="top")
    p.external("task_train", "Train model", "train", 3, 0)
    p.gateway("gw_train_join", "", 4, 0)
    p.gateway("gw_run_test", "Run test?", 5, 0, label="top")
    p.gateway("gw_retest_join", "", 6, 0)
    p.external("task_run_test", "Run metrics test", "run-test", 7, 0)
    p.rule("task_evaluate_criteria", "Evaluate test criteria", 8, 0, **EVALUATE)
    p.gateway("gw_criteria", "Criteria met?", 9, 0, label="top")
    p.gateway("gw_review_join", "", 10, 0)
    p.gateway("gw_jira", "Review by ticket?", 11, 0, label="bottom")
    p.user("task_review", "Review model", 12, 0, attrs={"camunda:candidateGroups": "mlc-reviewers"},
           extra_ext="\n".join([
               REVIEW_LISTENERS,
               "<camunda:formData>",
               '  <camunda:formField id="approved" label="Approve deployment" type="boolean" />',
               '  <camunda:formField id="review_comment" label="Comment" type="string" />',
               "</camunda:formData>",
           ]),
           documentation="Approve or reject the deployment of MODEL_ID version MODEL_VERSION after reading "
                         "TEST_METRICS and TEST_VERDICT. Complete with approved (boolean) and optional review_comment.")
    p.gateway("gw_review_done_join", "", 16, 0)
    p.gateway("gw_approved", "Approved?", 17, 0, label="top")
    p.external("task_deploy", "Deploy model", "deploy", 18, 0)
    p.external("task_notify_deployed", "Notify deployed", "notify", 19, 0, inputs=[
        ("NOTIFY_LEVEL", "info"),
        ("NOTIFY_MESSAGE", "${'Model '.concat(MODEL_ID).concat(' version ').concat(MODEL_VERSION).concat(' deployed')"
                           f".concat(empty {var('DEPLOY_MODE')} ? '' : ' ('.concat(DEPLOY_MODE).concat(')'))}}"),
    ])
    p.end("end_deployed", "Deployed", 20, 0)

    # review in Jira or ServiceNow (row -1)
    review_by_ticket(p, 12, "${'Review model '.concat(MODEL_ID).concat(' version ').concat(MODEL_VERSION)"
                            ".concat(' for deployment')}", then="gw_review_done_join")

    # rejections (rows 1-3)
    p.external("task_ticket_criteria", "Open rejection ticket: criteria", "create-ticket", 9, 1, inputs=[
        ("TICKET_KIND", "rejection"),
        ("TICKET_REASON", "${'Test criteria not met: '.concat(" + REASON + ")}"),
    ])
    p.external("task_ticket_review_rejected", "Open rejection ticket: review", "create-ticket", 17, 1, inputs=[
        ("TICKET_KIND", "rejection"),
        ("TICKET_REASON", f"${{empty {var('review_comment')} ? 'The review rejected the model' : "
                          f"'The review rejected the model: '.concat({var('review_comment')})}}"),
    ])
    p.boundary_error("error_test_data_missing", "Test data missing", "task_run_test", "MLC_MISSING_TEST_DATA", -30, label="left")
    p.boundary_error("error_test_job_failed", "Test job failed", "task_run_test", "MLC_JOB_FAILED", 30, label="right")
    p.gateway("gw_test_error_join", "", 8, 2)
    p.external("task_test_rejection_ticket", "Open rejection ticket: test", "create-ticket", 9, 2, inputs=[
        ("TICKET_KIND", "rejection"),
        ("TICKET_REASON", "${(MLC_ERROR_CODE == 'MLC_MISSING_TEST_DATA' ? 'Test data is missing' : "
                          f"'The metrics test job failed').concat{ERROR_DETAIL}}}"),
    ])
    p.gateway("gw_test_wait_join", "", 10, 2)
    p.message_catch("catch_test_ticket_updated", "Test ticket updated", "mlc.ticket-updated", 11, 2, label="top")
    p.gateway("gw_test_ticket_state", "Ticket state?", 12, 2, label="left")
    p.gateway("gw_end_rejected_join", "", 19, 3)
    p.end("end_rejected", "Rejected", 20, 3)

    # flows: main line
    p.flow("flow_start", "start_submitted", "task_get_model")
    p.flow("flow_model_found", "task_get_model", "gw_train", listeners=[BUSINESS_KEY])
    p.flow("flow_train_yes", "gw_train", "task_train", name="yes", condition=f"${{{var('TRAIN')} == true}}")
    p.flow("flow_train_no", "gw_train", "gw_train_join", name="no", default=True,
           route=p.lane("gw_train", "gw_train_join", cy(-0.55), "top", "top"))
    p.flow("flow_trained", "task_train", "gw_train_join")
    p.flow("flow_to_run_test", "gw_train_join", "gw_run_test")
    p.flow("flow_run_test_yes", "gw_run_test", "gw_retest_join", name="yes", condition=f"${{{var('RUN_TEST')} == true}}")
    p.flow("flow_run_test_no", "gw_run_test", "gw_review_join", name="no", default=True,
           route=p.lane("gw_run_test", "gw_review_join", cy(-0.55), "top", "top"))
    p.flow("flow_to_test", "gw_retest_join", "task_run_test")
    p.flow("flow_tested", "task_run_test", "task_evaluate_criteria")
    p.flow("flow_evaluated", "task_evaluate_criteria", "gw_criteria")
    p.flow("flow_criteria_met", "gw_criteria", "gw_review_join", name="met", condition=PASSED)
    p.flow("flow_criteria_not_met", "gw_criteria", "task_ticket_criteria", name="not met", default=True,
           exit="bottom", enter="top")
    p.flow("flow_to_review", "gw_review_join", "gw_jira")
    p.flow("flow_review_in_tasklist", "gw_jira", "task_review", name="no", default=True)
    p.flow("flow_review_in_jira", "gw_jira", "task_review_ticket", name="yes",
           condition=f"${{{var('JIRA')} == true or {var('SERVICENOW')} == true}}",
           exit="top", enter="left")
    p.flow("flow_reviewed", "task_review", "gw_review_done_join")
    p.flow("flow_to_approved", "gw_review_done_join", "gw_approved")
    p.flow("flow_approved", "gw_approved", "task_deploy", name="yes", condition=f"${{{var('approved')} == true}}")
    p.flow("flow_not_approved", "gw_approved", "task_ticket_review_rejected", name="no", default=True,
           exit="bottom", enter="top")
    p.flow("flow_deployed", "task_deploy", "task_notify_deployed")
    p.flow("flow_notified", "task_notify_deployed", "end_deployed")
    # test rejection loop
    A = p.nodes["error_test_data_missing"].anchor("bottom")
    B = p.nodes["error_test_job_failed"].anchor("bottom")
    p.flow("flow_test_data_missing", "error_test_data_missing", "gw_test_error_join",
           route=[A, (A[0], cy(2)), p.nodes["gw_test_error_join"].anchor("left")])
    p.flow("flow_test_job_failed", "error_test_job_failed", "gw_test_error_join",
           route=[B, (B[0], cy(1.55)), (cx(8), cy(1.55)), p.nodes["gw_test_error_join"].anchor("top")])
    p.flow("flow_to_test_ticket", "gw_test_error_join", "task_test_rejection_ticket")
    p.flow("flow_test_ticket_open", "task_test_rejection_ticket", "gw_test_wait_join")
    p.flow("flow_wait_test_ticket", "gw_test_wait_join", "catch_test_ticket_updated")
    p.flow("flow_test_ticket_updated", "catch_test_ticket_updated", "gw_test_ticket_state")
    p.flow("flow_test_ticket_done", "gw_test_ticket_state", "gw_retest_join", name="Done: test again",
           condition=f"${{{var('TICKET_STATE')} == 'Done'}}",
           route=p.lane("gw_test_ticket_state", "gw_retest_join", cy(2.6), "bottom", "bottom"))
    p.flow("flow_test_ticket_open_still", "gw_test_ticket_state", "gw_test_wait_join", name="other", default=True,
           route=p.lane("gw_test_ticket_state", "gw_test_wait_join", cy(1.55), "top", "top"))
    g = p.nodes["gw_test_ticket_state"].anchor("right")
    j = p.nodes["gw_end_rejected_join"]
    p.flow("flow_test_ticket_rejected", "gw_test_ticket_state", "gw_end_rejected_join", name="Rejected",
           condition=f"${{{var('TICKET_STATE')} == 'Rejected'}}",
           route=[g, (cx(13), g[1]), (cx(13), cy(3.5)), (j.x, cy(3.5)), j.anchor("bottom")])
    t = p.nodes["task_ticket_criteria"].anchor("right")
    p.flow("flow_criteria_ticket_open", "task_ticket_criteria", "gw_end_rejected_join",
           route=[t, (cx(16), t[1]), (cx(16), j.y), j.anchor("left")])
    t = p.nodes["task_ticket_review_rejected"].anchor("right")
    p.flow("flow_review_rejection_ticket_open", "task_ticket_review_rejected", "gw_end_rejected_join",
           route=[t, (j.x, t[1]), j.anchor("top")])
    p.flow("flow_to_end_rejected", "gw_end_rejected_join", "end_rejected")
    # any other BPMN error: error ticket
    failure_subprocess(p, 3, "'Deploy with test failed with '.concat(MLC_ERROR_CODE)",
                       documentation="Any BPMN error no boundary event catches (model not found, training failed, "
                                     "no runtime, deploy failed, ...) opens an error ticket and ends the process.")
    return p


def run_back_test() -> Process:
    p = Process(
        "mlc-run-back-test", "MLC: run back test",
        "Started by signal mlc.run-back-test with MODEL_ID, optional MODEL_VERSION, INPUT_FILE, OUTPUT_FILE and "
        "TICKET_SYSTEM. Tests the model on INPUT_FILE (else its TEST_DATA asset) and evaluates its decision. "
        "Ends in end_passed (notification), end_failed (ticket with the failing results), end_rejected (no test "
        "data), end_job_failed (review ticket with the exception) or end_error (notification with the reason).",
        "definitions_run_back_test",
    )
    p.signal_start("start_run_back_test", "Back test requested", "mlc.run-back-test", 0, 0)
    p.external("task_get_model", "Get model", "get-model", 1, 0)
    p.gateway("gw_input", "Test data?", 2, 0, label="top")
    p.external("task_run_test", "Run metrics test", "run-test", 3, 0)
    p.gateway("gw_decision", "Decision?", 4, 0, label="bottom")
    p.rule("task_evaluate_criteria", "Evaluate test criteria", 5, 0, **EVALUATE)
    p.gateway("gw_criteria", "Criteria met?", 6, 0, label="top")
    p.gateway("gw_passed_join", "", 7, 0)
    p.external("task_notify_passed", "Notify passed", "notify", 8, 0, inputs=[
        ("NOTIFY_LEVEL", "info"),
        ("NOTIFY_MESSAGE", "${'Back test of '.concat(MODEL_ID).concat(' version ').concat(MODEL_VERSION).concat(' passed')"
                           f".concat({var('TEST_VERDICT')} == null ? '' : ': '.concat({REASON}))}}"),
    ])
    p.end("end_passed", "Passed", 9, 0)

    p.boundary_error("error_test_data_missing", "Test data missing", "task_run_test", "MLC_MISSING_TEST_DATA", -30, label="left")
    p.boundary_error("error_test_job_failed", "Test job failed", "task_run_test", "MLC_JOB_FAILED", 30, label="right")
    p.external("task_ticket_job_failed", "Open review ticket: job failed", "create-ticket", 4, 1, inputs=[
        ("TICKET_KIND", "review"),
        ("TICKET_REASON", f"${{'The back test job failed'.concat{ERROR_DETAIL}}}"),
    ])
    p.end("end_job_failed", "Job failed", 5.2, 1)
    p.external("task_ticket_failed", "Open ticket: criteria not met", "create-ticket", 6, 1, inputs=[
        ("TICKET_KIND", "rejection"),
        ("TICKET_REASON", "${'Back test criteria not met: '.concat(" + REASON + ")}"),
    ])
    p.end("end_failed", "Failed", 9, 1)
    p.gateway("gw_no_data_join", "", 4, 2)
    p.external("task_ticket_no_data", "Open rejection ticket: no test data", "create-ticket", 5, 2, inputs=[
        ("TICKET_KIND", "rejection"),
        ("TICKET_REASON", f"${{empty {var('MLC_ERROR_MESSAGE')} ? 'No test data: give INPUT_FILE or register a "
                          "TEST_DATA asset' : 'Test data is missing: '.concat(MLC_ERROR_MESSAGE)}"),
    ])
    p.end("end_rejected", "Rejected", 6.2, 2)

    p.flow("flow_start", "start_run_back_test", "task_get_model")
    p.flow("flow_model_found", "task_get_model", "gw_input", listeners=[BUSINESS_KEY])
    p.flow("flow_input_available", "gw_input", "task_run_test", name="yes",
           condition=f"${{not empty {var('INPUT_FILE')} or {var('HAS_TEST_DATA')} == true}}")
    p.flow("flow_input_missing", "gw_input", "gw_no_data_join", name="no", default=True)
    p.flow("flow_tested", "task_run_test", "gw_decision")
    p.flow("flow_decision_yes", "gw_decision", "task_evaluate_criteria", name="yes",
           condition=f"${{not empty {var('DMN_KEY')}}}")
    p.flow("flow_decision_no", "gw_decision", "gw_passed_join", name="no", default=True,
           route=p.lane("gw_decision", "gw_passed_join", cy(-0.55), "top", "top"))
    p.flow("flow_evaluated", "task_evaluate_criteria", "gw_criteria")
    p.flow("flow_criteria_met", "gw_criteria", "gw_passed_join", name="met", condition=PASSED)
    p.flow("flow_criteria_not_met", "gw_criteria", "task_ticket_failed", name="not met", default=True,
           exit="bottom", enter="top")
    p.flow("flow_to_notify", "gw_passed_join", "task_notify_passed")
    p.flow("flow_notified", "task_notify_passed", "end_passed")
    p.flow("flow_failed_ticket_open", "task_ticket_failed", "end_failed")
    A = p.nodes["error_test_data_missing"].anchor("bottom")
    B = p.nodes["error_test_job_failed"].anchor("bottom")
    j = p.nodes["gw_no_data_join"]
    p.flow("flow_test_data_missing", "error_test_data_missing", "gw_no_data_join",
           route=[A, (A[0], cy(1.55)), (j.x, cy(1.55)), j.anchor("top")])
    t = p.nodes["task_ticket_job_failed"].anchor("left")
    p.flow("flow_test_job_failed", "error_test_job_failed", "task_ticket_job_failed", route=[B, (B[0], t[1]), t])
    p.flow("flow_job_ticket_open", "task_ticket_job_failed", "end_job_failed")
    p.flow("flow_to_no_data_ticket", "gw_no_data_join", "task_ticket_no_data")
    p.flow("flow_no_data_ticket_open", "task_ticket_no_data", "end_rejected")
    # the default flow out of gw_input runs down to row 2 and right into the join
    f = next(f for f in p.flows if f.id == "flow_input_missing")
    g = p.nodes["gw_input"].anchor("bottom")
    f.waypoints = [g, (g[0], j.y), j.anchor("left")]
    failure_subprocess(p, 3.2, f"'Back test of '.concat({var('MODEL_ID')}).concat(' failed with ').concat(MLC_ERROR_CODE)",
                       notify=True, end="end_error",
                       documentation="Any other BPMN error (model not found, ...) ends in a notification with the reason.")
    return p


def run_batch_job() -> Process:
    p = Process(
        "mlc-run-batch-job", "MLC: run batch model job",
        "Started by signal mlc.deployed-batch-job with TAG, optional MODEL_STAGE, INPUT_FILE and OUTPUT_FILE. "
        "Finds the most recent batch deployment for the tag (and stage), scores INPUT_FILE into OUTPUT_FILE and "
        "notifies. Any unmet condition (no batch deployment, no input, job failure) opens an error ticket. "
        "Ends in end_scored or end_failed.",
        "definitions_run_batch_job",
    )
    p.signal_start("start_batch_job", "Batch job requested", "mlc.deployed-batch-job", 0, 0)
    p.external("task_find_deployment", "Find batch deployment", "get-model", 1, 0,
               inputs=[("LOOKUP", "batch-deployment")],
               documentation="get-model with LOOKUP=batch-deployment: the most recent batch deployment in deployed "
                             "state for TAG (and MODEL_STAGE); writes MODEL_ID, MODEL_VERSION, DEPLOYMENT_ID, RUNTIME_NAME.")
    p.external("task_score", "Score input", "score", 2, 0)
    p.external("task_notify_scored", "Notify scored", "notify", 3, 0, inputs=[
        ("NOTIFY_LEVEL", "info"),
        ("NOTIFY_MESSAGE", f"${{'Batch job for tag '.concat({var('TAG')}).concat(' scored ').concat({var('ROWS_SCORED')})"
                           ".concat(' rows with ').concat(MODEL_ID).concat(' version ').concat(MODEL_VERSION)"
                           f".concat(empty {var('OUTPUT_FILE')} ? '' : ' into '.concat(OUTPUT_FILE))}}"),
    ])
    p.end("end_scored", "Scored", 4, 0)

    p.flow("flow_start", "start_batch_job", "task_find_deployment")
    p.flow("flow_deployment_found", "task_find_deployment", "task_score", listeners=[BUSINESS_KEY])
    p.flow("flow_scored", "task_score", "task_notify_scored")
    p.flow("flow_notified", "task_notify_scored", "end_scored")
    failure_subprocess(p, 1.5, f"'Batch job for tag '.concat({var('TAG')}).concat(' failed with ').concat(MLC_ERROR_CODE)",
                       documentation="No batch deployment, no runtime, missing input or a failed job: error ticket.")
    return p


PROCESSES = {
    "deploy_with_test.bpmn": deploy_with_test,
    "run_back_test.bpmn": run_back_test,
    "run_batch_job.bpmn": run_batch_job,
}

# Processes of later features live in their own modules beside this one (``*_processes.py``, each
# with a PROCESSES mapping of the same shape), so that features do not edit one file.
for _module in sorted(Path(__file__).resolve().parent.glob("*_processes.py")):
    PROCESSES.update(__import__(_module.stem).PROCESSES)


def main() -> None:
    for filename, build in PROCESSES.items():
        path = BPMN_DIR / filename
        path.write_text(build().to_xml(), encoding="utf-8")
        print(path)


if __name__ == "__main__":
    main()
