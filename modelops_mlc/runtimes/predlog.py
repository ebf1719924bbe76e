"""The prediction log: every online prediction, row by row, in the MLC store, written off the request path.

The model server puts one :class:`LoggedPrediction` per answered (or mirrored) request on a bounded
queue and goes on serving; a background thread drains the queue in batches into ``mlc_predictions``.
A full queue drops entries (counted in :attr:`PredictionLog.dropped`) rather than slow serving down;
:meth:`PredictionLog.flush` waits until what was queued before it is written, and
:meth:`PredictionLog.stop` writes everything left.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from modelops_mlc.runtimes.background import BackgroundQueue
from modelops_mlc.serialize import json_safe

if TYPE_CHECKING:
    from modelops_mlc.config import Settings

__all__ = ["LoggedPrediction", "PredictionLog", "ROLE_PRIMARY", "ROLE_SHADOW", "new_request_id", "rows_of"]

log = logging.getLogger(__name__)

ROLE_PRIMARY = "primary"
ROLE_SHADOW = "shadow"
MAX_REQUEST_ID = 128


def new_request_id() -> str:
    return uuid.uuid4().hex


@dataclass(frozen=True, slots=True)
class LoggedPrediction:
    """One request's predictions as the model returned them (converted to rows by the writer thread)."""

    request_id: str
    deployment_id: int | None
    model: str
    version: str
    role: str
    predictions: Any
    at: dt.datetime


def rows_of(predictions: Any) -> list[Any]:
    """One JSON value per request row: the row's prediction, or a {output: value} object for several outputs."""
    import numpy as np

    if hasattr(predictions, "columns") and hasattr(predictions, "to_dict"):  # DataFrame
        columns = [str(c) for c in predictions.columns]
        if len(columns) == 1:
            return json_safe(predictions.iloc[:, 0].tolist())
        return [dict(zip(columns, values)) for values in json_safe(predictions.to_numpy().tolist())]
    if hasattr(predictions, "to_numpy"):  # Series
        predictions = predictions.to_numpy()
    if isinstance(predictions, dict):
        names = [str(k) for k in predictions]
        columns = [rows_of(v) for v in predictions.values()]
        if len(columns) == 1:
            return columns[0]
        return [dict(zip(names, values)) for values in zip(*columns)]
    arr = np.asarray(predictions)
    if arr.ndim == 0:
        arr = arr.reshape(1)
    if arr.dtype.kind in "iub" or arr.dtype.kind == "f" and np.isfinite(arr).all():
        return arr.tolist()  # plain Python numbers already
    return json_safe(arr.tolist())


class PredictionLog(BackgroundQueue[LoggedPrediction]):
    """The queue of predictions and the thread that writes them to the MLC store in batches."""

    def __init__(self, settings: "Settings", *, capacity: int = 20_000, batch: int = 5_000,
                 interval: float = 0.25, linger: float = 0.25) -> None:
        super().__init__("mlc-prediction-log", capacity=capacity, batch=batch, interval=interval, linger=linger)
        self.settings = settings
        self.rows_written = 0

    def put(self, entry: LoggedPrediction) -> None:
        """Queue ``entry``; never blocks (a full queue drops it and counts the drop)."""
        self.offer(entry)

    def handle(self, items: list[LoggedPrediction]) -> None:
        from modelops_mlc.runtimes.models import PredictionRow
        from modelops_mlc.store import open_store

        records: list[dict[str, Any]] = []
        for e in items:
            try:
                outputs = rows_of(e.predictions)
            except Exception as exc:  # an output the log cannot hold must not stop the log
                log.warning("prediction %s of %s/%s not logged: %s", e.request_id, e.model, e.version, exc)
                self.dropped += 1
                continue
            for i, output in enumerate(outputs):
                records.append({"request_id": e.request_id, "row": i, "deployment_id": e.deployment_id,
                                "model_name": e.model, "model_version": e.version, "role": e.role,
                                "output": output, "at": e.at})
        if records:
            with open_store(self.settings).session() as s:
                s.connection().execute(PredictionRow.__table__.insert(), records)  # Core: no ORM bookkeeping
            self.rows_written += len(records)
