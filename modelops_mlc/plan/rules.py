"""The decision rules of ``mlc plan``: ONE table (:data:`RULES`), read top to bottom.

Each rule has an id, a topic, the condition and the decision in plain words (PLAN.md quotes them),
a predicate over the inputs and what it sets. Within the ``serving`` topic the first matching rule
wins; in every other topic each matching rule applies. Conflict rules run last, over the inputs
and the decisions, and abort the plan with their reason.

Lifecycle thresholds are not decided here: they are the DMN the engine runs (see
:mod:`modelops_mlc.plan.thresholds`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from pydantic import BaseModel, Field

from modelops_mlc.errors import UsageError
from modelops_mlc.plan.inputs import DeploymentTarget, GovernanceLevel, Hardware, ModelFormat, PlanInputs

__all__ = [
    "EXPORTABLE_FORMATS",
    "LARGE_ENSEMBLE",
    "RULES",
    "Decisions",
    "PlanConflict",
    "Rule",
    "decide",
]

FAST_MS = 50  # under this: edge, or an optimised (ONNX) model
SLOW_MS = 500  # this or more: batch
HIGH_RPS = 1000  # above this: autoscaling (HPA) and model caching
SMALL_TEAM = 5  # under this: the simple stack
LARGE_ENSEMBLE = 500  # members of an ensemble that no CPU scores in FAST_MS
EXPORTABLE_FORMATS = frozenset({ModelFormat.sklearn, ModelFormat.onnx})  # what `mlc model export --format onnx` takes
RPS_PER_REPLICA = 500  # sizing of the HPA's maximum

PRODUCTIONIZE = ("mlc-productionize", "mlc-process-selection", "mlc-deploy-with-test", "mlc-productionize-minimal",
                 "mlc-test-criteria")
MONITORING = ("mlc-monitor", "mlc-monitor-schedule", "mlc-monitor-criteria")
RETRAINING = ("mlc-retrain", "mlc-retrain-schedule", "mlc-retrain-decision", "mlc-canary-rollout", "mlc-canary-slo")
CANARY = ("mlc-canary-rollout", "mlc-canary-slo")
BACK_TEST = ("mlc-run-back-test",)
BATCH_JOB = ("mlc-run-batch-job",)


class PlanConflict(UsageError):
    """The requirements contradict each other; the message gives the reason(s)."""


class Decisions(BaseModel):
    """What the rules decided; every field is set by a rule named in ``fired``."""

    online: bool = False
    batch: bool = False
    edge: bool = False
    onnx_export: bool = False
    autoscaling: bool = False
    model_caching: bool = False
    min_replicas: int = 1
    max_replicas: int = 3
    approval: bool = False
    audit_log: bool = False
    model_card: bool = False
    canary: bool = False
    canary_percent: int | None = None
    separation_of_duties: bool = False
    risk_tier: str = "MEDIUM"
    monitor_every: str | None = None
    retrain_every: str | None = None
    stack: str = "simple"
    processes: list[str] = Field(default_factory=list)  # process and decision keys to deploy
    fired: list[str] = Field(default_factory=list)  # rule ids, in table order

    def add_processes(self, *keys: str) -> None:
        self.processes.extend(k for k in keys if k not in self.processes)


@dataclass(frozen=True)
class Rule:
    id: str
    topic: str  # serving, scale, governance, team, stack, conflict
    when: str
    then: str
    applies: Callable[[PlanInputs, Decisions], bool]
    effect: Callable[[PlanInputs, Decisions], None] | None = None
    reason: Callable[[PlanInputs, Decisions], str] | None = None  # conflicts: why the plan aborts


def _latency(i: PlanInputs) -> float | None:
    return i.scale_requirements.latency_ms


def _target(i: PlanInputs, *targets: DeploymentTarget) -> bool:
    return i.deployment_target in targets


def _set(**values: object) -> Callable[[PlanInputs, Decisions], None]:
    def effect(_: PlanInputs, d: Decisions) -> None:
        for key, value in values.items():
            setattr(d, key, value)
    return effect


def _serve_batch(_: PlanInputs, d: Decisions) -> None:
    d.batch = True
    d.add_processes(*BATCH_JOB)


def _serve_hybrid(_: PlanInputs, d: Decisions) -> None:
    d.online = True
    _serve_batch(_, d)


def _serve_fast(i: PlanInputs, d: Decisions) -> None:
    d.online = d.onnx_export = True
    if _target(i, DeploymentTarget.hybrid):
        _serve_batch(i, d)


def _autoscale(i: PlanInputs, d: Decisions) -> None:
    import math

    d.autoscaling = d.model_caching = True
    d.min_replicas = 2
    d.max_replicas = max(3, math.ceil((i.scale_requirements.rps or 0) / RPS_PER_REPLICA))


def _production(i: PlanInputs, d: Decisions) -> None:
    d.approval = d.audit_log = d.model_card = d.canary = d.separation_of_duties = True
    d.canary_percent = 10
    d.risk_tier = i.risk_tier or "HIGH"
    d.monitor_every, d.retrain_every = "1d", "1w"
    d.add_processes(*PRODUCTIONIZE, *MONITORING, *RETRAINING, *CANARY, *BACK_TEST)


def _staging(i: PlanInputs, d: Decisions) -> None:
    d.approval = d.audit_log = True
    d.risk_tier = i.risk_tier or "MEDIUM"
    d.monitor_every = "1w"
    d.add_processes(*PRODUCTIONIZE, *MONITORING, *RETRAINING)


def _experimental(i: PlanInputs, d: Decisions) -> None:
    d.audit_log = True  # the audit log records every change whatever the level; nothing to switch on
    d.risk_tier = i.risk_tier or "LOW"
    d.add_processes(*PRODUCTIONIZE)


def _exportable(i: PlanInputs) -> bool:
    return i.model_format in EXPORTABLE_FORMATS


RULES: tuple[Rule, ...] = (
    # serving: the first matching rule wins
    Rule("serve_batch", "serving", "deployment_target is batch",
         "batch scoring: a Kubernetes CronJob that fires mlc.deployed-batch-job (process mlc-run-batch-job)",
         lambda i, d: _target(i, DeploymentTarget.batch), _serve_batch),
    Rule("serve_edge", "serving", "deployment_target is edge or embedded",
         "edge: the model is exported to ONNX (`mlc model export --format onnx`) and shipped as its EDGE_MODEL asset",
         lambda i, d: _target(i, DeploymentTarget.edge, DeploymentTarget.embedded),
         _set(edge=True, onnx_export=True)),
    Rule("latency_under_50ms", "serving", f"latency_ms under {FAST_MS}",
         "online serving of an optimised model: the ONNX export of the model, on a KServe InferenceService "
         "(and batch scoring too for a hybrid target)",
         lambda i, d: (_latency(i) or FAST_MS) < FAST_MS, _serve_fast),
    Rule("latency_500ms_or_more", "serving", f"latency_ms {SLOW_MS} or more",
         "batch scoring: a latency budget this wide is met by scheduled batch jobs, with no server to keep up",
         lambda i, d: (_latency(i) or 0) >= SLOW_MS and _target(i, DeploymentTarget.online), _serve_batch),
    Rule("serve_hybrid", "serving", "deployment_target is hybrid",
         "online serving (KServe InferenceService) and batch scoring (CronJob) of the same model",
         lambda i, d: _target(i, DeploymentTarget.hybrid), _serve_hybrid),
    Rule("latency_50_to_500ms", "serving", f"latency_ms from {FAST_MS} to {SLOW_MS} (or not given) for an online target",
         "online serving: a KServe InferenceService (`mlc manifest kserve`), V2 protocol",
         lambda i, d: True, _set(online=True)),
    # scale
    Rule("rps_over_1000", "scale", f"rps above {HIGH_RPS} for online serving",
         f"autoscaling (HPA on CPU, 2 to rps/{RPS_PER_REPLICA} replicas) and model caching (a KServe LocalModelCache "
         "is advised; the InferenceService keeps the model loaded in every replica)",
         lambda i, d: d.online and (i.scale_requirements.rps or 0) > HIGH_RPS, _autoscale),
    # governance
    Rule("governance_production", "governance", "governance_level is production",
         "approval workflow (mlc-deploy-with-test with a review, separation of duties), audit log, model card "
         "required before deployment, canary rollout (10 %), daily monitor, weekly retrain, risk tier HIGH unless given",
         lambda i, d: i.governance_level is GovernanceLevel.production, _production),
    Rule("governance_staging", "governance", "governance_level is staging",
         "reviewed path (mlc-deploy-with-test), weekly monitor, retrain on a monitor verdict, risk tier MEDIUM unless given",
         lambda i, d: i.governance_level is GovernanceLevel.staging, _staging),
    Rule("governance_experimental", "governance", "governance_level is experimental",
         "the minimal process (mlc-process-selection sends LOW-risk experimental models to mlc-productionize-minimal), "
         "no schedules, risk tier LOW unless given",
         lambda i, d: i.governance_level is GovernanceLevel.experimental, _experimental),
    # team
    Rule("team_under_5", "team", f"team_size under {SMALL_TEAM} (or not given)",
         "the simple stack: one machine (`mlc up`), sqlite MLflow registry and MLC store",
         lambda i, d: (i.team_size or 1) < SMALL_TEAM, _set(stack="simple")),
    Rule("team_5_or_more", "team", f"team_size {SMALL_TEAM} or more",
         "the shared stack: one PostgreSQL database for engine, store and MLflow (MLC_POSTGRES_URL) and an "
         "`mlflow server` (`mlc up --postgres URL --mlflow-server`)",
         lambda i, d: (i.team_size or 1) >= SMALL_TEAM, _set(stack="shared")),
    # conflicts: the plan aborts with every reason that applies
    Rule("conflict_batch_latency", "conflict", f"deployment_target batch with latency_ms under {SLOW_MS}",
         "abort", lambda i, d: _target(i, DeploymentTarget.batch) and (_latency(i) or SLOW_MS) < SLOW_MS,
         reason=lambda i, d: f"deployment_target batch cannot answer within {_latency(i):g} ms: under {SLOW_MS} ms "
                             "needs online or edge serving"),
    Rule("conflict_edge_format", "conflict", "an ONNX export is needed and the model format cannot be exported",
         "abort", lambda i, d: d.onnx_export and not _exportable(i),
         reason=lambda i, d: ("edge serving and latencies under 50 ms need an ONNX export, and `mlc model export "
                              "--format onnx` converts scikit-learn models only: "
                              + (f"model_format {i.model_format.value} cannot be exported" if i.model_format
                                 else "give model_format (sklearn or onnx)"))),
    Rule("conflict_large_ensemble_cpu", "conflict",
         f"latency_ms under {FAST_MS} on CPU for an ensemble of {LARGE_ENSEMBLE} or more members",
         "abort", lambda i, d: (_latency(i) or FAST_MS) < FAST_MS and i.hardware is Hardware.cpu
                                and (i.estimators or 0) >= LARGE_ENSEMBLE,
         reason=lambda i, d: f"an ensemble of {i.estimators} members does not score in under {FAST_MS} ms on CPU: "
                             "give hardware gpu, a smaller ensemble or a wider latency budget"),
)


def decide(inputs: PlanInputs) -> Decisions:
    """Run the table; raises PlanConflict (with every conflict's reason) when the requirements contradict."""
    decisions = Decisions()
    served = False
    for rule in RULES:
        if rule.topic == "conflict" or (rule.topic == "serving" and served):
            continue
        if rule.applies(inputs, decisions):
            assert rule.effect is not None
            rule.effect(inputs, decisions)
            decisions.fired.append(rule.id)
            served = served or rule.topic == "serving"
    reasons = [(r.id, r.reason(inputs, decisions)) for r in RULES
               if r.topic == "conflict" and r.reason and r.applies(inputs, decisions)]
    if reasons:
        raise PlanConflict("conflicting requirements: " + "; ".join(f"{why} ({rid})" for rid, why in reasons))
    return decisions


def rule(rule_id: str) -> Rule:
    return next(r for r in RULES if r.id == rule_id)
