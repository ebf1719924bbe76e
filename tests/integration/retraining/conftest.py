"""Retraining on the real engine with real workers: one `mlc worker start` per test (serving only
mlc-retrain), bpmn/retrain.bpmn and its decision deployed, a real MLflow sqlite registry, and
models trained on the breast cancer data set."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from modelops_mlc.engine import EngineClient
from rt_support import PROCESS_FILES, RetrainEnv
from tests.integration.workers.wt_support import WorkerProcess
from tests.support.home import home_env, home_settings

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]


@pytest.fixture(scope="package")
def rt(engine: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RetrainEnv]:
    from sklearn.datasets import load_breast_cancer
    from sklearn.model_selection import train_test_split

    home = tmp_path_factory.mktemp("rt-home")
    path = os.pathsep.join([str(HERE), str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env = home_env(home, engine.url, PYTHONPATH=path)
    settings = home_settings(env)
    frame = load_breast_cancer(as_frame=True).frame
    frame.columns = [c.replace(" ", "_") for c in frame.columns]
    train, test = train_test_split(frame, test_size=0.4, random_state=3, stratify=frame["target"])
    flipped = train.copy()
    flipped["target"] = 1 - flipped["target"]
    broken = train.drop(columns=["mean_area"]).copy()
    broken["mean_radius"] = broken["mean_radius"] * 1000  # a unit change
    frames = {"train": train, "test": test, "flipped": flipped, "broken": broken, "small": train.head(40)}
    d = home / "data"
    d.mkdir()
    data = {}
    for name, df in frames.items():
        data[name] = d / f"{name}.csv"
        df.to_csv(data[name], index=False)
    client = EngineClient(settings)
    client.deploy_processes(PROCESS_FILES, name="mlc-retrain-tests")
    yield RetrainEnv(home=home, env=env, settings=settings, client=client, data=data, frames=frames)
    client.close()


def _start(rt: RetrainEnv, log: Path) -> WorkerProcess:
    # A short lock: what a killed worker had locked comes back to the next one within seconds
    # (the worker extends the locks of the tasks it runs).
    return WorkerProcess(rt.env, rt.home, ["--process-key", "mlc-retrain", "--long-poll", "1000",
                                           "--lock-duration", "5000"], log).wait_ready()


@pytest.fixture(scope="module")
def shared_worker(rt: RetrainEnv, tmp_path_factory: pytest.TempPathFactory) -> Iterator[WorkerProcess]:
    """One real `mlc worker start` serving mlc-retrain for a whole test module."""
    w = _start(rt, tmp_path_factory.mktemp("rt-worker") / "worker.log")
    yield w
    w.close()


@pytest.fixture
def worker(rt: RetrainEnv, tmp_path: Path) -> Iterator[Callable[[], WorkerProcess]]:
    """``worker()`` starts a real `mlc worker start` serving mlc-retrain; all are killed at teardown."""
    started: list[WorkerProcess] = []

    def start() -> WorkerProcess:
        started.append(_start(rt, tmp_path / f"worker-{len(started)}.log"))
        return started[-1]

    yield start
    for w in started:
        w.close()
