"""What a monitor run computes, without an engine: the decision's figures, the performance drop,
the one-line summary, schedule specs as the engine's timers, and the run history in the store and MLflow."""

from __future__ import annotations

import pytest

from modelops_mlc.errors import UsageError
from modelops_mlc.monitoring.checks import Performance, figures, relative_drop, summary
from modelops_mlc.monitoring.schedules import cron_to_engine, every_to_cycle, timer_expression

DRIFT = {
    "drifted_features": ["b", "c"],
    "features": {"a": {"psi": 0.01}, "b": {"psi": 0.31}, "c": {"psi": 0.12}, "d": {"psi": None}},
    "prediction": {"psi": 0.04},
}


def test_figures_take_the_largest_psi_and_the_prediction_drift() -> None:
    found = figures(DRIFT)
    assert (found.max_psi, found.max_psi_feature, found.drifted_features) == (0.31, "b", 2)
    assert found.prediction_psi == 0.04
    assert found.accuracy_drop is None and found.fairness_gap is None  # no labels, no performance check


def test_figures_with_labels_hold_the_drop_against_the_baseline_and_the_fairness_gap() -> None:
    perf = Performance(task_type="classification", rows=100, baseline={"accuracy": 0.9, "f1": 0.8},
                       metrics={"accuracy": 0.72, "f1": 0.6, "demographic_parity_difference": 0.14})
    found = figures(DRIFT, perf)
    assert found.performance_metric == "accuracy"
    assert found.accuracy_drop == pytest.approx(0.2)
    assert (found.fairness_metric, found.fairness_gap) == ("demographic_parity_difference", 0.14)
    assert summary(found) == ("largest PSI 0.310 (b), 2 features drifted, prediction PSI 0.040, accuracy 0.720 "
                              "against a baseline of 0.900 (20.0% worse), demographic_parity_difference 0.140")


@pytest.mark.parametrize("task_type, baseline, current, expected", [
    ("classification", {"accuracy": 0.8}, {"accuracy": 0.88}, ("accuracy", pytest.approx(-0.1))),  # better
    ("regression", {"rmse": 2.0}, {"rmse": 2.5}, ("rmse", pytest.approx(0.25))),  # error grew by a quarter
    ("classification", {}, {"accuracy": 0.9}, ("accuracy", None)),  # no baseline: no drop
    ("clustering", {"accuracy": 0.9}, {"accuracy": 0.5}, (None, None)),
])
def test_relative_drop(task_type, baseline, current, expected) -> None:
    assert relative_drop(task_type, baseline, current) == expected


@pytest.mark.parametrize("every, cycle", [
    ("30s", "R/PT30S"), ("15m", "R/PT15M"), ("1h", "R/PT1H"), ("1h30m", "R/PT1H30M"), ("90m", "R/PT1H30M"),
    ("1d", "R/P1D"), ("2w", "R/P14D"), ("1d12h", "R/P1DT12H"), ("PT1H", "R/PT1H"), ("r/pt2s", "R/PT2S"),
    ("R5/PT10M", "R5/PT10M"), ("1.5h", "R/PT1H30M"), ("1.1h", "R/PT1H6M"),
])
def test_every_becomes_a_repeating_interval(every, cycle) -> None:
    assert every_to_cycle(every) == cycle


@pytest.mark.parametrize("every", ["", "5q", "0s", "PT0S", "R", "hourly", "0.5s", "1,5h"])
def test_a_bad_interval_is_a_usage_error(every) -> None:
    with pytest.raises(UsageError, match="is not an interval"):
        every_to_cycle(every)


@pytest.mark.parametrize("cron, engine", [
    ("0 2 * * 0", "0 0 2 * * 0"),  # Sundays at 02:00: crontab's 0 is Sunday in the engine's cron too
    ("*/15  9-17 * * MON-FRI", "0 */15 9-17 * * MON-FRI"),
    ("30 4 1 * *", "0 30 4 1 * *"),
    ("0 0 2 * * ?", "0 0 2 * * ?"),  # six fields: the engine's own syntax, kept
    ("@Daily", "@daily"),
])
def test_cron_becomes_the_engines_six_field_cron(cron, engine) -> None:
    assert cron_to_engine(cron) == engine


@pytest.mark.parametrize("cron, message", [
    ("0 2 * *", "is not a cron expression"),
    ("0 2 * * 0 2026 x", "is not a cron expression"),
    ("0 2 * * 0;rm", "is not a cron expression"),
    ("0 2 1 * 1", "restricts both"),
    ("@reboot", "unknown cron macro"),
])
def test_a_bad_cron_is_a_usage_error(cron, message) -> None:
    with pytest.raises(UsageError, match=message):
        cron_to_engine(cron)


def test_exactly_one_of_every_and_cron() -> None:
    assert timer_expression(every="1h") == ("R/PT1H", "every 1h")
    assert timer_expression(cron="0 2 * * 0") == ("0 0 2 * * 0", "cron 0 2 * * 0")
    for kwargs in ({}, {"every": "1h", "cron": "0 2 * * 0"}):
        with pytest.raises(UsageError, match="exactly one"):
            timer_expression(**kwargs)


def test_a_run_is_recorded_once_in_the_store_and_in_mlflow(settings, registry) -> None:
    from modelops_mlc.monitoring.history import FeatureResult, MonitorRun, history, record_run

    def run(verdict: str, psi: float) -> MonitorRun:
        return MonitorRun(model_id="fraud", model_version="3", verdict=verdict, reason="why", trigger="schedule",
                          max_psi=psi, max_psi_feature="age", drifted_features=1, prediction_psi=float("nan"),
                          features=[FeatureResult(feature="age", psi=psi, test="ks", p_value=0.01, verdict=verdict),
                                    FeatureResult(feature="prediction", kind="prediction", psi=0.02)])

    first = record_run(settings, registry, run("notify", 0.15), dedupe_key="pi-1:task_record:1")
    again = record_run(settings, registry, run("notify", 0.15), dedupe_key="pi-1:task_record:1")  # redelivered
    record_run(settings, registry, run("retrain", 0.4), dedupe_key="pi-2:task_record:1")
    assert again.id == first.id and again.mlflow_run_id == first.mlflow_run_id
    runs = history(settings, "fraud@champion")
    assert [(r.verdict, r.max_psi) for r in runs] == [("notify", 0.15), ("retrain", 0.4)]  # oldest first
    assert runs[0].prediction_psi is None  # NaN is not stored as a number
    assert [(f.feature, f.kind) for f in runs[1].features] == [("age", "data"), ("prediction", "prediction")]
    assert [r.verdict for r in history(settings, "fraud", limit=1)] == ["retrain"]
    mlflow_run = registry.client.get_run(first.mlflow_run_id)
    assert mlflow_run.data.tags["mlc.kind"] == "monitor" and mlflow_run.data.metrics["psi.age"] == 0.15
    found = registry.client.search_runs([registry.experiment_id], "tags.`mlc.kind` = 'monitor'")
    assert len(found) == 2
