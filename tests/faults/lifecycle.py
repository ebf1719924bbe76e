"""What the fault scenarios drive: a scikit-learn model registered in a throwaway MLflow registry,
its labelled test data (and the same with its labels flipped, which fails the criteria), bpmn/
deployed to the engine, and the environment a worker or the CLI gets for that home."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path

from modelops_mlc.config import Settings
from modelops_mlc.engine import EngineClient
from tests.support.home import home_env, home_settings

ROOT = Path(__file__).resolve().parents[2]
BACK_TEST = "mlc-run-back-test"


@dataclass
class Home:
    path: Path
    env: dict[str, str]
    settings: Settings
    model: str
    good: Path  # labelled test data: the back test passes and notifies
    flipped: Path  # labels flipped: the criteria fail and a ticket opens

    def back_test(self, client: EngineClient, data: Path, **extra: object) -> str:
        """Start one mlc-run-back-test on ``data``; returns the instance id."""
        started = client.request("POST", f"/process-definition/key/{BACK_TEST}/start", json={"variables": {
            k: {"value": v} for k, v in {"MODEL_ID": self.model, "INPUT_FILE": str(data), "TICKET_SYSTEM": "local",
                                          **extra}.items()}})
        return str(started["id"])


def make_home(path: Path, engine_url: str, *, rows: int = 2000, deploy: bool = True,
              tags: dict[str, str] | None = None, training_data: bool = False, **extra: str) -> Home:
    """Register the model (version 1, with ``tags``; its TEST_DATA, and TRAINING_DATA when asked)
    under ``path`` and deploy bpmn/ to the engine."""
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from modelops_mlc.registry import Registry

    path.mkdir(parents=True, exist_ok=True)
    env = home_env(path, engine_url, **extra)
    settings = home_settings(env)
    frame = load_breast_cancer(as_frame=True).frame
    frame.columns = [c.replace(" ", "_") for c in frame.columns]
    x, y = frame.drop(columns="target"), frame["target"]
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(x, y)
    test = frame.sample(rows, replace=True, random_state=1)
    good, flipped = path / "test.csv", path / "flipped.csv"
    test.to_csv(good, index=False)
    test.assign(target=1 - test["target"]).to_csv(flipped, index=False)
    name = f"fault-{uuid.uuid4().hex[:6]}"
    assets = {"TEST_DATA": str(good), **({"TRAINING_DATA": str(good)} if training_data else {})}
    Registry(settings).register(name, estimator=model, tags={"target": "target", **(tags or {})}, assets=assets,
                                input_example=x.head(3))
    if deploy:
        with EngineClient(settings) as client:
            client.deploy_processes([ROOT / "bpmn"], name="mlc-faults")
    return Home(path, env, settings, name, good, flipped)
