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
import queue
import threading
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

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
        return [json_safe(arr.item())]
    return json_safe(arr.tolist())


class _Marker:
    """Put on the queue by :meth:`PredictionLog.flush`; set once everything before it is written."""

    def __init__(self) -> None:
        self.done = threading.Event()


class PredictionLog:
    """A bounded queue of predictions and the thread that writes them to the MLC store in batches."""

    def __init__(self, settings: "Settings", *, capacity: int = 20_000, batch: int = 1_000,
                 interval: float = 0.25) -> None:
        self.settings = settings
        self.batch = batch
        self.interval = interval
        self.rows_written = 0
        self.dropped = 0
        self._queue: queue.Queue[LoggedPrediction | _Marker] = queue.Queue(maxsize=capacity)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._thread_lock = threading.Lock()

    def put(self, entry: LoggedPrediction) -> None:
        """Queue ``entry``; never blocks (a full queue drops it and counts the drop)."""
        try:
            self._queue.put_nowait(entry)
        except queue.Full:
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 10_000 == 0:
                log.warning("prediction log queue is full: %d predictions not logged so far", self.dropped)

    def start(self) -> None:
        with self._thread_lock:
            if self._thread is not None and self._thread.is_alive():
                return
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="mlc-prediction-log", daemon=True)
            self._thread.start()

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every prediction queued before this call is written; False on timeout or when stopped."""
        if self._thread is None or not self._thread.is_alive():
            return False
        marker = _Marker()
        try:
            self._queue.put(marker, timeout=timeout)
        except queue.Full:
            return False
        return marker.done.wait(timeout)

    def stop(self, timeout: float = 10.0) -> None:
        """Write what is queued, then end the writer thread (idempotent)."""
        with self._thread_lock:
            thread, self._thread = self._thread, None
        self._stop.set()
        if thread is not None:
            thread.join(timeout)

    # -- the writer thread --------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            try:
                first = self._queue.get(timeout=self.interval)
            except queue.Empty:
                if self._stop.is_set():
                    return
                continue
            items = [first]
            while len(items) < self.batch:
                try:
                    items.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            self._write(items)

    def _write(self, items: list[LoggedPrediction | _Marker]) -> None:
        from sqlalchemy import insert

        from modelops_mlc.runtimes.models import PredictionRow
        from modelops_mlc.store import open_store

        entries = [e for e in items if isinstance(e, LoggedPrediction)]
        records: list[dict[str, Any]] = []
        for e in entries:
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
            try:
                with open_store(self.settings).session() as s:
                    s.execute(insert(PredictionRow), records)
                self.rows_written += len(records)
            except Exception as exc:  # the store away or locked for too long: count the loss, keep serving
                self.dropped += len(entries)
                log.warning("prediction log: %d predictions not written: %s", len(entries), exc)
        for item in items:
            if isinstance(item, _Marker):
                item.done.set()
