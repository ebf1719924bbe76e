"""The canary rollout process (bpmn/canary_rollout.bpmn), collected by generate.py."""

from __future__ import annotations

from bpmngen import Process
from common import BUSINESS_KEY, decision_task, failure_subprocess, var

DECISION = "mlc-canary-slo"

# As in generate.EVALUATE: the decision's single result lands in a local variable, end listeners
# copy it to CANARY_VERDICT as a Spin JSON object {promote, reason}, then drop the local. A
# decision that matches no rule rolls back: a canary is promoted only on a clear yes.
TO_VERDICT = ("${execution.setVariable('CANARY_VERDICT', JSON(DECISION_RESULT != null ? DECISION_RESULT : "
              f"'{{\"promote\": false, \"reason\": \"decision {DECISION} matched no rule\"}}'))}}")
PROMOTE = "${CANARY_VERDICT.prop('promote').boolValue()}"


def canary_rollout() -> Process:
    p = Process(
        "mlc-canary-rollout", "MLC: canary rollout",
        "Started by key or by a call activity (mlc-retrain) with MODEL_ID and MODEL_VERSION, the candidate. "
        "Deploys it beside the serving version with CANARY_WEIGHT percent of the traffic (default 10), reads "
        "its live figures on the runtime at the start and at the end of CANARY_WINDOW (default PT10M), and "
        f"lets the decision {DECISION} judge them against the SLO. Promotes (deployment to 100 %, alias "
        "champion to the candidate, old champion tagged mlc.retired) or rolls back with a ticket quoting "
        "the figures. Ends in end_promoted, end_rolled_back or end_failed; CANARY_OUTCOME says which.",
        "definitions_canary_rollout",
    )
    p.start("start_canary", "Canary requested", 0, 0)
    p.external("task_get_model", "Get model", "get-model", 1, 0)
    p.external("task_prepare", "Check canary settings", "canary-prepare", 2, 0,
               documentation="Checks CANARY_WINDOW and the SLO overrides before anything is deployed, and sets "
                             "MODEL_STAGE (when not given) to the stage the model serves in, so the canary lands "
                             "beside the serving version.")
    p.external("task_deploy_canary", "Deploy canary", "deploy", 3, 0, inputs=[
        ("TRAFFIC_WEIGHT", f"${{empty {var('CANARY_WEIGHT')} ? 10 : CANARY_WEIGHT}}"),
    ], documentation="The deploy topic with TRAFFIC_WEIGHT = CANARY_WEIGHT (default 10): the candidate "
                     "serves beside the versions already deployed on the runtime.")
    p.external("task_baseline", "Read baseline figures", "canary-baseline", 4, 0,
               documentation="Reads the candidate's live counters on every endpoint of its runtime "
                             "(CANARY_BASELINE), right after the canary deploy.")
    p.timer_catch("timer_window", "Canary window over", 5, 0, duration="${CANARY_WINDOW}")
    p.external("task_figures", "Read live figures", "canary-figures", 6, 0,
               documentation="Requests, error rate and latency p99 since the baseline (runtime Prometheus "
                             "metrics) and accuracy on feedback labels when there are any: CANARY_FIGURES.")
    p.rule("task_judge", "Judge canary against SLO", 7, 0, **decision_task(
        DECISION, [TO_VERDICT], f"Evaluates {DECISION} into CANARY_VERDICT, a JSON object {{promote, reason}}. Runs "
                                "asynchronously: a broken decision is an incident on this task."))
    p.gateway("gw_promote", "Within SLO?", 8, 0, label="top")
    p.external("task_promote", "Promote canary", "canary-promote", 9, 0)
    p.external("task_notify_promoted", "Notify promoted", "notify", 10, 0, inputs=[
        ("NOTIFY_LEVEL", "info"),
        ("NOTIFY_MESSAGE", "${'Canary of '.concat(MODEL_ID).concat(' version ').concat(MODEL_VERSION)"
                           ".concat(' promoted to champion: ').concat(CANARY_VERDICT.prop('reason').stringValue())"
                           f".concat(empty {var('RETIRED_VERSION')} ? '' : '; version '.concat(RETIRED_VERSION)"
                           ".concat(' retired'))}"),
    ])
    p.end("end_promoted", "Promoted", 11, 0)

    p.external("task_rollback", "Roll back canary", "canary-rollback", 9, 1)
    p.external("task_rollback_ticket", "Open rollback ticket", "create-ticket", 10, 1, inputs=[
        ("TICKET_KIND", "rollback"),
        ("TICKET_REASON", "${CANARY_REASON}"),
    ])
    p.end("end_rolled_back", "Rolled back", 11, 1)

    p.flow("flow_start", "start_canary", "task_get_model")
    p.flow("flow_model_found", "task_get_model", "task_prepare", listeners=[BUSINESS_KEY])
    p.flow("flow_settings_checked", "task_prepare", "task_deploy_canary")
    p.flow("flow_canary_deployed", "task_deploy_canary", "task_baseline")
    p.flow("flow_baseline_read", "task_baseline", "timer_window")
    p.flow("flow_window_over", "timer_window", "task_figures")
    p.flow("flow_figures_read", "task_figures", "task_judge")
    p.flow("flow_judged", "task_judge", "gw_promote")
    p.flow("flow_within_slo", "gw_promote", "task_promote", name="yes", condition=PROMOTE)
    p.flow("flow_slo_breached", "gw_promote", "task_rollback", name="no", default=True)
    p.flow("flow_promoted", "task_promote", "task_notify_promoted")
    p.flow("flow_notified", "task_notify_promoted", "end_promoted")
    p.flow("flow_rolled_back", "task_rollback", "task_rollback_ticket")
    p.flow("flow_rollback_ticket_open", "task_rollback_ticket", "end_rolled_back")
    failure_subprocess(p, 2, f"'Canary rollout of '.concat({var('MODEL_ID')}).concat(' version ')"
                             f".concat({var('MODEL_VERSION')}).concat(' failed with ').concat(MLC_ERROR_CODE)",
                       end_listeners=["${execution.setVariable('CANARY_OUTCOME', 'failed')}"],
                       documentation="Any BPMN error (model not found, no runtime, deploy failed, nothing to roll "
                                     "back to, ...) opens an error ticket and ends with CANARY_OUTCOME=failed.")
    return p


PROCESSES = {"canary_rollout.bpmn": canary_rollout}
