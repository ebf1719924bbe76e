"""Topic ``deploy``: put a version on the runtime its service tag and stage select.

Idempotent through the deployment manager's ``dedupe_key``: a redelivered task gets the
deployment the first delivery made (finished if it was interrupted), never a second one.
``DEPLOY_SHADOW=true`` deploys the version as a shadow of the one serving (no traffic of its own).
"""

from __future__ import annotations

from typing import Any

from modelops_mlc.errors import BpmnError, DeployFailedError, NoRuntimeError, TaskFailed
from workers.handlers import TaskContext, topic
from workers.support import job_errors, model_spec
from workers.variables import (
    DEFAULT_STAGE,
    DEPLOY_MODE,
    DEPLOY_SHADOW,
    DEPLOYMENT_ID,
    ENDPOINT,
    MLC_DEPLOY_FAILED,
    MLC_NO_RUNTIME,
    MODEL_STAGE,
    RUNTIME_NAME,
    TOPIC_DEPLOY,
    TRAFFIC_WEIGHT,
)


def _flag(value: Any) -> bool:
    """A boolean process variable (true/false, also as text or 0/1)."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes"):
        return True
    if text in ("false", "0", "no", "", "none"):
        return False
    raise TaskFailed(f"{DEPLOY_SHADOW} must be true or false, got {value!r}", retryable=False)


@topic(TOPIC_DEPLOY)
def deploy(ctx: TaskContext) -> dict[str, Any]:
    try:
        from modelops_mlc.runtimes import DeploymentManager
    except ImportError as exc:  # a build without the runtimes package
        raise BpmnError(MLC_NO_RUNTIME, f"topic deploy is not available: {exc}") from exc

    weight = ctx.get(TRAFFIC_WEIGHT, 100)
    try:
        weight = int(float(weight))
    except (TypeError, ValueError):
        raise TaskFailed(f"{TRAFFIC_WEIGHT} must be a number from 0 to 100, got {weight!r}", retryable=False) from None
    with job_errors():
        try:
            deployment = DeploymentManager(ctx.settings).deploy(
                model_spec(ctx),
                stage=str(ctx.get(MODEL_STAGE, DEFAULT_STAGE)),
                traffic_weight=weight,
                dedupe_key=ctx.dedupe_key,
                process_instance_id=ctx.process_instance_id,
                shadow=_flag(ctx.get(DEPLOY_SHADOW, False)),
            )
        except NoRuntimeError as exc:
            raise BpmnError(MLC_NO_RUNTIME, exc.message) from exc
        except DeployFailedError as exc:
            raise BpmnError(MLC_DEPLOY_FAILED, exc.message) from exc
    return {
        DEPLOYMENT_ID: deployment.id,
        DEPLOY_MODE: deployment.mode,
        RUNTIME_NAME: deployment.runtime,
        ENDPOINT: deployment.endpoint,
    }
