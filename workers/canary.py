"""Topic handlers of the mlc-canary-rollout process: watch a canary, then promote or roll it back.

``canary-prepare`` checks the rollout's settings before anything is deployed and finds the stage
the model serves in; ``canary-baseline`` reads the candidate's live counters on its runtime
right after the canary deploy; ``canary-figures`` reads them again when the window is
over and writes the figures the ``mlc-canary-slo`` decision takes; ``canary-promote`` and
``canary-rollback`` carry out the decision on the deployment and in the registry. Each is
idempotent: a redelivered promote or rollback finds its work done and reports it again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from modelops_mlc.errors import BpmnError, MlcError, NotFoundError, RuntimeServiceError, TaskFailed, UsageError
from workers.handlers import TaskContext, topic
from workers.support import finite, job_errors, model_name
from workers.variables import (
    CANARY_ACCURACY,
    CANARY_BASELINE,
    CANARY_ERROR_RATE,
    CANARY_FIGURES,
    CANARY_MAX_ERROR_RATE,
    CANARY_MAX_P99_MS,
    CANARY_MIN_ACCURACY,
    CANARY_MIN_REQUESTS,
    CANARY_OUTCOME,
    CANARY_P99_MS,
    CANARY_REASON,
    CANARY_REQUESTS,
    CANARY_VERDICT,
    CANARY_WINDOW,
    DEFAULT_CANARY_WINDOW,
    DEPLOYMENT_ID,
    MLC_DEPLOY_FAILED,
    MODEL_STAGE,
    MODEL_VERSION,
    RETIRED_VERSION,
    ROLLED_BACK_TO,
    TOPIC_CANARY_BASELINE,
    TOPIC_CANARY_FIGURES,
    TOPIC_CANARY_PREPARE,
    TOPIC_CANARY_PROMOTE,
    TOPIC_CANARY_ROLLBACK,
)

if TYPE_CHECKING:
    import datetime as dt

    from modelops_mlc.runtimes import Deployment, DeploymentManager
    from modelops_mlc.runtimes.live_figures import Scrape

# SLO overrides the decision reads; absent ones take the decision's defaults.
SLO_LIMITS = {
    CANARY_MAX_ERROR_RATE: (0.0, 1.0),
    CANARY_MAX_P99_MS: (0.0, None),
    CANARY_MIN_ACCURACY: (0.0, 1.0),
    CANARY_MIN_REQUESTS: (0.0, None),
}

CHAMPION = "champion"
CHALLENGER = "challenger"
RETIRED_TAG = "mlc.retired"
REPLACED_TAG = "mlc.replaced_version"  # on a promoted candidate: the champion it retired

def _window(ctx: TaskContext) -> str:
    from modelops_mlc.durations import iso_duration_seconds

    value = str(ctx.get(CANARY_WINDOW, "") or DEFAULT_CANARY_WINDOW).strip().upper()
    try:
        iso_duration_seconds(value)
    except UsageError:
        raise TaskFailed(f"{CANARY_WINDOW} must be an ISO-8601 duration such as PT10M or PT1H, got "
                         f"{ctx.get(CANARY_WINDOW)!r}", retryable=False) from None
    return value


def _slo(ctx: TaskContext) -> dict[str, float | int]:
    """The SLO overrides the instance carries, as numbers the decision can compare with."""
    found: dict[str, float | int] = {}
    for name, (low, high) in SLO_LIMITS.items():
        raw = ctx.get(name)
        if raw is None or raw == "":
            continue
        number = finite(raw) if not isinstance(raw, bool) else None
        if number is None or number < low or (high is not None and number > high):
            bounds = f"from {low:g} to {high:g}" if high is not None else f"of at least {low:g}"
            raise TaskFailed(f"{name} must be a number {bounds}, got {raw!r}", retryable=False)
        found[name] = int(number) if name == CANARY_MIN_REQUESTS else number
    return found


def _deployment(ctx: TaskContext) -> "tuple[DeploymentManager, Deployment]":
    from modelops_mlc.runtimes import DeploymentManager

    manager = DeploymentManager(ctx.settings)
    raw = ctx.require(DEPLOYMENT_ID)
    try:
        return manager, manager.get(int(raw))
    except (TypeError, ValueError):
        raise TaskFailed(f"{DEPLOYMENT_ID} must be a deployment id, got {raw!r}", retryable=False) from None
    except NotFoundError as exc:
        raise BpmnError(MLC_DEPLOY_FAILED, exc.message) from exc


def _scrape(ctx: TaskContext, deployment: "Deployment") -> "Scrape":
    from modelops_mlc.runtimes.live_figures import scrape

    if deployment.mode != "online":
        raise BpmnError(MLC_DEPLOY_FAILED, f"deployment {deployment.id} is a batch deployment on runtime "
                                           f"{deployment.runtime}: a canary needs an online runtime")
    try:
        return scrape(ctx.settings, deployment.runtime, deployment.model_name, deployment.model_version)
    except (RuntimeServiceError, NotFoundError) as exc:  # the runtime may be restarting: retry, then an incident
        raise TaskFailed(exc.message) from exc


def _serving_stage(ctx: TaskContext) -> str | None:
    """The stage of the model's newest online deployment that serves, so the canary lands beside it."""
    from modelops_mlc.runtimes import DeploymentManager

    with job_errors():
        serving = [d for d in DeploymentManager(ctx.settings).list(model_name(ctx), state="deployed")
                   if d.mode == "online" and d.stage]
    return serving[-1].stage if serving else None


