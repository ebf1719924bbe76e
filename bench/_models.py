"""The benchmarks' model: a small scikit-learn pipeline on the bundled diabetes data, registered in
a throwaway MLflow registry (sqlite) under a temporary MLC_HOME."""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from modelops_mlc.config import Settings

MODEL_NAME = "bench-diabetes"


def bench_env(home: Path) -> dict[str, str]:
    """Environment for processes that share the temporary home, registry and MLC store."""
    return {
        **os.environ,
        "MLC_HOME": str(home),
        "MLFLOW_TRACKING_URI": f"sqlite:///{home / 'mlflow.db'}",
        "MLC_STORE_URL": f"sqlite:///{home / 'mlc.db'}",
        "PYTHONPATH": str(Path(__file__).resolve().parents[1]),
        "PYTHONWARNINGS": "ignore",
        # tools a venv's scripts start by name (mlflow models serve runs `uvicorn`) come from this venv
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
    }


@contextmanager
def bench_home(prefix: str, engine_url: str | None = None) -> Iterator[tuple[Path, dict[str, str], "Settings"]]:
    """A temporary work directory with a home in it (MLflow registry, MLC store), the environment of the
    processes that share it and its Settings, on ``engine_url`` or a throwaway local engine for the run."""
    from bench.run import local_engine
    from modelops_mlc.config import Settings

    with tempfile.TemporaryDirectory(prefix=prefix) as tmp, ExitStack() as stack:
        work = Path(tmp)
        home = work / "home"
        home.mkdir()
        env = bench_env(home)
        env["MLC_ENGINE_URL"] = url = engine_url or stack.enter_context(local_engine())
        yield work, env, Settings(home=home, engine_url=url, mlflow_tracking_uri=env["MLFLOW_TRACKING_URI"],
                                  store_url=env["MLC_STORE_URL"])


def features() -> Any:
    """The diabetes features as a DataFrame (442 rows x 10 float columns)."""
    from sklearn.datasets import load_diabetes

    return load_diabetes(as_frame=True).frame.drop(columns="target")


def register_model(home: Path, tags: dict[str, str] | None = None) -> str:
    """Fit StandardScaler + Ridge on diabetes, register it as version 1; returns ``name/1``."""
    from sklearn.datasets import load_diabetes
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from modelops_mlc.config import Settings
    from modelops_mlc.registry import Registry

    X, y = load_diabetes(return_X_y=True, as_frame=True)
    model = make_pipeline(StandardScaler(), Ridge()).fit(X, y)
    settings = Settings(home=home, mlflow_tracking_uri=f"sqlite:///{home / 'mlflow.db'}",
                        store_url=f"sqlite:///{home / 'mlc.db'}")
    info = Registry(settings).register(MODEL_NAME, estimator=model, input_example=X.head(5), tags=tags)
    return f"{info.name}/{info.version}"


def write_rows(path: Path, rows: int, seed: int = 0, chunk: int = 500_000) -> None:
    """Write ``rows`` rows resampled from diabetes (plus noise) as Parquet, a chunk at a time."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    base = features()
    values = base.to_numpy()
    rng = np.random.default_rng(seed)
    writer = None
    try:
        for start in range(0, rows, chunk):
            n = min(chunk, rows - start)
            block = values[rng.integers(0, len(values), n)] + rng.normal(0, 0.005, (n, values.shape[1]))
            table = pa.table({c: block[:, i] for i, c in enumerate(base.columns)})
            if writer is None:
                writer = pq.ParquetWriter(path, table.schema)
            writer.write_table(table)
    finally:
        if writer is not None:
            writer.close()
