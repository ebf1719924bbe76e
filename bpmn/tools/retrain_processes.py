"""Write bpmn/retrain.bpmn: mlc-retrain, champion/challenger retraining (docs/process-contract.md).

Collected by generate.py; run ``python bpmn/tools/generate.py`` after a change here.
"""

from __future__ import annotations

from bpmngen import Process, cy
from common import decision_task, failure_subprocess, review_by_ticket, var
from governance_processes import REVIEW_LISTENERS
from monitoring_processes import schedule_process


def outcome(value: str) -> str:
    """Take listener recording which end the run is heading for (read after the claim is released)."""
    return f"${{execution.setVariable('RETRAIN_OUTCOME', {value})}}"


CHALLENGER = "'challenger version '.concat(CHALLENGER_VERSION).concat(' of ').concat(MODEL_ID)"
DECISION_REASON = "RETRAIN_DECISION.prop('reason').stringValue()"
TO_DECISION = ("${execution.setVariable('RETRAIN_DECISION', JSON(RETRAIN_DECISION_RESULT != null ? "
               "RETRAIN_DECISION_RESULT : '{\"deploy\": false, \"reason\": \"decision '.concat(RETRAIN_DMN_KEY)"
               ".concat(' matched no rule\"}')))}")
CANARY_IN = ["MODEL_ID", "MODEL_VERSION", "MODEL_STAGE", "CANARY_WEIGHT", "CANARY_WINDOW", "CANARY_MAX_ERROR_RATE",
             "CANARY_MAX_P99_MS", "CANARY_MIN_ACCURACY", "CANARY_MIN_REQUESTS"]
CANARY_OUT = ["CANARY_OUTCOME", "CANARY_FIGURES", "DEPLOYMENT_ID"]
ENDS = [  # (RETRAIN_OUTCOME, end event, name); the default flow goes to end_canary_failed
    ("promoted", "end_promoted", "Promoted"),
    ("rolled-back", "end_rolled_back", "Rolled back"),
    ("not-improved", "end_not_improved", "Not improved"),
    ("rejected", "end_rejected", "Rejected"),
    ("invalid-data", "end_invalid_data", "Invalid data"),
]


