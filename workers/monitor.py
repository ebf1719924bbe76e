"""Topic handlers of the mlc-monitor process.

``monitor-check`` runs after the ``drift`` task: the metrics test on the current data when it has
labels (against the version's baseline), the fairness metrics when the version tags a
``protected_attribute``, and the figures the ``mlc-monitor-criteria`` decision reads, with the
version's ``RISK_TIER`` (tag ``risk_tier`` of the version, else of the model, as get-model reads it)
that sets its thresholds.
``monitor-record`` runs after the decision: it keeps the run, its verdict and its per-feature
results in the MLC store and in MLflow (`mlc monitor history`).
"""

from __future__ import annotations

from typing import Any

from workers.get_model import describe
from workers.handlers import TaskContext, topic
from workers.support import job_errors, model_name, model_spec
from workers.variables import (
    CURRENT_DATA,
    DEFAULT_MONITOR_DMN_KEY,
    DRIFT_RESULTS,
    HAS_LABELS,
    MODEL_VERSION,
    MONITOR_ACCURACY_DROP,
    MONITOR_DMN_KEY,
    MONITOR_DRIFTED_FEATURES,
    MONITOR_FAIRNESS_GAP,
    MONITOR_FIGURES,
    MONITOR_MAX_PSI,
    MONITOR_MAX_PSI_FEATURE,
    MONITOR_PREDICTION_PSI,
    MONITOR_REASON,
    MONITOR_RECORD_ID,
    MONITOR_RUN_ID,
    MONITOR_SUMMARY,
    MONITOR_TRIGGER,
    MONITOR_VERDICT,
    RISK_TIER,
    TOPIC_MONITOR_CHECK,
    TOPIC_MONITOR_RECORD,
)


@topic(TOPIC_MONITOR_CHECK, cpu_bound=True)
def monitor_check(ctx: TaskContext) -> dict[str, Any]:
    from modelops_mlc.monitoring.checks import columns_of, figures, performance, summary
    from modelops_mlc.registry import Registry
    from modelops_mlc.serialize import json_safe

    drift_results = dict(ctx.get(DRIFT_RESULTS) or {})
    current = ctx.get(CURRENT_DATA) or drift_results.get("current_data")
    with job_errors():
        registry = Registry(ctx.settings)
        info = registry.get_version(model_spec(ctx))
        tier = describe(info, registry.model_tags(info.name))[RISK_TIER]
        target = info.tags.get("target") or "target"
        labelled = bool(current) and target in columns_of(str(current))
        perf = performance(registry, info, str(current)) if labelled else None
    found = figures(drift_results, perf)
    return {
        MONITOR_DMN_KEY: info.tags.get("monitor_dmn") or DEFAULT_MONITOR_DMN_KEY,
        HAS_LABELS: labelled,
        RISK_TIER: tier,
        MONITOR_MAX_PSI: found.max_psi,
        MONITOR_MAX_PSI_FEATURE: found.max_psi_feature,
        MONITOR_DRIFTED_FEATURES: found.drifted_features,
        MONITOR_PREDICTION_PSI: found.prediction_psi,
        MONITOR_ACCURACY_DROP: found.accuracy_drop,
        MONITOR_FAIRNESS_GAP: found.fairness_gap,
        MONITOR_FIGURES: json_safe({**found.model_dump(), "performance": perf.model_dump() if perf else None}),
        MONITOR_SUMMARY: summary(found),
    }


@topic(TOPIC_MONITOR_RECORD)
def monitor_record(ctx: TaskContext) -> dict[str, Any]:
    from modelops_mlc.monitoring.history import FeatureResult, MonitorRun, record_run
    from modelops_mlc.registry import Registry

    drift_results = dict(ctx.get(DRIFT_RESULTS) or {})
    found = dict(ctx.get(MONITOR_FIGURES) or {})
    features = [FeatureResult(feature=name, psi=f.get("psi"), test=f.get("test"), p_value=f.get("p_value"),
                              verdict=f.get("verdict"))
                for name, f in (drift_results.get("features") or {}).items()]
    prediction = drift_results.get("prediction")
    if prediction:
        features.append(FeatureResult(feature="prediction", kind="prediction", psi=prediction.get("psi"),
                                      test=prediction.get("test"), p_value=prediction.get("p_value"),
                                      verdict=prediction.get("verdict")))
    version = ctx.get(MODEL_VERSION)
    run = MonitorRun(
        model_id=model_name(ctx), model_version=None if version is None else str(version),
        process_instance_id=ctx.process_instance_id, trigger=ctx.get(MONITOR_TRIGGER) or "signal",
        verdict=str(ctx.get(MONITOR_VERDICT) or "ok"), reason=ctx.get(MONITOR_REASON),
        reference_data=drift_results.get("reference_data"),
        current_data=ctx.get(CURRENT_DATA) or drift_results.get("current_data"),
        reference_rows=drift_results.get("reference_rows"), current_rows=drift_results.get("current_rows"),
        max_psi=found.get("max_psi"), max_psi_feature=found.get("max_psi_feature"),
        drifted_features=int(found.get("drifted_features") or 0), prediction_psi=found.get("prediction_psi"),
        accuracy_drop=found.get("accuracy_drop"), fairness_gap=found.get("fairness_gap"), figures=found,
        features=features,
    )
    with job_errors():
        stored = record_run(ctx.settings, Registry(ctx.settings), run, dedupe_key=ctx.dedupe_key)
    return {MONITOR_RECORD_ID: stored.id, MONITOR_RUN_ID: stored.mlflow_run_id}
