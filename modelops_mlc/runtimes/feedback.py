"""Feedback: true labels joined to the prediction log by request id (and row), and what they tell.

Labels arrive from ``mlc feedback MODEL FILE`` or ``POST /v2/models/{name}/feedback`` and are kept
per model, request id and row (a second label for the same row replaces the first). Every label is
kept, also one whose request id has no logged prediction yet; :meth:`FeedbackStore.record` reports
those as unknown. Accuracy and mean absolute error of a model version are computed over its logged
predictions that have a label; :meth:`FeedbackStore.compare` sets a shadow deployment against the
primary versions that answered the same requests.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel
from sqlalchemy import and_, delete, func, select

from modelops_mlc.errors import NotFoundError, UsageError
from modelops_mlc.runtimes.models import DeploymentRow, DeploymentShadowRow, FeedbackRow, PredictionRow
from modelops_mlc.runtimes.predlog import MAX_REQUEST_ID, ROLE_PRIMARY, ROLE_SHADOW
from modelops_mlc.serialize import json_safe
from modelops_mlc.store import open_store, utcnow

if TYPE_CHECKING:
    from modelops_mlc.config import Settings

__all__ = ["FeedbackStore", "Pruned", "Recorded", "ShadowComparison", "read_feedback_file"]

CHUNK = 500  # request ids per IN (...) query
PRUNE_ROWS = 10_000  # rows per DELETE when pruning, so a runtime's log writes are never held up long
UNKNOWN_LISTED = 20  # unknown request ids a report names


class Recorded(int):
    """How many of the labels joined a logged prediction (an int), with the rest reported.

    ``received`` labels were kept; ``unknown`` of them (request ids ``unknown_ids``, the first
    twenty) have no logged prediction of the model.
    """

    received: int
    unknown: int
    unknown_ids: list[str]

    def __new__(cls, matched: int, received: int, unknown_ids: Sequence[str]) -> "Recorded":
        value = super().__new__(cls, matched)
        value.received = received
        value.unknown = received - matched
        value.unknown_ids = list(unknown_ids[:UNKNOWN_LISTED])
        return value

    def report(self, model_name: str) -> dict[str, Any]:
        return {"model": model_name, "received": self.received, "recorded": int(self), "unknown": self.unknown,
                "unknown_ids": self.unknown_ids}


class ShadowComparison(BaseModel):
    """A shadow deployment against the primary versions that answered the same requests."""

    deployment_id: int
    model: str
    shadow_version: str
    state: str
    primary_versions: list[str]
    shadow_predictions: int
    paired: int
    agreement: float | None
    labelled: int
    shadow_accuracy: float | None
    primary_accuracy: float | None
    shadow_mean_abs_error: float | None
    primary_mean_abs_error: float | None


def _comparable(value: Any) -> Any:
    """A label or a prediction in one form: numbers (and numeric text) as float, text stripped, JSON otherwise."""
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        text = value.strip()
        try:
            return float(text)
        except ValueError:
            return text
    return json.dumps(value, sort_keys=True)


def _same(prediction: Any, label: Any) -> bool:
    return _comparable(prediction) == _comparable(label)


def _number(value: Any) -> float | None:
    v = _comparable(value)
    return v if isinstance(v, float) and math.isfinite(v) else None


def accuracy_of(pairs: Sequence[tuple[Any, Any]]) -> float | None:
    """Share of (prediction, label) pairs that agree; None without pairs."""
    return sum(_same(p, y) for p, y in pairs) / len(pairs) if pairs else None


def mean_abs_error_of(pairs: Sequence[tuple[Any, Any]]) -> tuple[int, float | None]:
    """(numeric pairs, their mean absolute error or None); pairs that are not both numbers are left out."""
    diffs = [abs(a - b) for a, b in ((_number(p), _number(y)) for p, y in pairs) if a is not None and b is not None]
    return len(diffs), (sum(diffs) / len(diffs) if diffs else None)


def _utc(value: dt.datetime | str | None) -> dt.datetime | None:
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise UsageError(f"since must be a date and time (ISO 8601), got {value!r}") from None
    return value.replace(tzinfo=dt.timezone.utc) if value.tzinfo is None else value.astimezone(dt.timezone.utc)


def _clean_rows(rows: Iterable[Sequence[Any]]) -> dict[tuple[str, int], Any]:
    """(request id, row) -> label, last one winning; UsageError naming the first bad item."""
    labels: dict[tuple[str, int], Any] = {}
    for i, item in enumerate(rows):
        if isinstance(item, (str, bytes)) or not isinstance(item, Sequence) or len(item) not in (2, 3):
            raise UsageError(f"feedback item {i}: expected (request_id, label) or (request_id, row, label)")
        request_id, row, label = (item[0], 0, item[1]) if len(item) == 2 else tuple(item)
        request_id = "" if request_id is None else str(json_safe(request_id)).strip()
        if not request_id or len(request_id) > MAX_REQUEST_ID:
            raise UsageError(f"feedback item {i}: request id must be 1 to {MAX_REQUEST_ID} characters")
        try:
            number = float(row)
        except (TypeError, ValueError):
            number = math.nan
        if isinstance(row, bool) or not math.isfinite(number) or number != int(number) or number < 0:
            raise UsageError(f"feedback item {i}: row must be a whole number from 0, got {row!r}")
        label = json_safe(label)
        if label is None:
            raise UsageError(f"feedback item {i} (request {request_id}): the label is empty")
        labels[(request_id, int(number))] = label
    return labels


class Pruned(BaseModel):
    """What :meth:`FeedbackStore.prune` removed (or, with ``dry_run``, would remove)."""

    before: dt.datetime
    model: str | None = None
    predictions: int
    labels: int
    dry_run: bool = False
    more: bool = False  # ``batches`` ran out before the older rows did: call again to go on


class FeedbackStore:
    """Records labels and joins them to the prediction log of the MLC store."""

    def __init__(self, settings: "Settings") -> None:
        self.settings = settings
        self.store = open_store(settings)

    # -- labels in ----------------------------------------------------------------------------
    def record(self, model_name: str, rows: Iterable[Sequence[Any]], *, source: str) -> Recorded:
        """Keep the labels ``rows`` ((request_id, label) or (request_id, row, label)) of ``model_name``.

        Returns how many joined a logged prediction of the model; the result also reports the
        unknown request ids (their labels are kept and join once their predictions are logged).
        """
        model_name = (model_name or "").strip()
        if not model_name:
            raise UsageError("feedback needs a model name")
        labels = _clean_rows(rows)
        if not labels:
            raise UsageError(f"no feedback labels given for model {model_name}")
        keys = list(labels)
        known: set[tuple[str, int]] = set()
        with self.store.session() as s:
            for start in range(0, len(keys), CHUNK):
                chunk = keys[start:start + CHUNK]
                ids = {rid for rid, _ in chunk}
                existing = {
                    (f.request_id, f.row): f
                    for f in s.scalars(select(FeedbackRow).where(
                        FeedbackRow.model_name == model_name, FeedbackRow.request_id.in_(ids)))
                }
                known.update(
                    (str(r[0]), int(r[1]))
                    for r in s.execute(select(PredictionRow.request_id, PredictionRow.row).where(
                        PredictionRow.model_name == model_name, PredictionRow.request_id.in_(ids)).distinct())
                )
                now = utcnow()
                for key in chunk:
                    row = existing.get(key)
                    if row is None:
                        s.add(FeedbackRow(model_name=model_name, request_id=key[0], row=key[1], label=labels[key],
                                          source=source, at=now))
                    else:
                        row.label, row.source, row.at = labels[key], source, now
        unknown = [rid for rid, row in keys if (rid, row) not in known]
        return Recorded(len(keys) - len(unknown), len(keys), list(dict.fromkeys(unknown)))

    # -- retention ----------------------------------------------------------------------------
    def prune(self, before: dt.datetime, *, model_name: str | None = None, dry_run: bool = False,
              batches: int | None = None) -> Pruned:
        """Remove the logged predictions and the labels from before ``before`` (of one model, or of all),
        ``PRUNE_ROWS`` rows a transaction, at most ``batches`` transactions a table (None: until none is
        left; ``more`` says when some are); a label is dated by its arrival. Figures over a window (canary
        accuracy, shadow comparisons) read only what is younger than the window, so a retention longer
        than the longest window changes none of them."""
        before = _utc(before) or utcnow()
        counts, more = {}, False
        for table in (PredictionRow, FeedbackRow):
            where = [table.at < before, *([table.model_name == model_name] if model_name else [])]
            if dry_run:
                with self.store.session() as s:
                    counts[table] = int(s.scalar(select(func.count()).select_from(table).where(*where)) or 0)
                continue
            removed, runs = 0, 0
            while batches is None or runs < batches:
                with self.store.session() as s:  # Core, not the ORM: no ids are fetched back (RETURNING)
                    ids = select(table.id).where(*where).order_by(table.id).limit(PRUNE_ROWS).scalar_subquery()
                    done = s.connection().execute(delete(table.__table__).where(table.id.in_(ids))).rowcount or 0
                removed, runs = removed + done, runs + 1
                if done < PRUNE_ROWS:
                    break
            else:
                more = True
            counts[table] = removed
        return Pruned(before=before, model=model_name, predictions=counts[PredictionRow], labels=counts[FeedbackRow],
                      dry_run=dry_run, more=more)

    # -- what they tell -----------------------------------------------------------------------
    def labelled(self, model_name: str, version: str | int | None = None, *, since: dt.datetime | str | None = None,
                 role: str | None = None) -> list[tuple[Any, Any]]:
        """(prediction, label) of the logged predictions of ``model_name`` (one version, from ``since``) with a label."""
        q = (
            select(PredictionRow.output, FeedbackRow.label)
            .join(FeedbackRow, and_(FeedbackRow.model_name == PredictionRow.model_name,
                                    FeedbackRow.request_id == PredictionRow.request_id,
                                    FeedbackRow.row == PredictionRow.row))
            .where(PredictionRow.model_name == model_name)
        )
        if version is not None:
            q = q.where(PredictionRow.model_version == str(version))
        if since is not None:
            q = q.where(PredictionRow.at >= _utc(since))
        if role is not None:
            q = q.where(PredictionRow.role == role)
        with self.store.session() as s:
            return [(r[0], r[1]) for r in s.execute(q)]

    def accuracy(self, model_name: str, version: str | int | None, *,
                 since: dt.datetime | str | None = None) -> tuple[int, float | None]:
        """(labelled predictions of the version, the share that was right; None when none is labelled)."""
        pairs = self.labelled(model_name, version, since=since)
        return len(pairs), accuracy_of(pairs)

    def error(self, model_name: str, version: str | int | None, *,
              since: dt.datetime | str | None = None) -> tuple[int, float | None]:
        """(labelled numeric predictions of the version, their mean absolute error; None when there are none)."""
        return mean_abs_error_of(self.labelled(model_name, version, since=since))

    # -- shadow against primary ---------------------------------------------------------------
    def compare(self, deployment_id: int) -> ShadowComparison:
        """Agreement of shadow deployment ``deployment_id`` with the primary answers to the same requests,
        and, on the labelled ones, the accuracy and mean absolute error of both."""
        from sqlalchemy import func
        from sqlalchemy.orm import aliased

        with self.store.session() as s:
            dep = s.get(DeploymentRow, int(deployment_id))
            if dep is None:
                raise NotFoundError(f"no deployment with id {deployment_id}")
            if s.get(DeploymentShadowRow, dep.id) is None:
                raise UsageError(f"deployment {dep.id} ({dep.model_name}/{dep.model_version}) is not a shadow",
                                 hint="`mlc deployment create MODEL --shadow` deploys one")
            shadow, primary = aliased(PredictionRow), aliased(PredictionRow)
            total = s.scalar(select(func.count()).select_from(shadow).where(
                shadow.deployment_id == dep.id, shadow.role == ROLE_SHADOW)) or 0
            rows = s.execute(
                select(shadow.output, primary.output, primary.model_version, FeedbackRow.label)
                .join(primary, and_(primary.model_name == shadow.model_name, primary.request_id == shadow.request_id,
                                    primary.row == shadow.row, primary.role == ROLE_PRIMARY))
                .outerjoin(FeedbackRow, and_(FeedbackRow.model_name == shadow.model_name,
                                             FeedbackRow.request_id == shadow.request_id,
                                             FeedbackRow.row == shadow.row))
                .where(shadow.deployment_id == dep.id, shadow.role == ROLE_SHADOW)
            ).all()
            model, version, state = dep.model_name, dep.model_version, dep.state
        labelled = [r for r in rows if r[3] is not None]
        shadow_pairs = [(r[0], r[3]) for r in labelled]
        primary_pairs = [(r[1], r[3]) for r in labelled]
        return ShadowComparison(
            deployment_id=int(deployment_id), model=model, shadow_version=version, state=state,
            primary_versions=sorted({str(r[2]) for r in rows}, key=lambda v: (len(v), v)),
            shadow_predictions=int(total), paired=len(rows),
            agreement=accuracy_of([(r[0], r[1]) for r in rows]),
            labelled=len(labelled),
            shadow_accuracy=accuracy_of(shadow_pairs), primary_accuracy=accuracy_of(primary_pairs),
            shadow_mean_abs_error=mean_abs_error_of(shadow_pairs)[1],
            primary_mean_abs_error=mean_abs_error_of(primary_pairs)[1],
        )


def read_feedback_file(path: str | Path, label_column: str = "label") -> list[tuple[str, int, Any]]:
    """(request_id, row, label) from a CSV or Parquet file with ``request_id``, optional ``row`` and the label column."""
    from modelops_mlc.jobs._data import read_frame, require_file

    file = require_file(path, "feedback file")
    frame = read_frame(file, "feedback file")
    missing = [c for c in ("request_id", label_column) if c not in frame.columns]
    if missing:
        raise UsageError(
            f"feedback file {file} lacks column{'s' if len(missing) > 1 else ''} {', '.join(missing)} "
            f"(it has: {', '.join(map(str, frame.columns)) or 'none'})",
            hint="columns: request_id, optional row, and the label (--label-column names it)",
        )
    if frame.empty:
        raise UsageError(f"feedback file {file} has no rows")
    if frame["request_id"].isna().any():
        first = int(frame["request_id"].isna().to_numpy().argmax())
        raise UsageError(f"feedback file {file}: row {first + 1} has no request_id")
    rows = frame["row"].tolist() if "row" in frame.columns else [0] * len(frame)
    return list(zip(frame["request_id"].astype(str).tolist(), rows, frame[label_column].tolist()))
