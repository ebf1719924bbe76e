"""Fuzzing with hypothesis: the `mlc` command line against the session's engine, and a real
`mlc runtime serve` process on loopback hosting real MLflow models.

Two profiles: ``default`` (a few dozen examples per property, part of `make test`) and ``fuzz``
(many more, `make test-fuzz`, or ``HYPOTHESIS_PROFILE=fuzz``). No deadline: a request to a real
server or a CLI call against a real engine varies in time, and timings are never asserted.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, settings

from tests.integration.runtimes.conftest import RuntimeProcess, Stack, stack  # noqa: F401  (module fixture)

_COMMON = dict(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
               derandomize=False, print_blob=True)
settings.register_profile("default", **_COMMON)
settings.register_profile("fuzz", **_COMMON)
PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "default")
settings.load_profile(PROFILE)


def examples(n: int) -> settings:
    """``n`` examples in `make test`, 25 times as many under the ``fuzz`` profile."""
    return settings(max_examples=n * (25 if PROFILE == "fuzz" else 1))


@dataclass
class Served:
    """A runtime serving ``bc`` (numeric columns: the matrix fast path) and ``mixed`` (a string
    column: MLflow's pyfunc path with its schema enforcement)."""

    stack: Stack
    runtime: RuntimeProcess
    numeric_columns: list[str]
    mixed_columns: list[str]

    def log_text(self) -> str:
        return self.runtime.log.read_text(errors="replace")


def _mixed_model():
    """A pipeline over a string, an integer and a float column."""
    import numpy as np
    import pandas as pd
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    rng = np.random.default_rng(7)
    n = 200
    frame = pd.DataFrame({
        "kind": rng.choice(["a", "b", "c"], n),
        "count": rng.integers(0, 10, n).astype("int64"),
        "score": rng.normal(size=n),
    })
    y = (frame["score"] + (frame["kind"] == "a") > 0.5).astype(int)
    pipe = Pipeline([
        ("prep", ColumnTransformer([("kind", OneHotEncoder(handle_unknown="ignore"), ["kind"])], remainder="passthrough")),
        ("clf", LogisticRegression(max_iter=1000)),
    ]).fit(frame, y)
    return pipe, frame


@pytest.fixture(scope="module")
def served(stack: Stack) -> Iterator[Served]:  # noqa: F811
    from modelops_mlc.registry import Registry
    from modelops_mlc.runtimes import DeploymentManager

    registry = Registry(stack.settings)
    pipe, frame = _mixed_model()
    registry.register("mixed", estimator=pipe, input_example=frame.head(3), tags={"TAG": "credit"})
    runtime = stack.serve("fuzz-1", "stage=PROD", "tag=credit")
    manager = DeploymentManager(stack.settings)
    for name in ("bc", "mixed"):
        dep = manager.deploy(name, "1", "PROD")
        assert dep.state == "deployed", dep
    yield Served(stack, runtime, list(stack.X.columns), list(frame.columns))
