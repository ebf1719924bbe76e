"""What the champion/challenger decision (DMN ``mlc-retrain-decision``) reads from a comparison.

The improvement is the challenger's relative change on the primary metric, signed so that a
positive number is better whichever way the metric points (rmse down, roc_auc up). Guard
metrics are those the challenger must not lose on: the version tag ``guard_metrics``
(comma-separated), else accuracy and f1 for a classifier and mae and r2 for a regressor.
"""

from __future__ import annotations

from pydantic import BaseModel

from modelops_mlc.jobs.results import CompareResult

__all__ = ["DEFAULT_GUARDS", "DEFAULT_IMPROVEMENT_MARGIN", "Improvement", "guard_metrics", "improvement"]

DEFAULT_IMPROVEMENT_MARGIN = 0.01
DEFAULT_GUARDS = {"classification": ("accuracy", "f1"), "regression": ("mae", "r2")}


class Improvement(BaseModel):
    primary_metric: str
    improvement: float  # relative, > 0: the challenger is better
    guard_metrics: list[str]
    guard_losses: list[str]  # guard metrics on which the champion wins


def guard_metrics(tag: str | None, task_type: str) -> list[str]:
    if tag is not None and tag.strip():
        return [m.strip() for m in tag.split(",") if m.strip()]
    return list(DEFAULT_GUARDS.get(task_type, ()))


def improvement(result: CompareResult, guards: list[str]) -> Improvement:
    """The decision's inputs from a comparison (the primary metric is never its own guard)."""
    by_name = {m.metric: m for m in result.metrics}
    primary = by_name[result.primary_metric]
    assert primary.champion is not None and primary.challenger is not None
    delta = primary.rel_delta if primary.rel_delta is not None else primary.challenger - primary.champion
    sign = 1.0 if primary.greater_is_better else -1.0
    checked = [g for g in guards if g != result.primary_metric and g in by_name]
    losses = [g for g in checked if by_name[g].winner == "champion"]
    return Improvement(primary_metric=result.primary_metric, improvement=sign * delta, guard_metrics=checked,
                       guard_losses=losses)
