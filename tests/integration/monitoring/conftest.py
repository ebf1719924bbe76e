"""Fixtures of the monitor tests: an installation (MLflow registry, MLC store) on the session's
engine with bpmn/ deployed, the real `mlc` CLI in it, a real worker for mlc-monitor, and a
scikit-learn model with its training and test data."""

from __future__ import annotations

import os
import signal
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from modelops_mlc.config import Settings
from modelops_mlc.engine import EngineClient
from tests.conftest import mlc_command
from tests.support.home import home_env, home_settings
from tests.support.waiting import wait_for

ROOT = Path(__file__).resolve().parents[3]
FEATURES = [f"f{i}" for i in range(8)]  # f0-f3 informative, f4-f7 noise (make_classification, shuffle=False)


@dataclass
class Installation:
    home: Path
    env: dict[str, str]
    settings: Settings
    client: EngineClient
    models: list[str] = field(default_factory=list)

    def mlc(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*mlc_command(), *map(str, args)], env=self.env, capture_output=True, text=True,
                              timeout=timeout, cwd=self.home)

    def cleanup(self) -> None:
        """Delete what the tests left running on the shared engine (schedules, monitors, retrains)."""
        for name in self.models:
            for key in ("mlc-monitor-schedule", "mlc-retrain-schedule", "mlc-monitor", "mlc-retrain"):
                for instance in self.client.instances(process_key=key, active_only=True, model_id=name):
                    try:
                        self.client.request("DELETE", f"/process-instance/{instance.id}",
                                            params={"skipCustomListeners": "true"})
                    except Exception:  # ended meanwhile
                        pass


@pytest.fixture(scope="module")
def installation(engine: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installation]:
    home = tmp_path_factory.mktemp("monitor-home")
    env = home_env(home, engine.url, MLC_TICKET_SYSTEM="local")
    settings = home_settings(env)
    client = EngineClient(settings)
    client.deploy_processes([ROOT / "bpmn"], name="mlc-monitor-tests")
    inst = Installation(home=home, env=env, settings=settings, client=client)
    try:
        yield inst
    finally:
        inst.cleanup()
        client.close()


@pytest.fixture(scope="module")
def worker(installation: Installation) -> Iterator[subprocess.Popen[bytes]]:
    """A real `mlc worker start` that takes only mlc-monitor tasks."""
    worker_id = f"monitor-{uuid.uuid4().hex[:6]}"
    log = (installation.home / "worker.log").open("w")
    proc = subprocess.Popen([*mlc_command(), "worker", "start", "--process-key", "mlc-monitor", "--worker-id", worker_id,
                             "--log-format", "json"], env=installation.env, stdout=log, stderr=subprocess.STDOUT,
                            cwd=installation.home, start_new_session=True)
    status = installation.home / "workers" / f"{worker_id}.json"
    try:
        wait_for(lambda: status.exists() or proc.poll() is not None, timeout=60, what="the worker to start")
        assert proc.poll() is None, (installation.home / "worker.log").read_text()
        yield proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=30)
        log.close()


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A classification data set in three parts: training, test and recent (current) data."""
    import pandas as pd
    from sklearn.datasets import make_classification

    x, y = make_classification(n_samples=12_000, n_features=8, n_informative=4, n_redundant=0, shuffle=False,
                               random_state=7)
    frame = pd.DataFrame(x, columns=FEATURES)
    frame["target"] = y
    frame = frame.sample(frac=1.0, random_state=7).reset_index(drop=True)  # rows come ordered by class
    d = tmp_path_factory.mktemp("monitor-data")
    parts = {"train": frame.iloc[:6000], "test": frame.iloc[6000:9000], "current": frame.iloc[9000:]}
    paths = {}
    for name, part in parts.items():
        paths[name] = d / f"{name}.csv"
        part.to_csv(paths[name], index=False)
    return {"dir": d, "paths": paths, **parts}


@pytest.fixture(scope="module")
def model(installation: Installation, data: dict[str, Any]) -> str:
    """A logistic regression registered with TRAINING_DATA and TEST_DATA assets."""
    from sklearn.linear_model import LogisticRegression

    from modelops_mlc.registry import Registry

    name = f"monitored-{uuid.uuid4().hex[:6]}"
    train = data["train"]
    estimator = LogisticRegression(max_iter=1000).fit(train[FEATURES], train["target"])
    Registry(installation.settings).register(
        name, estimator=estimator, tags={"target": "target"}, input_example=train[FEATURES].head(3),
        assets={"TRAINING_DATA": str(data["paths"]["train"]), "TEST_DATA": str(data["paths"]["test"])},
    )
    installation.models.append(name)
    return name
