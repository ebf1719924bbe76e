"""Topic handlers of the mlc-retrain process.

``retrain-claim``    resolve the champion and take the model's retrain claim (one retrain per model)
``validate-data``    check the new training data against the champion's: schema, nulls, ranges
``train-submit``     start the training job as a detached process (once per task: keyed by its effect)
``train-status``     read the job's state; a failed or crashed job is the BPMN error MLC_JOB_FAILED
``retrain-release``  give the claim back (every end path of the process runs it)

The job runs outside the worker, so a worker restart during a long training loses nothing: the
process keeps polling with its timer and the next worker reads the job's record.
"""

from __future__ import annotations

import json
from typing import Any

from modelops_mlc.errors import BpmnError, JobError, NotFoundError, TaskFailed, UsageError
from workers.get_model import describe
from workers.handlers import TaskContext, topic
from workers.support import job_errors, model_name, model_spec
from workers.variables import (
    CHALLENGER_VERSION,
    CHAMPION_VERSION,
    DATA_PROBLEMS,
    DATA_VALID,
    DEFAULT_RETRAIN_DMN_KEY,
    GOVERNANCE_LEVEL,
    JIRA,
    MLC_JOB_FAILED,
    MODEL_ID,
    MODEL_VERSION,
    PARENT_VERSION,
    RETRAIN_CLAIMED,
    RETRAIN_DMN_KEY,
    RETRAIN_HOLDER,
    REVIEW_IN_TICKET,
    SEPARATION_OF_DUTIES,
    SERVICENOW,
    TOPIC_RETRAIN_CLAIM,
    TOPIC_RETRAIN_RELEASE,
    TOPIC_TRAIN_STATUS,
    TOPIC_TRAIN_SUBMIT,
    TOPIC_VALIDATE_DATA,
    TRAIN_JOB_ID,
    TRAIN_JOB_STATE,
    TRAIN_PARAMS,
    TRAIN_RUN_ID,
    TRAIN_TIMEOUT,
    TRAINING_DATA,
)

DEFAULT_TRAIN_TIMEOUT_S = 6 * 3600.0



def _champion(ctx: TaskContext, registry: Any) -> Any:
    """The version MODEL_ID (+ MODEL_VERSION) names, else the model's ``champion``, else its latest."""
    from modelops_mlc.errors import ModelNotFoundError
    from modelops_mlc.registry import parse_model_id

    spec = model_spec(ctx)
    name, version, alias = parse_model_id(spec)
    if version is not None or alias is not None:
        return registry.get_version(spec)
    try:
        return registry.get_version(f"{name}@champion")
    except ModelNotFoundError:
        return registry.get_version(name)


def _holder_active(ctx: TaskContext, instance_id: str) -> bool:
    from modelops_mlc.engine import EngineClient

    with EngineClient(ctx.settings) as client:
        try:
            return client.history_instance(instance_id).state == "ACTIVE"
        except NotFoundError:
            return False


@topic(TOPIC_RETRAIN_CLAIM)
def retrain_claim(ctx: TaskContext) -> dict[str, Any]:
    from modelops_mlc.registry import Registry
    from modelops_mlc.retraining.claims import claim
    from modelops_mlc.store import open_store

    registry = Registry(ctx.settings)
    name = model_name(ctx)
    with job_errors():
        champion = _champion(ctx, registry)
        model_tags = registry.get_model(name).tags
    got = claim(open_store(ctx.settings), name, ctx.process_instance_id,
                is_active=lambda holder: _holder_active(ctx, holder))
    routing = describe(champion, model_tags)  # the tags that route its tickets and govern its review
    return {
        JIRA: routing[JIRA],
        SERVICENOW: routing[SERVICENOW],
        SEPARATION_OF_DUTIES: routing[SEPARATION_OF_DUTIES],  # as for a snapshot: tag, else production
        MODEL_ID: name,
        MODEL_VERSION: champion.version,
        CHAMPION_VERSION: champion.version,
        RETRAIN_CLAIMED: got.claimed,
        RETRAIN_HOLDER: got.holder,
        REVIEW_IN_TICKET: routing[GOVERNANCE_LEVEL] == "production",
        RETRAIN_DMN_KEY: champion.tags.get("retrain_dmn") or DEFAULT_RETRAIN_DMN_KEY,
    }


