"""The monitor (bpmn/monitor.bpmn) and its per-model schedule (bpmn/monitor_schedule.bpmn), collected by generate.py."""

from __future__ import annotations

from bpmngen import Process, cy
from common import BUSINESS_KEY, decision_task, failure_subprocess, var

DECISION = "mlc-monitor-criteria"

# The decision's single result (a java Map) lands in a local variable; end listeners copy its
# verdict and reason into MONITOR_VERDICT / MONITOR_REASON (plain strings), then drop the local.
# A model's own decision that matches no rule asks for an investigation.
_VERDICT = ("${execution.setVariable('MONITOR_VERDICT', DECISION_RESULT != null ? DECISION_RESULT.get('verdict') "
            ": 'investigate')}")
_REASON = ("${execution.setVariable('MONITOR_REASON', DECISION_RESULT != null ? DECISION_RESULT.get('reason') "
           ": 'decision '.concat(MONITOR_DMN_KEY).concat(' matched no rule'))}")
EVALUATE_MONITOR = decision_task(
    "${MONITOR_DMN_KEY}", [_VERDICT, _REASON],
f"Evaluates the decision named by MONITOR_DMN_KEY (version tag monitor_dmn, default {DECISION}) "
                  "into MONITOR_VERDICT (ok, notify, investigate, retrain) and MONITOR_REASON. Runs "
                  "asynchronously: a broken decision is an incident on this task.",
)
# what the monitor passes to the process the signal mlc.monitor starts
MONITOR_INPUTS = ["MODEL_ID", "MODEL_VERSION", "CURRENT_DATA", "REFERENCE_DATA", "MONITOR_TRIGGER"]


def monitor() -> Process:
    p = Process(
        "mlc-monitor", "MLC: monitor model",
        "Started by signal mlc.monitor (a per-model schedule, mlc monitor run, new data, a registry webhook, or "
        "any scheduler through REST) with MODEL_ID, optional MODEL_VERSION, CURRENT_DATA, REFERENCE_DATA and "
        "MONITOR_TRIGGER. Checks data drift per feature and prediction drift against REFERENCE_DATA (default: the "
        "TRAINING_DATA asset), performance and fairness when CURRENT_DATA has labels, records the run (MLC store "
        f"and MLflow) and lets the decision (tag monitor_dmn, default {DECISION}) give the verdict. Ends in "
        "end_ok, end_notified (warning notification), end_investigating (investigation ticket), end_retrain "
        "(signal mlc.retrain and a notification) or end_failed.",
        "definitions_monitor",
    )
    label = "MODEL_ID.concat(' version ').concat(MODEL_VERSION)"
    p.signal_start("start_monitor", "Monitor requested", "mlc.monitor", 0, 0)
    p.external("task_get_model", "Get model", "get-model", 1, 0)
    p.external("task_drift", "Check data and prediction drift", "drift", 2, 0,
               inputs=[("PREDICTION_DRIFT", "${true}")],
               documentation="The drift topic with PREDICTION_DRIFT: PSI and KS/chi-squared per feature of CURRENT_DATA "
                             "against REFERENCE_DATA (default: the TRAINING_DATA asset), and of the model's outputs.")
    p.external("task_monitor_check", "Check performance and fairness", "monitor-check", 3, 0,
               documentation="With labels in CURRENT_DATA, the metrics test against the version's baseline and the "
                             "fairness metrics of its protected_attribute; writes the decision's inputs.")
    p.rule("task_evaluate_monitor", "Evaluate monitor criteria", 4, 0, **EVALUATE_MONITOR)
    p.external("task_record", "Record monitor run", "monitor-record", 5, 0,
               documentation="Keeps the run, its verdict and its per-feature results in the MLC store and in MLflow.")
    p.gateway("gw_verdict", "Verdict?", 6, 0, label="top")
    p.end("end_ok", "No drift", 7.5, 0)
    p.external("task_notify_drift", "Notify drift", "notify", 7, 1, inputs=[
        ("NOTIFY_LEVEL", "warning"),
        ("NOTIFY_MESSAGE", f"${{'Monitor of '.concat({label}).concat(': ').concat(MONITOR_REASON)}}"),
    ])
    p.end("end_notified", "Notified", 8.5, 1)
    p.external("task_ticket_investigate", "Open investigation ticket", "create-ticket", 7, 2, inputs=[
        ("TICKET_KIND", "investigation"),
        ("TICKET_REASON", f"${{'Monitor of '.concat({label}).concat(' asks for an investigation: ')"
                          ".concat(MONITOR_REASON).concat('. Figures: ').concat(MONITOR_SUMMARY)}"),
    ])
    p.end("end_investigating", "Investigation opened", 8.5, 2)
    p.signal_throw("throw_retrain", "Retrain", "mlc.retrain", 7, 3,
                   variables=["MODEL_ID", "TRAINING_DATA", "RETRAIN_TRIGGER"], attrs={"camunda:asyncBefore": "true"},
                   documentation="Throws mlc.retrain with MODEL_ID, TRAINING_DATA (CURRENT_DATA when it has labels) "
                                 "and RETRAIN_TRIGGER=monitor. Asynchronous: a failing start of the retrain process "
                                 "is an incident here, not a failure of the recording task.")
    p.external("task_notify_retrain", "Notify retrain", "notify", 8, 3, inputs=[
        ("NOTIFY_LEVEL", "warning"),
        ("NOTIFY_MESSAGE", f"${{'Monitor of '.concat({label}).concat(' asks for retraining: ').concat(MONITOR_REASON)"
                           ".concat('. Figures: ').concat(MONITOR_SUMMARY)}"),
    ])
    p.end("end_retrain", "Retrain requested", 9.5, 3)

    p.flow("flow_start", "start_monitor", "task_get_model")
    p.flow("flow_model_found", "task_get_model", "task_drift", listeners=[BUSINESS_KEY])
    p.flow("flow_drift_checked", "task_drift", "task_monitor_check")
    p.flow("flow_checked", "task_monitor_check", "task_evaluate_monitor")
    p.flow("flow_evaluated", "task_evaluate_monitor", "task_record")
    p.flow("flow_recorded", "task_record", "gw_verdict")
    p.flow("flow_ok", "gw_verdict", "end_ok", name="ok", default=True)
    p.flow("flow_notify", "gw_verdict", "task_notify_drift", name="notify",
           condition="${MONITOR_VERDICT == 'notify'}")
    p.flow("flow_investigate", "gw_verdict", "task_ticket_investigate", name="investigate",
           condition="${MONITOR_VERDICT == 'investigate'}")
    p.flow("flow_retrain", "gw_verdict", "throw_retrain", name="retrain", condition="${MONITOR_VERDICT == 'retrain'}",
           listeners=["${execution.setVariable('RETRAIN_TRIGGER', 'monitor')}",
                      f"${{execution.setVariable('TRAINING_DATA', {var('HAS_LABELS')} == true ? "
                      f"{var('CURRENT_DATA')} : null)}}"])
    p.flow("flow_notified", "task_notify_drift", "end_notified")
    p.flow("flow_ticket_open", "task_ticket_investigate", "end_investigating")
    p.flow("flow_retrain_signalled", "throw_retrain", "task_notify_retrain")
    p.flow("flow_retrain_notified", "task_notify_retrain", "end_retrain")
    failure_subprocess(p, 4.3, f"'Monitor of '.concat({var('MODEL_ID')}).concat(' failed with ').concat(MLC_ERROR_CODE)",
                       notify=True, documentation="Any BPMN error (model not found, no current or reference data, a "
                                                  "failed check) ends in an error notification with the reason.")
    return p


