"""Validate new training data against the data a model was trained on: schema, nulls and ranges.

Pure computation over two frames (:func:`validate_frames`), plus :func:`validate_training_data`,
which reads the new file (or the model's TRAINING_DATA asset) and the version's TRAINING_DATA
asset as the reference. A problem is a sentence a ticket can quote; no problems means valid.

- **schema**: every reference column is present; a numeric reference column stays numeric;
  the target column is there and has labels.
- **nulls**: a column's share of nulls may grow by at most ``max_null_increase`` over the
  reference's (default 0.05); the target may have no nulls.
- **ranges**: at most ``max_out_of_range`` (default 1 %) of a numeric column's values may lie
  further than one reference span (max - min) outside the reference's [min, max] — what a unit
  change or garbage looks like, not what ordinary drift does.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel, Field

from modelops_mlc.jobs._data import read_frame, require_file, role_data
from modelops_mlc.jobs.results import DataRef

if TYPE_CHECKING:
    import pandas as pd

    from modelops_mlc.registry import Registry

__all__ = ["MAX_NULL_INCREASE", "MAX_OUT_OF_RANGE", "ValidationResult", "validate_frames", "validate_training_data"]

MAX_NULL_INCREASE = 0.05
MAX_OUT_OF_RANGE = 0.01


class ValidationResult(BaseModel):
    """The verdict on a data set: ``valid`` when ``problems`` is empty."""

    valid: bool
    problems: list[str] = Field(default_factory=list)
    rows: int = 0
    reference_rows: int = 0
    columns_checked: list[str] = Field(default_factory=list)
    inputs: list[DataRef] = Field(default_factory=list)


def _is_numeric(series: "pd.Series") -> bool:
    from pandas.api.types import is_bool_dtype, is_numeric_dtype

    return bool(is_numeric_dtype(series)) and not is_bool_dtype(series)


def validate_frames(
    reference: "pd.DataFrame",
    new: "pd.DataFrame",
    *,
    target: str | None = None,
    max_null_increase: float = MAX_NULL_INCREASE,
    max_out_of_range: float = MAX_OUT_OF_RANGE,
) -> ValidationResult:
    """Check ``new`` against ``reference``; every problem found is listed, not only the first."""
    problems: list[str] = []
    if len(new) == 0:
        problems.append("the new data has no rows")
    missing = [c for c in reference.columns if c not in new.columns]
    if missing:
        problems.append(f"missing columns: {', '.join(map(str, missing))}")
    if target is not None and target not in new.columns and target not in missing:
        problems.append(f"no target column {target!r}")
    checked = [c for c in reference.columns if c in new.columns]
    for column in checked:
        ref, cur = reference[column], new[column]
        ref_nulls = float(ref.isna().mean()) if len(ref) else 0.0
        cur_nulls = float(cur.isna().mean()) if len(cur) else 0.0
        if column == target and cur_nulls > 0:
            problems.append(f"target {column!r} has {cur.isna().sum()} null labels")
        elif cur_nulls > ref_nulls + max_null_increase:
            problems.append(f"column {column!r} is {cur_nulls:.1%} null (training data: {ref_nulls:.1%})")
        if not _is_numeric(ref):
            continue
        if not _is_numeric(cur):
            problems.append(f"column {column!r} is no longer numeric ({cur.dtype}, training data: {ref.dtype})")
            continue
        if column == target or ref.dropna().empty or cur.dropna().empty:
            continue
        low, high = float(ref.min()), float(ref.max())
        span = high - low
        values = cur.dropna()
        outside = float(((values < low - span) | (values > high + span)).mean())
        if outside > max_out_of_range:
            problems.append(f"column {column!r}: {outside:.1%} of values outside the training range "
                            f"[{low:.4g}, {high:.4g}] by more than its span (seen {float(values.min()):.4g} "
                            f"to {float(values.max()):.4g})")
    return ValidationResult(valid=not problems, problems=problems, rows=len(new), reference_rows=len(reference),
                            columns_checked=[str(c) for c in checked])


def validate_training_data(
    registry: "Registry",
    model_id: str,
    training_data: str | Path | None = None,
    *,
    max_null_increase: float = MAX_NULL_INCREASE,
    max_out_of_range: float = MAX_OUT_OF_RANGE,
) -> ValidationResult:
    """Validate ``training_data`` (else the version's own TRAINING_DATA) against that version's
    TRAINING_DATA asset, which must exist (MissingDataError otherwise)."""
    info = registry.get_version(model_id)
    ref_path, ref_in = role_data(registry, info, "TRAINING_DATA", None, what="training data", given_as="training data")
    if training_data is None:
        new_path, new_in = ref_path, ref_in
    else:
        new_path = require_file(training_data, "training data")
        new_in = DataRef(uri=str(new_path.resolve()), role="NEW_TRAINING_DATA")
    reference = read_frame(ref_path, "training data")
    new = reference if new_path == ref_path else read_frame(new_path, "new training data")
    result = validate_frames(reference, new, target=info.tags.get("target") or "target",
                             max_null_increase=max_null_increase, max_out_of_range=max_out_of_range)
    result.inputs = [DataRef(uri=info.uri, role="MODEL"), ref_in, new_in]
    return result
