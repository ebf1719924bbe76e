"""Start a retrain: the signal ``mlc.retrain`` with the contract's variables, for `mlc retrain`
and any script that wants the process instance it started.

The user who fires it (the audit actor, :mod:`modelops_mlc.insight.actor`) is its submitter,
``SUBMITTED_BY``: under separation of duties (``retrain-claim`` turns it on for a
``governance_level=production`` model) they cannot approve the challenger. A retrain fired by a
worker, the monitor or a schedule has no human submitter; its approval must still come from a
named reviewer."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from modelops_mlc.errors import UsageError

if TYPE_CHECKING:
    from modelops_mlc.config import Settings

__all__ = ["PROCESS_KEY", "SIGNAL", "RetrainRequest", "request_retrain"]

SIGNAL = "mlc.retrain"
PROCESS_KEY = "mlc-retrain"


class RetrainRequest(BaseModel):
    """What was asked for, and the instance the signal started (None if mlc-retrain is not deployed)."""

    model_id: str
    request_id: str
    process_instance_id: str | None
    variables: dict[str, Any]


def request_retrain(
    settings: "Settings",
    model_id: str,
    *,
    training_data: str | Path | None = None,
    improvement_margin: float | None = None,
    trigger: str = "cli",
    extra: Mapping[str, Any] | None = None,
) -> RetrainRequest:
    """Fire ``mlc.retrain`` for a registered model; the instance is found by ``RETRAIN_REQUEST``."""
    from modelops_mlc.engine import EngineClient
    from modelops_mlc.insight.actor import current_actor
    from modelops_mlc.registry import Registry, parse_model_id

    variables: dict[str, Any] = {**dict(extra or {}), "MODEL_ID": model_id, "RETRAIN_TRIGGER": trigger,
                                 "RETRAIN_REQUEST": uuid.uuid4().hex}
    actor = current_actor().name
    if actor.startswith("user:"):  # the user who asks is the submitter (a --var cannot name another); a worker is none
        variables["SUBMITTED_BY"] = actor.removeprefix("user:")
    if training_data is not None:
        path = Path(training_data).expanduser()
        if not path.is_file():
            raise UsageError(f"training data not found: {path}")
        variables["TRAINING_DATA"] = str(path.resolve())
    if improvement_margin is not None:
        if improvement_margin < 0:
            raise UsageError(f"the improvement margin must be 0 or more, got {improvement_margin}")
        variables["IMPROVEMENT_MARGIN"] = float(improvement_margin)
    Registry(settings).get_model(parse_model_id(model_id)[0])  # an unknown model is the caller's mistake, not a ticket
    with EngineClient(settings) as client:
        client.signal(SIGNAL, variables)  # returns once the started instance waits at its first task
        found = client.instances(process_key=PROCESS_KEY, variables={"RETRAIN_REQUEST": variables["RETRAIN_REQUEST"]},
                                 limit=1)
    return RetrainRequest(model_id=model_id, request_id=variables["RETRAIN_REQUEST"],
                          process_instance_id=found[0].id if found else None, variables=variables)
