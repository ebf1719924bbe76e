"""What a monitor run checks, as pure computation over a registry, a model version and data files.

- data drift per feature is the drift job's (``modelops_mlc.jobs.drift``);
- prediction drift is the same job over the model's outputs on reference and current data
  (chi-squared over predicted labels for a classifier, KS over predicted values for a regressor);
- performance, when the current data carries labels, is the metrics test on it, held against the
  version's recorded test results (its baseline); the fairness metrics come with it when the
  version tags a ``protected_attribute``;
- :func:`figures` turns all of that into the few numbers the ``mlc-monitor-criteria`` decision reads.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from modelops_mlc.errors import JobError, first_line

if TYPE_CHECKING:
    from modelops_mlc.jobs.results import DriftResult, FeatureDrift
    from modelops_mlc.registry import ModelVersionInfo, Registry

__all__ = [
    "FAIRNESS_METRICS",
    "MonitorFigures",
    "Performance",
    "columns_of",
    "figures",
    "model_drift",
    "performance",
    "prediction_drift",
    "relative_drop",
    "summary",
]

PREDICTION = "prediction"
FAIRNESS_METRICS = ("demographic_parity_difference", "equal_opportunity_difference")
# the metric whose relative drop the decision reads, and whether it grows when the model gets better
_DROP_METRIC = {"classification": ("accuracy", True), "regression": ("rmse", False)}


class Performance(BaseModel):
    """The metrics test on labelled current data, beside the version's baseline test results."""

    task_type: str
    rows: int
    metrics: dict[str, float] = Field(default_factory=dict)
    baseline: dict[str, float] = Field(default_factory=dict)
    baseline_source: str | None = None  # "recorded" (the version's last test) or "TEST_DATA" (tested now)
    run_id: str | None = None


class MonitorFigures(BaseModel):
    """The inputs of the monitor decision (all optional but the drift ones)."""

    max_psi: float | None = None
    max_psi_feature: str | None = None
    drifted_features: int = 0
    prediction_psi: float | None = None
    performance_metric: str | None = None
    baseline: float | None = None
    current: float | None = None
    accuracy_drop: float | None = None
    fairness_metric: str | None = None
    fairness_gap: float | None = None


def columns_of(path: str | os.PathLike[str]) -> list[str]:
    """Column names of a CSV or Parquet file, read from its header only."""
    from modelops_mlc.jobs._data import file_format

    p = Path(str(path))
    try:
        if file_format(p) == "parquet":
            import pyarrow.parquet as pq

            return list(pq.read_schema(p).names)
        import pandas as pd

        return [str(c) for c in pd.read_csv(p, nrows=0).columns]
    except Exception as exc:
        raise JobError(f"cannot read the columns of {p}: {first_line(exc)}") from exc


def prediction_drift(registry: "Registry", info: "ModelVersionInfo", reference: str | os.PathLike[str],
                     current: str | os.PathLike[str], *, features: list[str] | None = None) -> "FeatureDrift":
    """Drift of the model's outputs: its predictions on ``reference`` against those on ``current``."""
    import pandas as pd

    from modelops_mlc.jobs import drift
    from modelops_mlc.jobs._data import read_frame, require_file, require_signature_types

    model = registry.load_pyfunc(info)
    outputs = {}
    for what, path in (("reference", reference), ("current", current)):
        df = read_frame(require_file(path, f"{what} data"), f"{what} data")
        cols = features or [c for c in df.columns if c != (info.tags.get("target") or "target")]
        missing = [c for c in cols if c not in df.columns]
        if missing:
            raise JobError(f"{what} data lacks the model's input columns {', '.join(missing)}")
        require_signature_types(df[cols], info.signature, f"{what} data")  # one line, not MLflow's frame dump
        try:
            predicted = model.predict(df[cols])
        except Exception as exc:
            raise JobError(f"{info.model_id} cannot predict on the {what} data: {first_line(exc)}") from exc
        values = pd.DataFrame(predicted).iloc[:, 0] if getattr(predicted, "ndim", 1) > 1 else pd.Series(predicted)
        outputs[what] = pd.DataFrame({PREDICTION: values.to_numpy()})
    labels = _is_classifier(info, outputs["reference"][PREDICTION])
    result = drift(outputs["reference"], outputs["current"], categorical=[PREDICTION] if labels else None)
    return result.features[0]


def model_drift(registry: "Registry", model_id: str, current: str | os.PathLike[str],
                reference: str | os.PathLike[str] | None = None, *, predictions: bool = False,
                features: list[str] | None = None, **options: Any) -> tuple["DriftResult", "FeatureDrift | None", str]:
    """Drift of ``current`` against ``reference`` (default: the version's TRAINING_DATA asset) over
    ``features`` (default: the model's input columns from its signature; without one every shared
    column but its ``target`` tag), and with ``predictions`` the drift of its outputs. ``options``
    go to the drift job (bins, binning, categorical). Returns (data drift, prediction drift, reference)."""
    from modelops_mlc.errors import MissingDataError
    from modelops_mlc.jobs import drift

    info = registry.get_version(model_id)
    features = features or info.input_columns()
    if reference is None:
        path = registry.asset_path(info, "TRAINING_DATA")
        if path is None:
            raise MissingDataError(f"no reference data given and {info.model_id} has no TRAINING_DATA asset to compare with")
        reference = path
    exclude = None if features else [info.tags.get("target") or "target"]
    result = drift(str(reference), str(current), features=features, exclude=exclude, **options)
    found = prediction_drift(registry, info, reference, current, features=info.input_columns()) if predictions else None
    return result, found, str(reference)


