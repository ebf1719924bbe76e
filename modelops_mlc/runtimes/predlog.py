"""The prediction log: every online prediction, row by row, in the MLC store, written off the request path.

The model server puts one :class:`LoggedPrediction` per answered (or mirrored) request on a bounded
queue and goes on serving; a background thread drains the queue in batches into ``mlc_predictions``.
A full queue drops entries (counted in :attr:`PredictionLog.dropped`) rather than slow serving down;
:meth:`PredictionLog.flush` waits until what was queued before it is written, and
:meth:`PredictionLog.stop` writes everything left. With ``MLC_PREDICTION_RETENTION`` set, the same
thread prunes what is older, at most once every ``PRUNE_EVERY_S``, after a write.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
import uuid
from collections.abc import Callable
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


PRUNE_EVERY_S = 3600.0  # how often a writing server applies the retention
INSERT_ROWS = 500  # rows per statement at most: 4,000 parameters, far below SQLite's and PostgreSQL's limits
_COLUMNS = ("request_id", "row", "deployment_id", "model_name", "model_version", "role", "output", "at")


def _same(value: Any) -> Any:
    return value


def _insert_sql(table: Any, dialect: Any, rows: int) -> str:
    """The driver-level INSERT of ``rows`` rows of ``_COLUMNS``, in the driver's placeholder style."""
    mark = {"qmark": "?", "format": "%s", "pyformat": "%s"}.get(dialect.paramstyle)
    if mark is None:
        raise RuntimeError(f"prediction log: unsupported driver parameter style {dialect.paramstyle!r}")
    # the output goes as JSON text; PostgreSQL wants it cast, SQLite stores the text as it is (a CAST
    # there would give it numeric affinity and turn "3.5" into a number)
    marks = [f"CAST({mark} AS JSON)" if c == "output" and dialect.name == "postgresql" else mark for c in _COLUMNS]
    prep = dialect.identifier_preparer
    row = f"({', '.join(marks)})"
    return (f"INSERT INTO {prep.format_table(table)} ({', '.join(prep.quote(c) for c in _COLUMNS)}) "
            f"VALUES {', '.join([row] * rows)}")


class PredictionLog(BackgroundQueue[tuple[int, tuple[Any, ...]]]):
    """The queue of predictions and the thread that writes them to the MLC store in batches.

    The writing thread shares the GIL with the event loop that answers requests, and when both
    want it they take turns: every millisecond the thread spends in Python under load is taken
    from the requests in flight, and that made the log most of the serving p99 (bench/RESULTS.md,
    serving). So the Python work is done by ``put``, a few microseconds on the caller's thread
    (the values of the request's rows, in the form SQLAlchemy Core would give them, without its
    per-row processing), and the thread only hands them to the driver: multi-row INSERTs, not an
    ``executemany``, which steps the database once per row and takes the GIL back each time.
    """

    def __init__(self, settings: "Settings", *, capacity: int = 20_000, batch: int = 5_000,
                 interval: float = 0.25, linger: float = 0.25) -> None:
        super().__init__("mlc-prediction-log", capacity=capacity, batch=batch, interval=interval, linger=linger)
        self.settings = settings
        self.rows_written = 0
        self._at_of: Callable[[Any], Any] | None = None  # the store's bind processor of `at`, once known
        self.retention_s = settings.prediction_retention_s
        self.pruned = 0  # rows (predictions and labels) the retention removed
        self._next_prune = time.monotonic()  # the first write prunes, then once every PRUNE_EVERY_S
        self._prune_before: dt.datetime | None = None  # the cut-off of a pass under way, a batch per write

    def put(self, entry: LoggedPrediction) -> None:
        """Queue ``entry``'s rows; never blocks (a full queue drops them and counts the drop)."""
        try:
            outputs = rows_of(entry.predictions)
            if self._at_of is None:
                self._at_of = self._at_processor()
            at = self._at_of(entry.at)
            values: list[Any] = []
            for i, output in enumerate(outputs):
                values += (entry.request_id, i, entry.deployment_id, entry.model, entry.version, entry.role,
                           json.dumps(output), at)
        except Exception as exc:  # an output the log cannot hold must not fail the request
            log.warning("prediction %s of %s/%s not logged: %s", entry.request_id, entry.model, entry.version, exc)
            self.dropped += 1
            return
        self.offer((len(outputs), tuple(values)))

    def _at_processor(self) -> Callable[[Any], Any]:
        from modelops_mlc.runtimes.models import PredictionRow
        from modelops_mlc.store import open_store

        return PredictionRow.__table__.c.at.type.bind_processor(open_store(self.settings).engine.dialect) or _same

    def handle(self, items: list[tuple[int, tuple[Any, ...]]]) -> None:
        """Write the queued rows, up to ``INSERT_ROWS`` a statement, in one transaction."""
        from modelops_mlc.runtimes.models import PredictionRow
        from modelops_mlc.store import open_store

        table = PredictionRow.__table__
        width = len(_COLUMNS)
        written = 0
        with open_store(self.settings).session() as s:
            conn = s.connection()

            def insert(rows: int, values: list[Any]) -> None:
                conn.exec_driver_sql(_insert_sql(table, conn.dialect, rows), tuple(values))

            rows, values = 0, []
            for n, flat in items:
                for first in range(0, n, INSERT_ROWS):  # a request of many rows is split
                    take = min(INSERT_ROWS, n - first)
                    if rows + take > INSERT_ROWS:
                        insert(rows, values)
                        written, rows, values = written + rows, 0, []
                    values += flat[first * width:(first + take) * width] if take < n else flat
                    rows += take
            if rows:
                insert(rows, values)
                written += rows
        self.rows_written += written
        if self.retention_s is not None and self._prune_before is None and time.monotonic() >= self._next_prune:
            self._next_prune = time.monotonic() + PRUNE_EVERY_S
            self._prune_before = dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=self.retention_s)
        if self._prune_before is not None:
            self.prune_batch()

    def prune_batch(self) -> None:
        """One transaction of the retention per table, after a write: a backlog (retention switched on over
        months of log) is worked off a batch per write, so the queue keeps draining meanwhile. A failure
        is logged: the log goes on, and the next hour tries again."""
        from modelops_mlc.runtimes.feedback import FeedbackStore

        before = self._prune_before
        if before is None:
            return
        try:
            done = FeedbackStore(self.settings).prune(before, batches=1)
        except Exception as exc:
            self._prune_before = None
            log.warning("prediction log: retention of %s not applied: %s", self.settings.prediction_retention, exc)
            return
        self.pruned += done.predictions + done.labels
        if not done.more:
            self._prune_before = None
        if done.predictions or done.labels:
            log.info("prediction log: pruned %d predictions and %d labels older than %s%s", done.predictions,
                     done.labels, self.settings.prediction_retention, " (more to go)" if done.more else "")
