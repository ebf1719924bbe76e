"""Every rule of the plan's table and every conflict, on the inputs a team would give."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from modelops_mlc.errors import UsageError
from modelops_mlc.plan import RULES, PlanConflict, decide, load_inputs


def inputs(**overrides: Any):
    values: dict[str, Any] = {"model_name": "fraud", "model_type": "classification", "deployment_target": "online",
                              "scale_requirements": {"latency_ms": 100}, "governance_level": "staging",
                              "model_format": "sklearn"}
    scale = overrides.pop("scale", None)
    if scale is not None:
        values["scale_requirements"] = scale
    values.update(overrides)
    return load_inputs(values)


def fired(**overrides: Any) -> list[str]:
    return decide(inputs(**overrides)).fired


# ---------------------------------------------------------------- serving (first match wins)

def test_a_batch_target_is_served_by_a_batch_job() -> None:
    d = decide(inputs(deployment_target="batch", scale={"latency_ms": 60_000}))
    assert d.fired[0] == "serve_batch"
    assert (d.batch, d.online, d.edge) == (True, False, False)
    assert "mlc-run-batch-job" in d.processes


@pytest.mark.parametrize("target", ["edge", "embedded"])
def test_an_edge_target_is_served_by_the_onnx_export(target: str) -> None:
    d = decide(inputs(deployment_target=target, scale={"latency_ms": 200}))
    assert d.fired[0] == "serve_edge"
    assert d.edge and d.onnx_export and not d.online


def test_under_50_ms_online_means_an_optimised_model_on_a_server() -> None:
    d = decide(inputs(scale={"latency_ms": 20}))
    assert d.fired[0] == "latency_under_50ms"
    assert d.online and d.onnx_export and not d.batch


def test_under_50_ms_for_a_hybrid_target_keeps_the_batch_job_too() -> None:
    d = decide(inputs(deployment_target="hybrid", scale={"latency_ms": 20}))
    assert d.fired[0] == "latency_under_50ms"
    assert d.online and d.batch and d.onnx_export


@pytest.mark.parametrize("latency", [50, 499.9])
def test_50_to_500_ms_is_online_serving(latency: float) -> None:
    d = decide(inputs(scale={"latency_ms": latency}))
    assert d.fired[0] == "latency_50_to_500ms"
    assert d.online and not d.batch and not d.onnx_export


def test_no_latency_given_is_online_serving() -> None:
    assert fired(scale={"rps": 10})[0] == "latency_50_to_500ms"


@pytest.mark.parametrize("latency", [500, 2000])
def test_500_ms_or_more_is_batch_scoring(latency: float) -> None:
    d = decide(inputs(scale={"latency_ms": latency}))
    assert d.fired[0] == "latency_500ms_or_more"
    assert d.batch and not d.online


def test_a_hybrid_target_is_online_and_batch() -> None:
    d = decide(inputs(deployment_target="hybrid", scale={"latency_ms": 200}))
    assert d.fired[0] == "serve_hybrid"
    assert d.online and d.batch


def test_exactly_one_serving_rule_fires() -> None:
    serving = {r.id for r in RULES if r.topic == "serving"}
    for target in ("batch", "online", "edge", "embedded", "hybrid"):
        for latency in (10, 100, 1000):
            try:
                ids = fired(deployment_target=target, scale={"latency_ms": latency})
            except PlanConflict:
                continue
            assert len(serving.intersection(ids)) == 1, (target, latency, ids)


# ---------------------------------------------------------------- scale

def test_above_1000_rps_autoscales_and_caches() -> None:
    d = decide(inputs(scale={"latency_ms": 100, "rps": 3000}))
    assert "rps_over_1000" in d.fired
    assert d.autoscaling and d.model_caching
    assert (d.min_replicas, d.max_replicas) == (2, 6)


def test_an_edge_model_does_not_autoscale_whatever_its_rps() -> None:
    assert "rps_over_1000" not in fired(deployment_target="edge", scale={"rps": 5000})


def test_1000_rps_or_less_does_not_autoscale() -> None:
    d = decide(inputs(scale={"latency_ms": 100, "rps": 1000}))
    assert "rps_over_1000" not in d.fired
    assert not d.autoscaling and (d.min_replicas, d.max_replicas) == (1, 3)


# ---------------------------------------------------------------- governance

def test_production_takes_approval_audit_card_and_canary() -> None:
    d = decide(inputs(governance_level="production"))
    assert "governance_production" in d.fired
    assert d.approval and d.audit_log and d.model_card and d.canary and d.separation_of_duties
    assert d.canary_percent == 10 and d.risk_tier == "HIGH"
    assert {"mlc-deploy-with-test", "mlc-canary-rollout", "mlc-monitor", "mlc-retrain"} <= set(d.processes)
    assert (d.monitor_every, d.retrain_every) == ("1d", "1w")


def test_staging_is_reviewed_and_monitored_without_canary() -> None:
    d = decide(inputs(governance_level="staging"))
    assert "governance_staging" in d.fired
    assert d.approval and not d.canary and d.risk_tier == "MEDIUM"
    assert d.monitor_every == "1w" and d.retrain_every is None


def test_experimental_takes_the_minimal_process() -> None:
    d = decide(inputs(governance_level="experimental"))
    assert "governance_experimental" in d.fired
    assert not d.approval and not d.canary and not d.model_card and d.risk_tier == "LOW"
    assert d.monitor_every is None and d.retrain_every is None
    assert "mlc-productionize-minimal" in d.processes and "mlc-monitor" not in d.processes


def test_a_given_risk_tier_wins_over_the_governance_default() -> None:
    assert decide(inputs(governance_level="production", risk_tier="medium")).risk_tier == "MEDIUM"


# ---------------------------------------------------------------- team

@pytest.mark.parametrize(("size", "rule", "stack"), [(None, "team_under_5", "simple"), (4, "team_under_5", "simple"),
                                                     (5, "team_5_or_more", "shared"), (40, "team_5_or_more", "shared")])
def test_team_size_picks_the_stack(size: int | None, rule: str, stack: str) -> None:
    d = decide(inputs(team_size=size))
    assert rule in d.fired and d.stack == stack


# ---------------------------------------------------------------- conflicts abort with a reason

def test_edge_for_a_format_that_cannot_be_exported_aborts() -> None:
    with pytest.raises(PlanConflict, match=r"model_format xgboost cannot be exported .*conflict_edge_format"):
        decide(inputs(deployment_target="edge", model_format="xgboost"))


def test_edge_without_a_format_aborts_asking_for_it() -> None:
    with pytest.raises(PlanConflict, match="give model_format"):
        decide(inputs(deployment_target="edge", model_format=None))


def test_under_50_ms_online_for_a_format_that_cannot_be_exported_aborts() -> None:
    with pytest.raises(PlanConflict, match="conflict_edge_format"):
        decide(inputs(scale={"latency_ms": 10}, model_format="pytorch"))


def test_under_50_ms_on_cpu_for_a_large_ensemble_aborts() -> None:
    with pytest.raises(PlanConflict, match=r"ensemble of 800 members .*conflict_large_ensemble_cpu"):
        decide(inputs(scale={"latency_ms": 20}, estimators=800))


def test_a_large_ensemble_on_gpu_or_a_small_one_is_no_conflict() -> None:
    assert decide(inputs(scale={"latency_ms": 20}, estimators=800, hardware="gpu")).online
    assert decide(inputs(scale={"latency_ms": 20}, estimators=100)).online


def test_a_batch_target_with_a_tight_latency_aborts() -> None:
    with pytest.raises(PlanConflict, match=r"batch cannot answer within 30 ms.*conflict_batch_latency"):
        decide(inputs(deployment_target="batch", scale={"latency_ms": 30}))


def test_every_conflict_that_applies_is_named() -> None:
    with pytest.raises(PlanConflict) as caught:
        decide(inputs(deployment_target="edge", model_format="lightgbm", scale={"latency_ms": 5}, estimators=1000))
    assert "conflict_edge_format" in caught.value.message and "conflict_large_ensemble_cpu" in caught.value.message
    assert caught.value.exit_code == 2


def test_every_rule_of_the_table_is_exercised_by_this_module() -> None:
    tests_above = Path(__file__).read_text().split("def test_every_rule_of_the_table")[0]
    assert [r.id for r in RULES if r.id not in tests_above] == []


# ---------------------------------------------------------------- inputs

@pytest.mark.parametrize(("field", "value", "allowed"), [
    ("model_type", "classifier", "classification, regression, clustering, ranking, generative, time-series"),
    ("deployment_target", "cloud", "batch, online, edge, embedded or hybrid"),
    ("governance_level", "prod", "experimental, staging or production"),
    ("existing_stack", "mlflw", "mlflow, kubeflow, vertex_ai, sagemaker, azure_ml, databricks, neptune, wandb or custom"),
])
def test_a_bad_choice_names_the_allowed_values(field: str, value: str, allowed: str) -> None:
    with pytest.raises(UsageError) as caught:
        inputs(**{field: value})
    assert f"{field}: {value!r} is not allowed; allowed values: {allowed}" in caught.value.message
    assert "\n" not in caught.value.message


def test_scale_requirements_need_one_figure() -> None:
    with pytest.raises(UsageError, match="give at least one of rps, latency_ms, data_volume_gb, concurrent_users"):
        inputs(scale={})


def test_a_tracking_uri_with_credentials_is_refused() -> None:
    with pytest.raises(UsageError, match="MLFLOW_TRACKING_USERNAME"):
        inputs(tracking_uri="https://alice:s3cret@mlflow.example.com")
