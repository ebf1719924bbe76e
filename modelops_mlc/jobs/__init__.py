"""The ML jobs: pure functions over a registry, a model version and data, each returning a typed
result that lists what it read and wrote. No engine here; the workers call these."""

from modelops_mlc.jobs.drift import drift
from modelops_mlc.jobs.evaluate import compare, metrics_test
from modelops_mlc.jobs.results import (
    CompareResult,
    DataRef,
    DriftResult,
    FeatureDrift,
    MetricComparison,
    ScoreResult,
    TestResult,
    TrainResult,
)
from modelops_mlc.jobs.scoring import score
from modelops_mlc.jobs.train import train

__all__ = [
    "CompareResult",
    "DataRef",
    "DriftResult",
    "FeatureDrift",
    "MetricComparison",
    "ScoreResult",
    "TestResult",
    "TrainResult",
    "compare",
    "drift",
    "metrics_test",
    "score",
    "train",
]
