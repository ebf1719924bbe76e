"""Training entrypoints of the retrain tests, named by the version tag ``entrypoint`` as any
user's would be (modelops_mlc.jobs.train calls ``function(data, target=..., params=...)``)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any


def _fit(data: Any, target: str) -> Any:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(data.drop(columns=[target]), data[target])


def fit_when_released(data: Any, *, target: str, params: dict[str, Any]) -> Any:
    """Announce the job in ``params['started_file']``, then wait until ``params['release_file']``
    exists before fitting: a training job that lasts exactly as long as the test needs."""
    Path(params["started_file"]).write_text(str(os.getpid()))
    deadline = time.monotonic() + 300
    while not Path(params["release_file"]).exists():
        if time.monotonic() > deadline:
            raise TimeoutError("never released")
        time.sleep(0.1)
    return _fit(data, target)


def die(data: Any, *, target: str) -> Any:
    """The training process dies without a word, as an OOM kill would leave it."""
    os.kill(os.getpid(), signal.SIGKILL)
