"""Topic ``get-model``: resolve the model a process is about and write what its gateways need."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from modelops_mlc.errors import BpmnError
from workers.handlers import TaskContext, topic
from workers.support import job_errors, model_spec
from workers.variables import (
    BUSINESS_UNIT,
    DEFAULT_DMN_KEY,
    DEPLOYMENT_ID,
    DMN_KEY,
    FRAMEWORK,
    GOVERNANCE_LEVEL,
    HAS_MODEL_CARD,
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
    RISK_TIER,
    RUN_TEST,
    RUNTIME_NAME,
    SEPARATION_OF_DUTIES,
    SERVICENOW,
    SUBMITTED_BY,
    TAG,
    TOPIC_GET_MODEL,
    TRAIN,
)

if TYPE_CHECKING:
    from modelops_mlc.registry import ModelVersionInfo

SERVICE_TAG_KEYS = ("TAG", "tag", "model_service")  # version tags naming the model's service tag
MODEL_CARD_TAG = "mlc.model_card"  # set by `mlc model card`; the card may also be a run artifact
MODEL_CARD_ARTIFACT = "model_card.md"


def describe(info: "ModelVersionInfo", model_tags: dict[str, str] | None = None) -> dict[str, Any]:
    """The get-model variables of one registered version; governance tags may also sit on the
    registered model (``model_tags``), a version tag wins."""
    flavors = [f for f in info.flavors if f != "python_function"] or info.flavors
    tags = {**(model_tags or {}), **info.tags}

    def text(key: str) -> str | None:
        value = str(tags.get(key) or "").strip()
        return value or None

    level = (text("governance_level") or "").lower() or None
    tier = (text("risk_tier") or "").upper() or None
    framework = text("framework") or (flavors[0] if flavors else None)
    duties = text("separation_of_duties")
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
        BUSINESS_UNIT: text("business_unit"),
        RISK_TIER: tier,
        FRAMEWORK: framework.lower() if framework else None,
        GOVERNANCE_LEVEL: level,
        SERVICENOW: info.flag("servicenow"),
        SEPARATION_OF_DUTIES: (duties.lower() in {"1", "true", "yes", "y", "on"}) if duties else level == "production",
    }


def _has_model_card(registry: Any, info: "ModelVersionInfo") -> bool:
    if info.tags.get(MODEL_CARD_TAG):
        return True
    if not info.run_id:
        return False
    try:
        return MODEL_CARD_ARTIFACT in registry.run_artifacts(info.run_id)
    except Exception:  # an unreadable run has no card we can vouch for
        return False


@topic(TOPIC_GET_MODEL)
def get_model(ctx: TaskContext) -> dict[str, Any]:
    from modelops_mlc.registry import Registry

    registry = Registry(ctx.settings)
    if str(ctx.get(LOOKUP, "")).strip().lower() == LOOKUP_BATCH_DEPLOYMENT:
        return _batch_deployment(ctx, registry)
    with job_errors():
        info = registry.get_version(model_spec(ctx))
        found = describe(info, registry.model_tags(info.name))
        found[HAS_MODEL_CARD] = _has_model_card(registry, info)
    if not ctx.get(SUBMITTED_BY) and info.tags.get("submitted_by"):
        found[SUBMITTED_BY] = info.tags["submitted_by"]
    return found


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
