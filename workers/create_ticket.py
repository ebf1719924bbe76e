"""Topic ``create-ticket``: open a ticket (local, Jira or ServiceNow) with the model's context.

The system is TICKET_SYSTEM when the process names one, else Jira for a model tagged
``jira=true`` (JIRA), ServiceNow for ``servicenow=true`` (SERVICENOW), else the default system.
The ticket carries the version, its metrics, the verdict and a link to the MLflow run.

Idempotent through the ticket system's ``dedupe_key``: a redelivered task returns the ticket
the first delivery opened.
"""

from __future__ import annotations

import json
from typing import Any

from modelops_mlc.errors import BpmnError, TaskFailed, TicketError, UsageError, first_line
from workers.handlers import TaskContext, topic
from workers.variables import (
    BUSINESS_UNIT,
    GOVERNANCE_LEVEL,
    JIRA,
    MLC_ERROR_CODE,
    MLC_ERROR_MESSAGE,
    MLC_JOB_FAILED,
    MODEL_ID,
    MODEL_VERSION,
    PRODUCTIONIZE_PROCESS,
    RISK_TIER,
    SCAN_RUN_ID,
    SERVICENOW,
    SUBMITTED_BY,
    TEST_METRICS,
    TEST_RUN_ID,
    TEST_VERDICT,
    TICKET_KEY,
    TICKET_KIND,
    TICKET_REASON,
    TICKET_STATE,
    TICKET_SYSTEM,
    TICKET_URL,
    TOPIC_CREATE_TICKET,
    TRAIN_RUN_ID,
)

RUN_VARIABLES = (TEST_RUN_ID, SCAN_RUN_ID, TRAIN_RUN_ID)  # the run a ticket links, first found
CONTEXT_TAGS = {"risk_tier": RISK_TIER, "governance_level": GOVERNANCE_LEVEL, "business_unit": BUSINESS_UNIT,
                "process": PRODUCTIONIZE_PROCESS, "submitted_by": SUBMITTED_BY}

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


def _flag(value: Any) -> bool:
    return value is True or str(value).strip().lower() == "true"


def _run_url(ctx: TaskContext, run_id: str) -> str | None:
    """The run's MLflow UI page when MLflow is a server (reading the run's experiment costs a call)."""
    from modelops_mlc.tickets import run_link

    uri = ctx.settings.mlflow_tracking_uri
    if not uri.startswith(("http://", "https://")):
        return None
    from modelops_mlc.registry import Registry
    from modelops_mlc.registry.imports import import_mlflow_stack

    import_mlflow_stack()  # the handler is declared mlflow=False: only this path needs it, under the lock
    try:
        experiment = Registry(ctx.settings).run_experiment_id(run_id)
    except Exception:  # an unknown run still gets its id quoted, without a link
        return None
    return run_link(uri, experiment, run_id)


@topic(TOPIC_CREATE_TICKET, mlflow=False)
def create_ticket(ctx: TaskContext) -> dict[str, Any]:
    try:
        from modelops_mlc.tickets import TicketContext, TicketSystemUnavailable, choose_system, get_ticket_system
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
    run_id = next((str(ctx.get(name)) for name in RUN_VARIABLES if ctx.get(name)), None)
    context = TicketContext(
        model_id=ctx.get(MODEL_ID),
        model_version=None if version is None else str(version),
        tags={tag: ctx.get(name) for tag, name in CONTEXT_TAGS.items() if ctx.get(name)},
        metrics=_as_dict(ctx.get(TEST_METRICS)),
        verdict=ctx.get(TEST_VERDICT),
        reason=str(reason) or None,
        error_code=ctx.get(MLC_ERROR_CODE),
        error_message=ctx.get(MLC_ERROR_MESSAGE),
        process_instance_id=ctx.process_instance_id,
        process_key=ctx.process_definition_key,
        run_id=run_id,
        run_url=_run_url(ctx, run_id) if run_id else None,
        kind=kind,
    )
    try:
        name = choose_system(ctx.get(TICKET_SYSTEM), jira=_flag(ctx.get(JIRA)), servicenow=_flag(ctx.get(SERVICENOW)))
        system = get_ticket_system(ctx.settings, name)
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
