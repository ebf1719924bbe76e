"""Topic ``notify``: record a notification (and post it to the webhook when one is set).

Idempotent through ``notify``'s ``dedupe_key``.
"""

from __future__ import annotations

from typing import Any

from modelops_mlc.errors import TaskFailed, UsageError
from workers.handlers import TaskContext, topic
from workers.variables import NOTIFICATION_ID, NOTIFY_LEVEL, NOTIFY_MESSAGE, TOPIC_NOTIFY


@topic(TOPIC_NOTIFY, mlflow=False)
def notify(ctx: TaskContext) -> dict[str, Any]:
    from modelops_mlc.tickets.notifications import notify as send

    try:
        sent = send(
            ctx.settings,
            str(ctx.get(NOTIFY_LEVEL, "info")).strip().lower(),
            str(ctx.require(NOTIFY_MESSAGE)),
            model_id=ctx.model_id,
            process_instance_id=ctx.process_instance_id,
            dedupe_key=ctx.dedupe_key,
        )
    except UsageError as exc:  # e.g. an unknown level: the process model must change
        raise TaskFailed(exc.message, retryable=False) from exc
    return {NOTIFICATION_ID: sent.id}
