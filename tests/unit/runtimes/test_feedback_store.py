"""FeedbackStore on a real MLC store (sqlite, and PostgreSQL for the log's own SQL), with predictions
written through the real prediction log: labels join by request id and row, accuracy and mean
absolute error match scikit-learn's, unknown request ids are reported, bad items are refused."""

from __future__ import annotations

import datetime as dt
import re

import numpy as np
import pytest

from modelops_mlc.config import Settings
from modelops_mlc.errors import UsageError
from modelops_mlc.runtimes.feedback import FeedbackStore, read_feedback_file
from modelops_mlc.runtimes.predlog import LoggedPrediction, PredictionLog


@pytest.fixture
def settings(tmp_path):
    return Settings(home=tmp_path, store_url=f"sqlite:///{tmp_path}/mlc.db")


def test_the_log_writes_every_row_on_postgresql_as_on_sqlite(tmp_path, postgres):
    """The log writes multi-row INSERTs in the driver's own placeholder style: both stores get every
    row, its JSON output and its time, over more requests, and one request of more rows, than one
    statement holds."""
    from modelops_mlc.runtimes.predlog import INSERT_ROWS

    requests = INSERT_ROWS + 7
    at = dt.datetime(2026, 12, 1, 18, 0, tzinfo=dt.timezone.utc)
    stores = {"sqlite": f"sqlite:///{tmp_path}/mlc.db", "postgresql": postgres.database(f"plog_{tmp_path.name[-8:]}").url}
    for kind, url in stores.items():
        settings = Settings(home=tmp_path / kind, store_url=url)
        log = PredictionLog(settings, interval=0.05)
        log.start()
        for i in range(requests):  # a regressor's one row, and a classifier's two outputs per row
            log.put(LoggedPrediction(f"r{i}", 1, "bc", "1", "primary", np.array([i + 0.5]), at))
            log.put(LoggedPrediction(f"p{i}", 2, "bc", "2", "shadow", {"label": np.array([1, 0]),
                                                                       "score": np.array([0.9, 0.2])}, at))
        big = 2 * INSERT_ROWS + 3  # one request of more rows than a statement holds
        log.put(LoggedPrediction("big", 1, "bc", "1", "primary", np.arange(big, dtype=float), at))
        log.stop()
        assert log.rows_written == 3 * requests + big, kind
        from sqlalchemy import select

        from modelops_mlc.runtimes.models import PredictionRow
        from modelops_mlc.store import open_store

        with open_store(settings).session() as s:
            rows = s.execute(select(PredictionRow).where(PredictionRow.request_id.in_(["r3", "p3"]))
                             .order_by(PredictionRow.request_id, PredictionRow.row)).scalars().all()
            got = [(r.request_id, r.row, r.deployment_id, r.model_version, r.role, r.output,
                    r.at.replace(tzinfo=dt.timezone.utc) if r.at.tzinfo is None else r.at) for r in rows]
            big_rows = s.execute(select(PredictionRow.row, PredictionRow.output)
                                 .where(PredictionRow.request_id == "big")).all()
        assert sorted(big_rows) == [(i, float(i)) for i in range(big)], kind
        assert got == [("p3", 0, 2, "2", "shadow", {"label": 1, "score": 0.9}, at),
                       ("p3", 1, 2, "2", "shadow", {"label": 0, "score": 0.2}, at),
                       ("r3", 0, 1, "1", "primary", 3.5, at)], kind


@pytest.fixture
def plog(settings):
    log = PredictionLog(settings, interval=0.05)
    log.start()
    yield log
    log.stop()


def _log(plog, request_id, version, predictions, *, at=None, role="primary", dep=1):
    plog.put(LoggedPrediction(request_id, dep, "bc", version, role, predictions,
                              at or dt.datetime.now(dt.timezone.utc)))


