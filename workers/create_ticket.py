"""Topic ``create-ticket``: open a ticket (local, Jira or ServiceNow) with the model's context.

Idempotent through the ticket system's ``dedupe_key``: a redelivered task returns the ticket
the first delivery opened.
"""

from __future__ import annotations

import json
from typing import Any

from modelops_mlc.errors import BpmnError, TaskFailed, TicketError, UsageError, first_line
from workers.handlers import TaskContext, topic
from workers.variables import (
    MLC_ERROR_CODE,
    MLC_ERROR_MESSAGE,
    MLC_JOB_FAILED,
    MODEL_ID,
    MODEL_VERSION,
    TEST_METRICS,
    TEST_VERDICT,
    TICKET_KEY,
    TICKET_KIND,
    TICKET_REASON,
    TICKET_STATE,
    TICKET_SYSTEM,
    TICKET_URL,
    TOPIC_CREATE_TICKET,
)

_TITLES = {
    "rejection": "Model {model} rejected",
    "review": "Review model {model}",
    "error": "Model {model}: life cycle step failed",
}


def _as_dict(value: Any) -> dict[str, Any]:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return {}
    return dict(value) if isinstance(value, dict) else {}


@topic(TOPIC_CREATE_TICKET)
def create_ticket(ctx: TaskContext) -> dict[str, Any]:
    try:
        from modelops_mlc.tickets import TicketContext, TicketSystemUnavailable, get_ticket_system
    except ImportError as exc:  # a build without the tickets package
        raise BpmnError(MLC_JOB_FAILED, f"topic create-ticket is not available: {exc}") from exc

    kind = str(ctx.get(TICKET_KIND, "review")).strip().lower()
    reason = ctx.get(TICKET_REASON) or ctx.get(MLC_ERROR_MESSAGE) or ""
    model = str(ctx.get(MODEL_ID, "unknown model"))
    version = ctx.get(MODEL_VERSION)
    label = f"{model} v{version}" if version is not None else model
    title = _TITLES.get(kind, "Model {model}: " + kind).format(model=label)
    if reason:
        title = f"{title}: {first_line(str(reason))}"[:250]
    context = TicketContext(
        model_id=ctx.get(MODEL_ID),
        model_version=None if version is None else str(version),
        metrics=_as_dict(ctx.get(TEST_METRICS)),
        verdict=ctx.get(TEST_VERDICT),
        reason=str(reason) or None,
        error_code=ctx.get(MLC_ERROR_CODE),
        error_message=ctx.get(MLC_ERROR_MESSAGE),
        process_instance_id=ctx.process_instance_id,
        process_key=ctx.process_definition_key,
        kind=kind,
    )
    try:
        system = get_ticket_system(ctx.settings, ctx.get(TICKET_SYSTEM))
        ticket = system.create(title, "", ["mlc", f"mlc-{kind}"], context, dedupe_key=ctx.dedupe_key)
    except TicketSystemUnavailable as exc:
        raise TaskFailed(exc.message) from exc
    except (UsageError, TicketError) as exc:  # unknown system, missing credentials: fix, then retry the incident
        raise TaskFailed(exc.message, retryable=False) from exc
    state = ticket.state
    return {
        TICKET_KEY: ticket.key,
        TICKET_STATE: getattr(state, "value", state),
        TICKET_URL: ticket.url,
    }