def schedule_process(key: str, name: str, documentation: str, definitions_id: str, *, what: str, signal: str,
                     unschedule_message: str, timer_variable: str, inputs: list[str]) -> Process:
    """One waiting instance per scheduled model: a receive task ended by ``unschedule_message``,
    with a non-interrupting timer on its border (cycle ``${timer_variable}``) that throws ``signal``."""
    p = Process(key, name, documentation, definitions_id)
    p.start("start_schedule", "Schedule created", 0, 0)
    p.receive("task_scheduled", f"{what.capitalize()} on schedule", unschedule_message, 1, 0,
              documentation=f"Waits until the schedule is removed (message {unschedule_message}, correlated to "
                            f"this instance); the timer on its border fires on {timer_variable} meanwhile.")
    p.end("end_unscheduled", "Unscheduled", 2.5, 0)
    p.boundary_timer(f"timer_{what}_due", f"{what.capitalize()} due", "task_scheduled", 0, interrupting=False,
                     cycle=f"${{{timer_variable}}}")
    p.signal_throw(f"throw_{what}", f"Start {what}", signal, 1.6, 1, variables=inputs)
    p.end("end_fired", f"{what.capitalize()} started", 2.5, 1)
    p.flow("flow_start", "start_schedule", "task_scheduled")
    p.flow("flow_unscheduled", "task_scheduled", "end_unscheduled")
    t = p.nodes[f"timer_{what}_due"].anchor("bottom")
    p.flow("flow_due", f"timer_{what}_due", f"throw_{what}",
           route=[t, (t[0], cy(1)), p.nodes[f"throw_{what}"].anchor("left")])
    p.flow(f"flow_{what}_started", f"throw_{what}", "end_fired")
    return p


def monitor_schedule() -> Process:
    return schedule_process(
        "mlc-monitor-schedule", "MLC: monitor schedule",
        "One waiting instance per scheduled model (business key: the model name), started by mlc monitor "
        "schedule with MODEL_ID, MONITOR_SCHEDULE (an ISO-8601 repeating interval such as R/PT1H, or a cron "
        "expression with seconds) and the monitor's inputs. Its timer, visible in Cockpit, throws mlc.monitor "
        "with MODEL_ID, MODEL_VERSION, CURRENT_DATA, REFERENCE_DATA and MONITOR_TRIGGER=schedule each time it "
        "fires. mlc monitor unschedule (or a new schedule of the model) sends mlc.monitor-unschedule, which "
        "ends it in end_unscheduled.",
        "definitions_monitor_schedule",
        what="monitor", signal="mlc.monitor", unschedule_message="mlc.monitor-unschedule",
        timer_variable="MONITOR_SCHEDULE", inputs=MONITOR_INPUTS,
    )


PROCESSES = {
    "monitor.bpmn": monitor,
    "monitor_schedule.bpmn": monitor_schedule,
}