def _is_classifier(info: "ModelVersionInfo", predictions: Any) -> bool:
    declared = (info.tags.get("task_type") or "").strip().lower()
    if declared:
        return declared.startswith("classif")
    import pandas as pd

    return not pd.api.types.is_float_dtype(predictions) or predictions.nunique() <= 20


def performance(registry: "Registry", info: "ModelVersionInfo", current: str | os.PathLike[str]) -> Performance:
    """The metrics test on ``current`` (not recorded on the version: the baseline stays the baseline).

    The baseline is the version's recorded test results; a version never tested is tested on its
    TEST_DATA asset first (and that result recorded, as `mlc model test` would). Without either
    the baseline is empty and no drop can be computed.
    """
    from modelops_mlc.jobs import metrics_test

    result = metrics_test(registry, info.model_id, data_path=current, record=False, plots=False)
    baseline = dict((info.test_results or {}).get("metrics") or {})
    source = "recorded" if baseline else None
    if not baseline and "TEST_DATA" in info.assets:
        baseline = dict(metrics_test(registry, info.model_id, plots=False).metrics)
        source = "TEST_DATA"
    return Performance(task_type=result.task_type, rows=result.rows, metrics=dict(result.metrics),
                       baseline={k: float(v) for k, v in baseline.items() if isinstance(v, (int, float))},
                       baseline_source=source, run_id=result.run_id)


def relative_drop(task_type: str, baseline: dict[str, float], current: dict[str, float]) -> tuple[str | None, float | None]:
    """(metric, relative drop): accuracy lost for a classifier, rmse gained for a regressor, as a
    share of the baseline (0.12 = 12 % worse); None when either side lacks the metric."""
    metric, greater_is_better = _DROP_METRIC.get(task_type, (None, True))
    if metric is None or metric not in baseline or metric not in current or not baseline[metric]:
        return metric, None
    base, cur = float(baseline[metric]), float(current[metric])
    drop = (base - cur) / abs(base) if greater_is_better else (cur - base) / abs(base)
    return metric, drop


def figures(drift_results: dict[str, Any], perf: Performance | None = None) -> MonitorFigures:
    """The decision's inputs from a drift topic result (``DRIFT_RESULTS``) and an optional performance check."""
    features = drift_results.get("features") or {}
    psis = {name: f.get("psi") for name, f in features.items() if isinstance(f.get("psi"), (int, float))}
    out = MonitorFigures(drifted_features=len(drift_results.get("drifted_features") or []))
    if psis:
        out.max_psi_feature = max(psis, key=psis.__getitem__)
        out.max_psi = float(psis[out.max_psi_feature])
    prediction = drift_results.get("prediction") or {}
    if isinstance(prediction.get("psi"), (int, float)):
        out.prediction_psi = float(prediction["psi"])
    if perf is not None:
        metric, drop = relative_drop(perf.task_type, perf.baseline, perf.metrics)
        out.performance_metric = metric
        out.baseline = perf.baseline.get(metric) if metric else None
        out.current = perf.metrics.get(metric) if metric else None
        out.accuracy_drop = drop
        for name in FAIRNESS_METRICS:
            if name in perf.metrics:
                out.fairness_metric, out.fairness_gap = name, float(perf.metrics[name])
                break
    return out


def summary(found: MonitorFigures) -> str:
    """The figures in one line, as a ticket or a notification quotes them."""
    parts = []
    if found.max_psi is not None:
        parts.append(f"largest PSI {found.max_psi:.3f}" + (f" ({found.max_psi_feature})" if found.max_psi_feature else ""))
    parts.append(f"{found.drifted_features} feature{'s' if found.drifted_features != 1 else ''} drifted")
    if found.prediction_psi is not None:
        parts.append(f"prediction PSI {found.prediction_psi:.3f}")
    if found.current is not None and found.baseline is not None and found.accuracy_drop is not None:
        change = f"{abs(found.accuracy_drop):.1%} {'worse' if found.accuracy_drop > 0 else 'better'}"
        parts.append(f"{found.performance_metric} {found.current:.3f} against a baseline of {found.baseline:.3f} "
                     f"({change})")
    elif found.current is not None:
        parts.append(f"{found.performance_metric} {found.current:.3f} (no baseline)")
    if found.fairness_gap is not None:
        parts.append(f"{found.fairness_metric} {found.fairness_gap:.3f}")
    return ", ".join(parts)