@topic(TOPIC_CANARY_PREPARE)
def canary_prepare(ctx: TaskContext) -> dict[str, Any]:
    """CANARY_WINDOW and the SLO overrides checked (numbers for the decision), MODEL_STAGE found."""
    found: dict[str, Any] = {CANARY_WINDOW: _window(ctx), **_slo(ctx)}
    stage = ctx.get(MODEL_STAGE) or _serving_stage(ctx)
    if stage:
        found[MODEL_STAGE] = str(stage)
    return found


@topic(TOPIC_CANARY_BASELINE)
def canary_baseline(ctx: TaskContext) -> dict[str, Any]:
    _, deployment = _deployment(ctx)
    return {CANARY_BASELINE: _scrape(ctx, deployment).model_dump(mode="json")}


def _accuracy(ctx: TaskContext, name: str, version: str, since: "dt.datetime") -> tuple[int, float | None]:
    """Accuracy on the feedback labels of predictions made since ``since``; (0, None) without labels."""
    try:
        from modelops_mlc.runtimes.feedback import FeedbackStore
    except ImportError:  # a build without feedback: accuracy is not known
        return 0, None
    try:
        labelled, accuracy = FeedbackStore(ctx.settings).accuracy(name, version, since=since)
    except MlcError as exc:
        raise TaskFailed(exc.message) from exc
    return int(labelled or 0), finite(accuracy) if labelled else None


@topic(TOPIC_CANARY_FIGURES)
def canary_figures(ctx: TaskContext) -> dict[str, Any]:
    from modelops_mlc.runtimes.live_figures import Scrape, figures

    _, deployment = _deployment(ctx)
    try:
        start = Scrape.model_validate(ctx.require(CANARY_BASELINE))
    except ValueError as exc:
        raise TaskFailed(f"{CANARY_BASELINE} is not a baseline canary-baseline wrote: {exc}", retryable=False) from None
    end = _scrape(ctx, deployment)
    labelled, accuracy = _accuracy(ctx, deployment.model_name, deployment.model_version, start.at)
    found = figures(start, end, labelled=labelled, accuracy=accuracy)
    return {
        CANARY_FIGURES: {**found.model_dump(mode="json"), "deployment_id": deployment.id, "summary": found.summary()},
        CANARY_REQUESTS: found.requests,
        CANARY_ERROR_RATE: found.error_rate,
        CANARY_P99_MS: found.p99_ms,
        CANARY_ACCURACY: found.accuracy,
    }


def _newest_on_runtime(manager: "DeploymentManager", deployment: "Deployment") -> bool:
    serving = [d for d in manager.list(deployment.model_name, runtime=deployment.runtime, state="deployed")
               if not d.shadow]  # a shadow answers no caller: it does not compete with the canary
    return bool(serving) and serving[-1].id == deployment.id