def retrain() -> Process:
    p = Process(
        "mlc-retrain", "MLC: retrain",
        "Started by signal mlc.retrain with MODEL_ID, optional TRAINING_DATA, RETRAIN_TRIGGER and "
        "IMPROVEMENT_MARGIN. Claims the model (one retrain per model: a second trigger ends in end_refused), "
        "validates the new data, trains the challenger as a job it polls with a timer, compares champion and "
        "challenger on the same holdout, decides with mlc-retrain-decision, asks for approval (a ticket when the "
        "model is tagged governance_level=production, else a user task for mlc-reviewers) and rolls the "
        "challenger out with mlc-canary-rollout. Every path after the claim releases it.",
        "definitions_retrain",
    )
    # main line (row 0)
    p.signal_start("start_retrain", "Retrain requested", "mlc.retrain", 0, 0)
    p.external("task_claim", "Claim model for retrain", "retrain-claim", 1, 0,
               documentation="Resolves the champion (MODEL_ID as given, else alias champion, else the latest "
                             "version) and takes the model's retrain claim; RETRAIN_CLAIMED false when another "
                             "retrain (RETRAIN_HOLDER) is running.")
    p.gateway("gw_claimed", "Claimed?", 2, 0, label="bottom")
    p.external("task_validate", "Validate training data", "validate-data", 3, 0)
    p.gateway("gw_valid", "Data valid?", 4, 0, label="top")
    p.external("task_submit", "Submit training job", "train-submit", 5, 0,
               documentation="Starts the training job as a detached process (once per task); writes TRAIN_JOB_ID.")
    p.gateway("gw_poll_join", "", 6, 0)
    p.timer_catch("timer_job", "Wait for the job", 7, 0, label="bottom",
                  duration=f"${{{var('TRAIN_POLL_INTERVAL')} != null ? TRAIN_POLL_INTERVAL : 'PT10S'}}")
    p.external("task_job_status", "Check training job", "train-status", 8, 0,
               documentation="Reads the job's state; a failed or crashed job is the BPMN error MLC_JOB_FAILED.")
    p.gateway("gw_job_done", "Job done?", 9, 0, label="bottom")
    p.external("task_compare", "Compare champion and challenger", "compare", 10, 0)
    p.rule("task_decide", "Decide on improvement", 11, 0, **decision_task(
           "${RETRAIN_DMN_KEY}", [TO_DECISION], result="RETRAIN_DECISION_RESULT",
           inputs=[("IMPROVEMENT_MARGIN", f"${{{var('IMPROVEMENT_MARGIN')} != null ? IMPROVEMENT_MARGIN : 0.01}}")],
           documentation="Evaluates RETRAIN_DMN_KEY (tag retrain_dmn, default mlc-retrain-decision) on "
                         "COMPARE_IMPROVEMENT, COMPARE_GUARD_LOSSES and IMPROVEMENT_MARGIN (default 0.01) into "
                         "RETRAIN_DECISION, a JSON object {deploy, reason}."))
    p.gateway("gw_deploy", "Deploy?", 12, 0, label="top")
    p.gateway("gw_review_kind", "Review by ticket?", 13, 0, label="bottom")
    p.user("task_review", "Approve challenger", 15.5, 0, attrs={"camunda:candidateGroups": "mlc-reviewers"},
           extra_ext="\n".join([
               REVIEW_LISTENERS,
               "<camunda:formData>",
               '  <camunda:formField id="approved" label="Roll out the challenger" type="boolean" />',
               '  <camunda:formField id="review_comment" label="Comment" type="string" />',
               "</camunda:formData>",
           ]),
           documentation="Approve or reject the canary rollout of CHALLENGER_VERSION of MODEL_ID after reading "
                         "COMPARE_RESULTS and RETRAIN_DECISION. Complete with approved (boolean) and optional "
                         "review_comment; like the deploy review it records APPROVED_BY and, when "
                         "SEPARATION_OF_DUTIES is on, refuses SUBMITTED_BY.")
    p.gateway("gw_review_done_join", "", 18, 0)
    p.gateway("gw_approved", "Approved?", 19, 0, label="top")
    p.call("call_canary", "Canary rollout", "mlc-canary-rollout", 20, 0, ins=CANARY_IN, outs=CANARY_OUT,
           documentation="mlc-canary-rollout with MODEL_VERSION = the challenger; returns CANARY_OUTCOME.")
    p.gateway("gw_finish_join", "", 21, 0)
    p.external("task_release", "Release claim", "retrain-release", 22, 0)
    p.gateway("gw_outcome", "Outcome?", 23, 0, label="bottom")
    for i, (_, end_id, name) in enumerate(ENDS):
        p.end(end_id, name, 24, -1.5 + 0.75 * i, label="right")
    p.end("end_canary_failed", "Canary failed", 24, 2.25, label="right")

    # refused (row -1)
    p.external("task_notify_refused", "Notify refused", "notify", 3, -1, inputs=[
        ("NOTIFY_LEVEL", "warning"),
        ("NOTIFY_MESSAGE", "${'Retrain of '.concat(MODEL_ID).concat(' refused: retrain ').concat(RETRAIN_HOLDER)"
                           ".concat(' is still running')}"),
    ])
    p.end("end_refused", "Refused", 4, -1, label="right")

    # approval by ticket (row -1)
    review_by_ticket(p, 14, f"${{'Approve the canary rollout of '.concat({CHALLENGER}).concat(': ')"
                            f".concat({DECISION_REASON})}}", then="gw_review_done_join")

    # paths that end early (row 1)
    p.external("task_ticket_invalid", "Open ticket: invalid data", "create-ticket", 5, 1, inputs=[
        ("TICKET_KIND", "rejection"),
        ("TICKET_REASON", "${'Training data for '.concat(MODEL_ID).concat(' rejected: ').concat(DATA_PROBLEMS)}"),
    ])
    p.external("task_notify_not_improved", "Notify not improved", "notify", 13, 1, inputs=[
        ("NOTIFY_LEVEL", "info"),
        ("NOTIFY_MESSAGE", f"${{{CHALLENGER}.concat(' not deployed: ').concat({DECISION_REASON})}}"),
    ])
    p.external("task_notify_rejected", "Notify rejected", "notify", 20, 1, inputs=[
        ("NOTIFY_LEVEL", "info"),
        ("NOTIFY_MESSAGE", f"${{{CHALLENGER}.concat(' rejected in review')"
                           f".concat(empty {var('review_comment')} ? '' : ': '.concat(review_comment))}}"),
    ])

    # flows: main line
    p.flow("flow_start", "start_retrain", "task_claim")
    p.flow("flow_to_claimed", "task_claim", "gw_claimed")
    p.flow("flow_claimed", "gw_claimed", "task_validate", name="yes", condition=f"${{{var('RETRAIN_CLAIMED')} == true}}",
           listeners=["${execution.setProcessBusinessKey(MODEL_ID.concat(':').concat(''.concat(CHAMPION_VERSION)))}"])
    p.flow("flow_refused", "gw_claimed", "task_notify_refused", name="no", default=True,
           listeners=[outcome("'refused'")])
    p.flow("flow_refused_notified", "task_notify_refused", "end_refused")
    p.flow("flow_validated", "task_validate", "gw_valid")
    p.flow("flow_valid", "gw_valid", "task_submit", name="yes", condition=f"${{{var('DATA_VALID')} == true}}")
    p.flow("flow_invalid", "gw_valid", "task_ticket_invalid", name="no", default=True)
    p.flow("flow_submitted", "task_submit", "gw_poll_join")
    p.flow("flow_to_wait", "gw_poll_join", "timer_job")
    p.flow("flow_waited", "timer_job", "task_job_status")
    p.flow("flow_to_job_done", "task_job_status", "gw_job_done")
    p.flow("flow_job_succeeded", "gw_job_done", "task_compare", name="succeeded",
           condition=f"${{{var('TRAIN_JOB_STATE')} == 'succeeded'}}")
    p.flow("flow_job_running", "gw_job_done", "gw_poll_join", name="running", default=True,
           route=p.lane("gw_job_done", "gw_poll_join", cy(-0.55), "top", "top"))
    p.flow("flow_compared", "task_compare", "task_decide")
    p.flow("flow_decided", "task_decide", "gw_deploy")
    p.flow("flow_deploy", "gw_deploy", "gw_review_kind", name="yes", condition="${RETRAIN_DECISION.prop('deploy').boolValue()}")
    p.flow("flow_not_improved", "gw_deploy", "task_notify_not_improved", name="no", default=True)
    p.flow("flow_review_in_tasklist", "gw_review_kind", "task_review", name="no", default=True)
    p.flow("flow_review_in_ticket", "gw_review_kind", "task_review_ticket", name="yes",
           condition=f"${{{var('REVIEW_IN_TICKET')} == true}}")
    p.flow("flow_reviewed", "task_review", "gw_review_done_join")
    p.flow("flow_to_approved", "gw_review_done_join", "gw_approved")
    p.flow("flow_approved", "gw_approved", "call_canary", name="yes", condition=f"${{{var('approved')} == true}}")
    p.flow("flow_not_approved", "gw_approved", "task_notify_rejected", name="no", default=True)
    p.flow("flow_rolled_out", "call_canary", "gw_finish_join", listeners=[outcome(var("CANARY_OUTCOME"))])
    join = p.nodes["gw_finish_join"].anchor("bottom")
    for flow_id, task, value in (("flow_invalid_ticket_open", "task_ticket_invalid", "'invalid-data'"),
                                 ("flow_not_improved_notified", "task_notify_not_improved", "'not-improved'"),
                                 ("flow_rejected_notified", "task_notify_rejected", "'rejected'")):
        t = p.nodes[task].anchor("bottom")
        p.flow(flow_id, task, "gw_finish_join", listeners=[outcome(value)],
               route=[t, (t[0], cy(1.6)), (join[0], cy(1.6)), join])
    p.flow("flow_to_release", "gw_finish_join", "task_release")
    p.flow("flow_released", "task_release", "gw_outcome")
    for value, end_id, _ in ENDS:
        p.flow(f"flow_{end_id}", "gw_outcome", end_id, name=value, condition=f"${{RETRAIN_OUTCOME == '{value}'}}")
    p.flow("flow_end_canary_failed", "gw_outcome", "end_canary_failed", name="other", default=True)
    # any BPMN error: error ticket, release, end
    failure_subprocess(p, 3, f"'Retrain of '.concat({var('MODEL_ID')}).concat(' failed with ').concat(MLC_ERROR_CODE)",
                       width=4, task_col=1.5, start_listeners=[outcome("'failed'")],
                       then=("task_release_failed", "Release claim", "retrain-release", 2.8, "flow_failure_released"),
                       documentation="Any BPMN error (model not found, training job failed or crashed, compare "
                                     "failed, canary failed) opens an error ticket, releases the claim and ends.")
    return p


