"""Typed results of the ML jobs. Each lists the data it read (``inputs``) and wrote (``outputs``)
as URIs with sha256 hashes, which is what the lineage graph is drawn from."""

from __future__ import annotations

from typing import Any, Literal, get_args

from pydantic import BaseModel, Field

__all__ = [
    "CompareResult",
    "DataRef",
    "DriftResult",
    "FeatureDrift",
    "MetricComparison",
    "ScoreResult",
    "TestResult",
    "TrainResult",
    "VERDICTS",
    "Verdict",
]

# The monitor's vocabulary, mildest first: the drift job's verdicts and mlc-monitor-criteria's outputs.
Verdict = Literal["ok", "notify", "investigate", "retrain"]
VERDICTS: tuple[str, ...] = get_args(Verdict)


class DataRef(BaseModel):
    """One thing a job read or wrote: a file/artifact URI (or ``models:/name/version``) and its hash."""

    uri: str
    sha256: str | None = None
    role: str | None = None
    rows: int | None = None


class _JobResult(BaseModel):
    inputs: list[DataRef] = Field(default_factory=list)
    outputs: list[DataRef] = Field(default_factory=list)
    duration_s: float | None = None


class TrainResult(_JobResult):
    model_name: str
    version: int
    parent_version: int | None
    run_id: str
    seed: int
    entrypoint: str
    params: dict[str, Any] = Field(default_factory=dict)
    metrics: dict[str, float] = Field(default_factory=dict)
    rows: int = 0


class TestResult(_JobResult):
    __test__ = False  # not a pytest test class

    model_name: str
    version: int
    task_type: Literal["classification", "regression"]
    metrics: dict[str, float] = Field(default_factory=dict)
    confusion_matrix: dict[str, Any] | None = None
    rows: int = 0
    target: str = "target"
    run_id: str | None = None
    output_path: str | None = None


class MetricComparison(BaseModel):
    metric: str
    champion: float | None
    challenger: float | None
    greater_is_better: bool
    winner: Literal["champion", "challenger", "tie"] | None
    abs_delta: float | None
    rel_delta: float | None


class CompareResult(_JobResult):
    model_name: str
    champion_version: int
    challenger_version: int
    task_type: Literal["classification", "regression"]
    primary_metric: str
    winner: Literal["champion", "challenger"]
    metrics: list[MetricComparison] = Field(default_factory=list)
    thresholds_passed: bool | None = None
    threshold_failures: list[str] = Field(default_factory=list)
    run_id: str | None = None
    rows: int = 0

    def as_table(self) -> dict[str, dict[str, Any]]:
        return {m.metric: m.model_dump(exclude={"metric"}) for m in self.metrics}


class ScoreResult(_JobResult):
    model_name: str
    version: int
    rows: int
    chunks: int
    output_path: str
    output_sha256: str
    extra_columns: list[str] = Field(default_factory=list)
    run_id: str | None = None


class FeatureDrift(BaseModel):
    feature: str
    kind: Literal["numeric", "categorical"]
    psi: float
    test: Literal["ks", "chi2"]
    statistic: float
    p_value: float
    verdict: Verdict
    drifted: bool
    reference_missing: float = 0.0
    current_missing: float = 0.0


class DriftResult(_JobResult):
    verdict: Verdict
    features: list[FeatureDrift] = Field(default_factory=list)
    reference_rows: int = 0
    current_rows: int = 0
    drifted_features: list[str] = Field(default_factory=list)
    skipped_features: dict[str, str] = Field(default_factory=dict)
    thresholds: dict[str, float] = Field(default_factory=dict)
    binning: str = "quantile"
    bins: int = 10