@topic(TOPIC_VALIDATE_DATA)
def validate_data(ctx: TaskContext) -> dict[str, Any]:
    from modelops_mlc.jobs.validate import validate_training_data
    from modelops_mlc.registry import Registry

    with job_errors():
        try:
            result = validate_training_data(Registry(ctx.settings), model_spec(ctx, version_var=CHAMPION_VERSION),
                                            ctx.get(TRAINING_DATA))
            problems = result.problems
        except JobError as exc:  # no training data, or unreadable: broken data as well
            problems = [exc.message]
    return {DATA_VALID: not problems, DATA_PROBLEMS: "; ".join(problems)}


def _params(ctx: TaskContext) -> dict[str, Any]:
    raw = ctx.get(TRAIN_PARAMS)
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            raise TaskFailed(f"{TRAIN_PARAMS} is not a JSON object: {raw[:80]!r}", retryable=False) from None
    if raw is not None and not isinstance(raw, dict):
        raise TaskFailed(f"{TRAIN_PARAMS} must be a JSON object, got {type(raw).__name__}", retryable=False)
    return dict(raw or {})


@topic(TOPIC_TRAIN_SUBMIT)
def train_submit(ctx: TaskContext) -> dict[str, Any]:
    from modelops_mlc.retraining.jobs import submit

    training_data = ctx.get(TRAINING_DATA)
    job = submit(ctx.settings, ctx.dedupe_key, model_name=model_name(ctx),
                 parent_version=int(ctx.require(CHAMPION_VERSION)),
                 training_data=None if training_data is None else str(training_data),
                 params=_params(ctx), process_instance_id=ctx.process_instance_id)
    return {TRAIN_JOB_ID: job.id, TRAIN_JOB_STATE: job.state}


def _train_timeout_s(ctx: TaskContext) -> float:
    """TRAIN_TIMEOUT: seconds, or an ISO-8601 duration such as PT6H (default 6 hours)."""
    raw = ctx.get(TRAIN_TIMEOUT)
    if raw in (None, ""):
        return DEFAULT_TRAIN_TIMEOUT_S
    try:
        return float(raw)
    except (TypeError, ValueError):
        pass
    from modelops_mlc.durations import iso_duration_seconds

    try:
        return iso_duration_seconds(str(raw))
    except UsageError as exc:
        raise TaskFailed(f"{TRAIN_TIMEOUT} {raw!r}: {exc.message}", retryable=False) from exc


@topic(TOPIC_TRAIN_STATUS)
def train_status(ctx: TaskContext) -> dict[str, Any]:
    from modelops_mlc.retraining.jobs import status

    job_id = str(ctx.require(TRAIN_JOB_ID))
    try:
        job = status(ctx.settings, job_id, timeout_s=_train_timeout_s(ctx))
    except NotFoundError as exc:
        raise BpmnError(MLC_JOB_FAILED, exc.message) from exc
    if job.state in ("failed", "crashed"):
        raise BpmnError(MLC_JOB_FAILED, f"training job {job.id} {job.state}: {job.error or 'no detail'}",
                        variables={TRAIN_JOB_STATE: job.state})
    found: dict[str, Any] = {TRAIN_JOB_STATE: job.state}
    if job.state == "succeeded" and job.result:
        found.update({
            MODEL_VERSION: job.result["version"],
            CHALLENGER_VERSION: job.result["version"],
            PARENT_VERSION: job.result.get("parent_version"),
            TRAIN_RUN_ID: job.result.get("run_id"),
        })
    return found


@topic(TOPIC_RETRAIN_RELEASE)
def retrain_release(ctx: TaskContext) -> dict[str, Any]:
    from modelops_mlc.retraining.claims import release
    from modelops_mlc.store import open_store

    try:
        name = model_name(ctx)
    except BpmnError:  # a MODEL_ID no claim was ever taken for: nothing to give back
        return {RETRAIN_CLAIMED: False}
    release(open_store(ctx.settings), name, ctx.process_instance_id)
    return {RETRAIN_CLAIMED: False}