def test_accuracy_joins_labels_by_request_id_and_row(settings, plog, small_model):
    from sklearn.metrics import accuracy_score, mean_absolute_error

    X, model, _ = small_model
    y_pred = model.predict(X.iloc[:60])
    rng = np.random.default_rng(7)
    y_true = np.where(rng.random(60) < 0.2, 1 - y_pred, y_pred)  # about a fifth wrong
    # 10 single-row requests, then 5 requests of 10 rows
    for i in range(10):
        _log(plog, f"single-{i}", "1", y_pred[i:i + 1])
    for j in range(5):
        _log(plog, f"multi-{j}", "1", y_pred[10 + 10 * j:20 + 10 * j])
    _log(plog, "other-version", "2", np.array([0, 1]))
    assert plog.flush()
    assert plog.rows_written == 62

    store = FeedbackStore(settings)
    labels = [(f"single-{i}", y_true[i]) for i in range(10)]
    labels += [(f"multi-{j}", r, y_true[10 + 10 * j + r]) for j in range(5) for r in range(10)]
    recorded = store.record("bc", labels, source="test")
    assert recorded == 60 and recorded.unknown == 0

    n, acc = store.accuracy("bc", "1")
    assert n == 60
    assert acc == pytest.approx(accuracy_score(y_true, y_pred))
    assert acc < 1.0
    n, mae = store.error("bc", 1)
    assert n == 60 and mae == pytest.approx(mean_absolute_error(y_true, y_pred))
    assert store.accuracy("bc", "2") == (0, None)

    # a corrected label replaces the first one
    store.record("bc", [("single-0", y_pred[0])], source="test")
    fixed = y_true.copy()
    fixed[0] = y_pred[0]
    assert store.accuracy("bc", "1")[1] == pytest.approx(accuracy_score(fixed, y_pred))


def test_since_counts_only_later_predictions(settings, plog):
    old = dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=2)
    _log(plog, "old", "3", np.array([1]), at=old)
    _log(plog, "new", "3", np.array([0]))
    assert plog.flush()
    store = FeedbackStore(settings)
    store.record("bc", [("old", 1), ("new", 1)], source="test")
    assert store.accuracy("bc", "3") == (2, 0.5)
    assert store.accuracy("bc", "3", since=old + dt.timedelta(hours=1)) == (1, 0.0)
    assert store.accuracy("bc", "3", since=(old + dt.timedelta(hours=1)).isoformat()) == (1, 0.0)
    # a naive time is UTC
    assert store.accuracy("bc", "3", since=(old - dt.timedelta(minutes=1)).replace(tzinfo=None)) == (2, 0.5)


def test_stop_writes_what_is_queued(settings):
    log = PredictionLog(settings, interval=5.0)
    log.start()
    for i in range(300):
        _log(log, f"q-{i}", "1", np.array([i % 2]))
    log.stop()
    assert log.rows_written == 300 and log.dropped == 0
    assert FeedbackStore(settings).record("bc", [(f"q-{i}", i % 2) for i in range(300)], source="test") == 300


def test_unknown_request_ids_are_counted_and_named(settings, plog):
    _log(plog, "known", "1", np.array([1, 0]))
    assert plog.flush()
    store = FeedbackStore(settings)
    recorded = store.record("bc", [("known", 0, 1), ("known", 1, 1), ("known", 5, 1), ("typo", 0)],
                            source="test")
    assert int(recorded) == 2 and recorded.received == 4 and recorded.unknown == 2
    assert recorded.unknown_ids == ["known", "typo"]
    # a label for another model's ids is unknown there
    assert store.record("other", [("known", 1)], source="test").unknown == 1


def test_string_labels_compare_with_numeric_predictions(settings, plog):
    _log(plog, "a", "1", np.array([1, 0, 1]))
    _log(plog, "b", "1", np.array(["yes"], dtype=object))
    assert plog.flush()
    store = FeedbackStore(settings)
    store.record("bc", [("a", 0, "1"), ("a", 1, 0.0), ("a", 2, 0), ("b", 0, " yes ")], source="test")
    assert store.accuracy("bc", "1") == (4, 0.75)


@pytest.mark.parametrize("rows, message", [
    ([("", 1)], "request id must be"),
    ([("x" * 200, 1)], "request id must be"),
    ([("r", -1, 1)], "row must be a whole number"),
    ([("r", 1.5, 1)], "row must be a whole number"),
    ([("r", float("nan"))], "label is empty"),
    ([("r",)], "expected (request_id, label)"),
    ([], "no feedback labels"),
])
def test_bad_feedback_items_are_refused(settings, rows, message):
    with pytest.raises(UsageError, match=re.escape(message)):
        FeedbackStore(settings).record("bc", rows, source="test")


def test_feedback_file_columns(tmp_path):
    import pandas as pd

    path = tmp_path / "fb.parquet"
    pd.DataFrame({"request_id": ["a", "b"], "row": [0, 2], "y": [1, 0]}).to_parquet(path)
    assert read_feedback_file(path, "y") == [("a", 0, 1), ("b", 2, 0)]
    csv = tmp_path / "fb.csv"
    pd.DataFrame({"request_id": [1, 2], "label": ["x", "y"]}).to_csv(csv, index=False)
    assert read_feedback_file(csv) == [("1", 0, "x"), ("2", 0, "y")]
    with pytest.raises(UsageError, match="lacks column label"):
        read_feedback_file(path)
