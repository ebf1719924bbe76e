"""What the process builders share: null-safe variable access, the business key, the error detail,
the test-criteria rule task and the failure event sub-process every process draws below its diagram.

Imported by generate.py and by every ``*_processes.py`` (bpmn/tools is on ``sys.path`` when
generate.py runs).
"""

from __future__ import annotations

from xml.sax.saxutils import quoteattr

from bpmngen import Process, cy

__all__ = ["BUSINESS_KEY", "ERROR_DETAIL", "EVALUATE", "PASSED", "REASON", "decision_task", "failure_subprocess",
           "review_by_ticket", "var"]


def var(name: str) -> str:
    """JUEL access to a variable that may not exist (null instead of an exception)."""
    return f"execution.getVariable('{name}')"


# Null-safe on purpose: an exception here would fail the get-model worker's complete call.
BUSINESS_KEY = ("${execution.setProcessBusinessKey(''.concat(execution.getVariable('MODEL_ID')).concat(':')"
                ".concat(execution.getVariable('MODEL_VERSION')))}")
ERROR_DETAIL = "(empty MLC_ERROR_MESSAGE ? '' : ': '.concat(MLC_ERROR_MESSAGE))"
PASSED = "${TEST_VERDICT.prop('passed').boolValue()}"
REASON = "TEST_VERDICT.prop('reason').stringValue()"

# A decision that matches no rule yields null: that is a failed verdict, not a broken process.
TO_VERDICT = ("${execution.setVariable('TEST_VERDICT', JSON(DECISION_RESULT != null ? DECISION_RESULT : "
              "'{\"passed\": false, \"reason\": \"decision '.concat(DMN_KEY).concat(' matched no rule\"}')))}")



def decision_task(decision_ref: str, copy: list[str], documentation: str, *, result: str = "DECISION_RESULT",
                  inputs: list[tuple[str, str]] | None = None) -> dict:
    """Keyword arguments of :meth:`Process.rule` for a business rule task run asynchronously (a broken
    decision is an incident on it): the decision's single result (a java Map) lands in the local
    variable ``result``; end listeners (declaration order; they run before output mappings would)
    run the ``copy`` expressions, which turn it into plain or Spin JSON variables every client can
    read, then remove the local so history keeps no java-serialized copy."""
    return dict(
        attrs={
            "camunda:asyncBefore": "true",
            "camunda:decisionRef": decision_ref,
            "camunda:mapDecisionResult": "singleResult",
            "camunda:resultVariable": result,
        },
        inputs=[(result, ""), *(inputs or [])],
        extra_ext="\n".join([
            *(f'<camunda:executionListener expression={quoteattr(e)} event="end" />' for e in copy),
            f'<camunda:executionListener expression="${{execution.removeVariableLocal(\'{result}\')}}" event="end" />',
        ]),
        documentation=documentation,
    )


# The test criteria: TEST_VERDICT, a Spin JSON object {passed, reason}.
EVALUATE = decision_task(
    "${DMN_KEY}", [TO_VERDICT],
"Evaluates the decision named by DMN_KEY (version tag dmn, default mlc-test-criteria) into "
                  "TEST_VERDICT, a JSON object {passed, reason}. Runs asynchronously: a broken decision becomes "
                  "an incident on this task, not an error for the run-test worker.",
)


def failure_subprocess(
    p: Process, row: float, reason: str, *, documentation: str, notify: bool = False, end: str = "end_failed",
    width: float = 3, task_col: float = 1.6, then: tuple[str, str, str, float, str] | None = None,
    start_listeners: list[str] | None = None, end_listeners: list[str] | None = None,
) -> None:
    """The event sub-process below the diagram (on ``row``, columns 0 to ``width``): any BPMN error
    no boundary event catches opens an error ticket whose TICKET_REASON is the JUEL string
    expression ``reason`` followed by the error's message, and ends in ``end``.

    ``notify`` sends an error notification (NOTIFY_MESSAGE) instead of a ticket; ``then`` is one
    more external task after it, ``(id, name, topic, col, id of its flow to the end)``; the listeners go on the flow out of
    the error start and on the flow into the end event."""
    sub, start, task = ("sub_handle_error", "start_error", "task_notify_error") if notify else (
        "sub_handle_failure", "start_failure", "task_error_ticket")
    p.event_subprocess(sub, "Handle error" if notify else "Handle failure", 0, row, width, row,
                       documentation=documentation)
    p.error_start(start, "MLC error", 0.2, row, parent=sub)
    text = f"${{{reason}.concat{ERROR_DETAIL}}}"
    if notify:
        p.external(task, "Notify error", "notify", task_col, row, parent=sub,
                   inputs=[("NOTIFY_LEVEL", "error"), ("NOTIFY_MESSAGE", text)])
    else:
        p.external(task, "Open error ticket", "create-ticket", task_col, row, parent=sub,
                   inputs=[("TICKET_KIND", "error"), ("TICKET_REASON", text)])
    if then is not None:
        p.external(then[0], then[1], then[2], then[3], row, parent=sub)
    p.end(end, "Error" if end == "end_error" else "Failed", width, row, parent=sub)
    p.flow("flow_error" if notify else "flow_failure", start, task, listeners=start_listeners)
    done = "flow_error_notified" if notify else "flow_error_ticket_open"
    if then is not None:
        p.flow(done, task, then[0])
        task, done = then[0], then[4]
    p.flow(done, task, end, listeners=end_listeners)


def review_by_ticket(p: Process, col: float, reason: str, *, then: str) -> None:
    """The review by ticket, on row -1 from column ``col``: open a review ticket (TICKET_REASON
    ``reason``, a JUEL expression), wait for message mlc.ticket-updated (``approved`` is
    TICKET_STATE == Done) until the ticket is decided (Done or Rejected), then go on to ``then``.
    The ticket watcher delivers the resolver as APPROVED_BY, and refuses the submitter's approval
    under separation of duties."""
    p.external("task_review_ticket", "Open review ticket", "create-ticket", col, -1, inputs=[
        ("TICKET_KIND", "review"),
        ("TICKET_REASON", reason),
    ])
    p.gateway("gw_review_wait_join", "", col + 1, -1)
    p.message_catch("catch_review_ticket_updated", "Review ticket updated", "mlc.ticket-updated", col + 2, -1,
                    outputs=[("approved", f"${{{var('TICKET_STATE')} == 'Done'}}")])
    p.gateway("gw_review_decided", "Ticket decided?", col + 3, -1)
    p.flow("flow_review_ticket_open", "task_review_ticket", "gw_review_wait_join")
    p.flow("flow_wait_review_ticket", "gw_review_wait_join", "catch_review_ticket_updated")
    p.flow("flow_review_ticket_updated", "catch_review_ticket_updated", "gw_review_decided")
    p.flow("flow_review_decided", "gw_review_decided", then, name="Done or Rejected",
           condition=f"${{{var('TICKET_STATE')} == 'Done' or {var('TICKET_STATE')} == 'Rejected'}}",
           exit="right", enter="top")
    p.flow("flow_review_open", "gw_review_decided", "gw_review_wait_join", name="other", default=True,
           route=p.lane("gw_review_decided", "gw_review_wait_join", cy(-1.6), "top", "top"))