def retrain_schedule() -> Process:
    return schedule_process(
        "mlc-retrain-schedule", "MLC: retrain schedule",
        "One waiting instance per model retrained on a schedule (business key: the model name), started by "
        "mlc retrain MODEL --every/--cron with MODEL_ID, RETRAIN_SCHEDULE (an ISO-8601 repeating interval such as "
        "R/P7D, or a cron expression with seconds) and an optional TRAINING_DATA. Its timer, visible in Cockpit, "
        "throws mlc.retrain with MODEL_ID, MODEL_VERSION, TRAINING_DATA, IMPROVEMENT_MARGIN and RETRAIN_TRIGGER=schedule each time it fires (a "
        "retrain still running then refuses the new one). mlc retrain MODEL --unschedule (or a new schedule of "
        "the model) sends mlc.retrain-unschedule, which ends it in end_unscheduled.",
        "definitions_retrain_schedule",
        what="retrain", signal="mlc.retrain", unschedule_message="mlc.retrain-unschedule",
        timer_variable="RETRAIN_SCHEDULE",
        inputs=["MODEL_ID", "MODEL_VERSION", "TRAINING_DATA", "IMPROVEMENT_MARGIN", "RETRAIN_TRIGGER"],
    )


PROCESSES = {"retrain.bpmn": retrain, "retrain_schedule.bpmn": retrain_schedule}
