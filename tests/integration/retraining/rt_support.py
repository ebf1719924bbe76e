"""Helpers of the retrain integration tests: the module's environment, a champion model, starting
a retrain and waiting for the end event it reaches."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select

from modelops_mlc.config import Settings
from modelops_mlc.engine import EngineClient
from modelops_mlc.retraining.models import TrainingJobRow
from modelops_mlc.store import open_store
from tests.support.waiting import wait_for

ROOT = Path(__file__).resolve().parents[3]
PROCESS_FILES = [ROOT / "bpmn" / "retrain.bpmn", ROOT / "bpmn" / "mlc-retrain-decision.dmn"]


@dataclass
class RetrainEnv:
    home: Path
    env: dict[str, str]
    settings: Settings
    client: EngineClient
    data: dict[str, Path]
    frames: dict[str, Any]


def register_champion(rt: RetrainEnv, *, data: str = "train", tags: dict[str, str] | None = None) -> str:
    """A fresh model: version 1, fitted on ``data``, with TRAINING_DATA and TEST_DATA, alias champion."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from modelops_mlc.registry import Registry

    frame = rt.frames[data]
    x, y = frame.drop(columns=["target"]), frame["target"]
    name = f"rt-{uuid.uuid4().hex[:8]}"
    registry = Registry(rt.settings)
    registry.register(name, estimator=make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(x, y),
                      tags={"target": "target", **(tags or {})}, input_example=x.head(3),
                      assets={"TRAINING_DATA": str(rt.data[data]), "TEST_DATA": str(rt.data["test"])})
    registry.set_alias(name, "champion", 1)
    return name


def start_retrain(rt: RetrainEnv, name: str, **variables: Any) -> str:
    """Fire mlc.retrain the way `mlc retrain` does; returns the instance it started."""
    from modelops_mlc.retraining.trigger import request_retrain

    started = request_retrain(rt.settings, name, extra={"TRAIN_POLL_INTERVAL": "PT1S", **variables})
    assert started.process_instance_id, "no mlc-retrain instance started"
    return started.process_instance_id


def end_of(rt: RetrainEnv, instance_id: str, timeout: float = 180) -> str:
    """Wait for the instance to end; the id of the end event it reached (incidents fail at once)."""
    def ended() -> str | None:
        incidents = rt.client.incidents(process_instance_id=instance_id)
        assert not incidents, f"incident: {incidents[0].activity_id}: {incidents[0].message}"
        if rt.client.history_instance(instance_id).state == "ACTIVE":
            return None
        ends = [a.activity_id for a in rt.client.history_activities(instance_id) if a.activity_type.endswith("EndEvent")]
        return ends[-1] if ends else "?"

    return wait_for(ended, timeout=timeout, what=f"retrain {instance_id} to end")


def passed(rt: RetrainEnv, instance_id: str, activity: str) -> bool:
    return any(a.activity_id == activity for a in rt.client.history_activities(instance_id))


def jobs_of(rt: RetrainEnv, name: str) -> list[TrainingJobRow]:
    with open_store(rt.settings).session() as s:
        return list(s.execute(select(TrainingJobRow).where(TrainingJobRow.model_name == name)).scalars())