def _verdict_reason(ctx: TaskContext) -> str:
    verdict = ctx.get(CANARY_VERDICT)
    reason = verdict.get("reason") if isinstance(verdict, dict) else None
    return str(reason or "the canary decision chose to roll back")


@topic(TOPIC_CANARY_PROMOTE)
def canary_promote(ctx: TaskContext) -> dict[str, Any]:
    """Canary to 100 %, alias champion to the candidate, the old champion tagged retired."""
    from modelops_mlc.registry import Registry

    manager, deployment = _deployment(ctx)
    with job_errors():
        if deployment.state != "deployed":
            raise BpmnError(MLC_DEPLOY_FAILED, f"deployment {deployment.id} is {deployment.state}, not deployed: "
                                               "nothing to promote")
        if deployment.traffic_weight < 100:
            if not _newest_on_runtime(manager, deployment):
                raise BpmnError(MLC_DEPLOY_FAILED, f"deployment {deployment.id} is no longer the newest version "
                                                   f"of {deployment.model_name} on runtime {deployment.runtime}")
            manager.promote(deployment.model_name, runtime=deployment.runtime)
        name, version = deployment.model_name, int(deployment.model_version)
        registry = Registry(ctx.settings)
        aliases = registry.get_model(name).aliases
        retired = aliases.get(CHAMPION)
        if retired is not None and retired != version:
            # kept on the candidate before the alias moves: a redelivered promote still names it
            registry.set_tags(f"{name}/{version}", {REPLACED_TAG: str(retired)})
            registry.set_tags(f"{name}/{retired}", {RETIRED_TAG: "true"})
        elif retired == version:  # an earlier delivery moved the alias already
            replaced = registry.get_version(f"{name}/{version}").tags.get(REPLACED_TAG)
            retired = int(replaced) if replaced and replaced.isdigit() else None
        registry.set_alias(name, CHAMPION, version)
        if CHALLENGER in aliases:
            registry.delete_alias(name, CHALLENGER)
    return {
        CANARY_OUTCOME: "promoted",
        DEPLOYMENT_ID: deployment.id,
        MODEL_VERSION: version,
        RETIRED_VERSION: retired,
    }


@topic(TOPIC_CANARY_ROLLBACK)
def canary_rollback(ctx: TaskContext) -> dict[str, Any]:
    """Retire the canary, traffic back to what served before; the reason quotes the figures."""
    manager, deployment = _deployment(ctx)
    name = model_name(ctx)
    if deployment.state == "deployed":
        if not _newest_on_runtime(manager, deployment):
            raise BpmnError(MLC_DEPLOY_FAILED, f"cannot roll back deployment {deployment.id}: it is no longer the "
                                               f"newest version of {deployment.model_name} on {deployment.runtime}")
        try:
            manager.rollback(deployment.model_name, runtime=deployment.runtime)
        except (RuntimeServiceError, UsageError) as exc:  # e.g. no earlier version to return to
            raise BpmnError(MLC_DEPLOY_FAILED, f"cannot roll back deployment {deployment.id}: {exc.message}") from exc
        except MlcError as exc:
            raise TaskFailed(exc.message) from exc
    serving = manager.list(deployment.model_name, runtime=deployment.runtime, state="deployed")
    back_to = ", ".join(sorted({d.model_version for d in serving})) or None
    figures = ctx.get(CANARY_FIGURES)
    figures = figures if isinstance(figures, dict) else {}
    window = " to ".join(str(figures.get(k, "?"))[:19].replace("T", " ") for k in ("window_start", "window_end"))
    reason = (f"{_verdict_reason(ctx)} (canary of {name} version {deployment.model_version}, rolled back "
              f"automatically). Figures over the window {window} UTC: {figures.get('summary') or 'not read'}."
              + (f" Traffic is back on version {back_to}." if back_to else ""))
    return {CANARY_OUTCOME: "rolled-back", CANARY_REASON: reason, ROLLED_BACK_TO: back_to}
