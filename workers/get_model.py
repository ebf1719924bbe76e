"""Topic ``get-model``: resolve the model a process is about and write what its gateways need."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from modelops_mlc.errors import BpmnError
from workers.handlers import TaskContext, topic
from workers.support import job_errors, model_spec
from workers.variables import (
    DEFAULT_DMN_KEY,
    DEPLOYMENT_ID,
    DMN_KEY,
    HAS_TEST_DATA,
    JIRA,
    LOOKUP,
    LOOKUP_BATCH_DEPLOYMENT,
    MLC_MODEL_NOT_FOUND,
    MODEL_FLAVOR,
    MODEL_ID,
    MODEL_STAGE,
    MODEL_TAG,
    MODEL_VERSION,
    RUN_TEST,
    RUNTIME_NAME,
    TAG,
    TOPIC_GET_MODEL,
    TRAIN,
)

if TYPE_CHECKING:
    from modelops_mlc.registry import ModelVersionInfo

SERVICE_TAG_KEYS = ("TAG", "tag", "model_service")  # version tags naming the model's service tag


def describe(info: "ModelVersionInfo") -> dict[str, Any]:
    """The get-model variables of one registered version."""
    flavors = [f for f in info.flavors if f != "python_function"] or info.flavors
    return {
        MODEL_ID: info.name,
        MODEL_VERSION: info.version,
        MODEL_TAG: next((info.tags[k] for k in SERVICE_TAG_KEYS if info.tags.get(k)), None),
        MODEL_FLAVOR: flavors[0] if flavors else None,
        TRAIN: info.flag("train"),
        RUN_TEST: info.flag("run_test"),
        JIRA: info.flag("jira"),
        DMN_KEY: info.tags.get("dmn") or DEFAULT_DMN_KEY,
        HAS_TEST_DATA: "TEST_DATA" in info.assets,
    }


@topic(TOPIC_GET_MODEL)
def get_model(ctx: TaskContext) -> dict[str, Any]:
    from modelops_mlc.registry import Registry

    registry = Registry(ctx.settings)
    if str(ctx.get(LOOKUP, "")).strip().lower() == LOOKUP_BATCH_DEPLOYMENT:
        return _batch_deployment(ctx, registry)
    with job_errors():
        return describe(registry.get_version(model_spec(ctx)))


def _batch_deployment(ctx: TaskContext, registry: Any) -> dict[str, Any]:
    """TAG (+ MODEL_STAGE) -> the version of the active batch deployment for that service tag."""
    from modelops_mlc.runtimes import DeploymentManager

    tag = str(ctx.require(TAG))
    stage = ctx.get(MODEL_STAGE)
    with job_errors():
        deployment = DeploymentManager(ctx.settings).active_batch(tag, str(stage) if stage else None)
        if deployment is None:
            where = f"service tag {tag!r}" + (f" in stage {stage}" if stage else "")
            raise BpmnError(MLC_MODEL_NOT_FOUND, f"no active batch deployment for {where}")
        found = describe(registry.get_version(f"{deployment.model_name}/{deployment.model_version}"))
    found[DEPLOYMENT_ID] = deployment.id
    found[RUNTIME_NAME] = deployment.runtime
    return found
