"""Shadow mode on the model server: live requests, once answered, are predicted again by the model's
shadow versions on a background thread, and those predictions go to the prediction log with role
``shadow``. The caller only ever sees the primary's answer."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from modelops_mlc.runtimes.background import BackgroundQueue
from modelops_mlc.runtimes.predlog import ROLE_SHADOW, LoggedPrediction, PredictionLog

if TYPE_CHECKING:
    from modelops_mlc.runtimes.predictor import Batch
    from modelops_mlc.runtimes.server import Served

__all__ = ["Mirrored", "ShadowMirror"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Mirrored:
    """A live request to replay: ``decode`` rebuilds its rows for a predictor's input columns."""

    request_id: str
    at: dt.datetime
    targets: Sequence["Served"]
    decode: Callable[[list[str] | None], "Batch"]


class ShadowMirror(BackgroundQueue[Mirrored]):
    """Replays answered requests on the shadow versions and logs what they predict."""

    def __init__(self, predlog: PredictionLog, *, capacity: int = 2_000) -> None:
        super().__init__("mlc-shadow-mirror", capacity=capacity, batch=64, interval=0.25)
        self.predlog = predlog
        self.predicted = 0
        self.failed = 0

    def handle(self, items: list[Mirrored]) -> None:
        for item in items:
            for target in item.targets:
                try:
                    predictions = target.predictor.predict(item.decode(target.predictor.columns))
                except Exception as exc:  # a shadow that cannot take the request never affects serving
                    self.failed += 1
                    log.info("shadow %s/%s could not predict request %s: %s", target.name, target.version,
                             item.request_id, exc)
                    continue
                self.predicted += 1
                self.predlog.put(LoggedPrediction(item.request_id, target.deployment_id, target.name,
                                                  target.version, ROLE_SHADOW, predictions, item.at))
