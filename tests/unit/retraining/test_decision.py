"""The decision's inputs from a real comparison record: the signed improvement and the guards."""

from __future__ import annotations

from modelops_mlc.jobs.results import CompareResult, MetricComparison
from modelops_mlc.retraining.decision import guard_metrics, improvement


def metric(name: str, champion: float, challenger: float, greater_is_better: bool = True) -> MetricComparison:
    delta = challenger - champion
    better = (delta > 0) == greater_is_better
    return MetricComparison(metric=name, champion=champion, challenger=challenger, greater_is_better=greater_is_better,
                            winner="tie" if delta == 0 else ("challenger" if better else "champion"),
                            abs_delta=delta, rel_delta=delta / abs(champion) if champion else None)


def result(task_type: str, primary: str, *metrics: MetricComparison) -> CompareResult:
    return CompareResult(model_name="m", champion_version=1, challenger_version=2, task_type=task_type,
                         primary_metric=primary, winner="challenger", metrics=list(metrics))


def test_a_lower_is_better_metric_improves_when_it_falls() -> None:
    found = improvement(result("regression", "rmse", metric("rmse", 2.0, 1.5, False), metric("r2", 0.6, 0.7),
                               metric("mae", 1.0, 1.1, False)), guard_metrics(None, "regression"))
    assert found.improvement == 0.25
    assert (found.guard_metrics, found.guard_losses) == (["mae", "r2"], ["mae"])


def test_the_primary_metric_is_never_its_own_guard_and_a_tag_names_the_guards() -> None:
    compared = result("classification", "f1", metric("f1", 0.8, 0.76), metric("accuracy", 0.9, 0.9),
                      metric("recall", 0.7, 0.6))
    found = improvement(compared, guard_metrics(None, "classification"))
    assert round(found.improvement, 6) == -0.05
    assert (found.guard_metrics, found.guard_losses) == (["accuracy"], [])  # a tie is no loss
    tagged = improvement(compared, guard_metrics(" recall, log_loss ,", "classification"))
    assert (tagged.guard_metrics, tagged.guard_losses) == (["recall"], ["recall"])  # absent metrics are skipped


def test_a_zero_champion_counts_the_absolute_change() -> None:
    assert improvement(result("regression", "r2", metric("r2", 0.0, 0.3)), []).improvement == 0.3
