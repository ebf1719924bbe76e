"""The prediction log's retention on a real MLC store: `mlc predictions prune` and the model server's
hourly pass remove predictions and labels older than the retention, and nothing younger."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pytest
from sqlalchemy import select

from modelops_mlc.config import Settings
from modelops_mlc.errors import ConfigError
from modelops_mlc.runtimes.feedback import FeedbackStore
from modelops_mlc.runtimes.models import FeedbackRow, PredictionRow
from modelops_mlc.runtimes.predlog import LoggedPrediction, PredictionLog
from modelops_mlc.store import open_store

NOW = dt.datetime.now(dt.timezone.utc)


def _write(settings: Settings, entries: list[tuple[str, str, dt.datetime]]) -> None:
    """(request id, model, time) predictions of two rows each, through the real log, with no retention."""
    log = PredictionLog(settings.model_copy(update={"prediction_retention": None}), interval=0.05)
    log.start()
    for request_id, model, at in entries:
        log.put(LoggedPrediction(request_id, 1, model, "1", "primary", np.array([1, 0]), at))
    log.stop()


def _label(settings: Settings, model: str, request_ids: list[str], at: dt.datetime) -> None:
    FeedbackStore(settings).record(model, [(rid, row, 1) for rid in request_ids for row in (0, 1)], source="test")
    with open_store(settings).session() as s:  # a label is dated by its arrival: make it arrive at ``at``
        for row in s.scalars(select(FeedbackRow).where(FeedbackRow.request_id.in_(request_ids))):
            row.at = at


def _left(settings: Settings, table) -> list[str]:
    with open_store(settings).session() as s:
        return sorted({r for r in s.scalars(select(table.request_id))})


@pytest.fixture(params=["sqlite", "postgresql"])
def stored(request, tmp_path) -> Settings:
    """Two models' predictions and labels: 40 and 10 days old, and one of now; on SQLite and on PostgreSQL
    (the DELETE of a limited sub-select is the SQL both must take)."""
    if request.param == "postgresql":
        url = request.getfixturevalue("postgres").database(f"prune_{tmp_path.name[-8:]}").url
    else:
        url = f"sqlite:///{tmp_path}/mlc.db"
    settings = Settings(home=tmp_path, store_url=url)
    old, older = NOW - dt.timedelta(days=10), NOW - dt.timedelta(days=40)
    _write(settings, [("a-40", "a", older), ("a-10", "a", old), ("a-0", "a", NOW), ("b-40", "b", older)])
    _label(settings, "a", ["a-40"], older)
    _label(settings, "a", ["a-10"], old)
    _label(settings, "a", ["a-0"], NOW)
    _label(settings, "b", ["b-40"], older)
    return settings


def _ago(days: float) -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=days)


def test_prune_removes_what_is_older_and_nothing_younger(stored: Settings, monkeypatch) -> None:
    import modelops_mlc.runtimes.feedback as feedback

    store = FeedbackStore(stored)
    counted = store.prune(_ago(30), dry_run=True)
    assert (counted.predictions, counted.labels, counted.dry_run) == (4, 4, True)
    assert _left(stored, PredictionRow) == ["a-0", "a-10", "a-40", "b-40"]  # a dry run removes nothing

    only_a = store.prune(_ago(30), model_name="a")
    assert (only_a.predictions, only_a.labels) == (2, 2)
    assert _left(stored, PredictionRow) == ["a-0", "a-10", "b-40"]

    monkeypatch.setattr(feedback, "PRUNE_ROWS", 3)  # several transactions: 2 + 4 rows go, in chunks of 3
    done = store.prune(_ago(5))
    assert (done.predictions, done.labels) == (4, 4)
    assert _left(stored, PredictionRow) == _left(stored, FeedbackRow) == ["a-0"]
    assert store.accuracy("a", "1") == (2, 0.5)  # what is left still joins: predictions [1, 0], labels [1, 1]


def test_the_model_server_log_applies_the_retention_after_a_write(stored: Settings, monkeypatch) -> None:
    """The first write starts a pass, which goes on a batch per write until nothing older is left; the
    next pass waits for the hour, so an old row written meanwhile stays."""
    import modelops_mlc.runtimes.feedback as feedback

    monkeypatch.setattr(feedback, "PRUNE_ROWS", 3)  # 4 old rows a table: the pass takes two writes
    log = PredictionLog(stored.model_copy(update={"prediction_retention": "30d"}), interval=0.05)
    log.start()
    log.put(LoggedPrediction("a-new", 1, "a", "1", "primary", np.array([1]), NOW))
    assert log.flush()
    assert log.pruned == 6  # one batch a table: 3 predictions, 3 labels
    assert len(_left(stored, PredictionRow)) == 4  # a-0, a-10, a-new and one of the two 40-day-old ones
    log.put(LoggedPrediction("a-newer", 1, "a", "1", "primary", np.array([1]), NOW))
    assert log.flush()
    assert log.pruned == 8
    assert _left(stored, PredictionRow) == ["a-0", "a-10", "a-new", "a-newer"]
    assert _left(stored, FeedbackRow) == ["a-0", "a-10"]

    _write(stored, [("late-40", "a", NOW - dt.timedelta(days=40))])  # within the hour: no new pass
    log.put(LoggedPrediction("a-last", 1, "a", "1", "primary", np.array([1]), NOW))
    log.stop()
    assert log.pruned == 8 and "late-40" in _left(stored, PredictionRow)


def test_a_retention_that_is_no_duration_is_refused_in_one_line(tmp_path) -> None:
    with pytest.raises(ConfigError, match="MLC_PREDICTION_RETENTION 'a month' is not a duration"):
        Settings(home=tmp_path, prediction_retention="a month")
    assert Settings(home=tmp_path, prediction_retention="P30D").prediction_retention_s == 30 * 86400
    assert Settings(home=tmp_path, prediction_retention="1w").prediction_retention_s == 7 * 86400


def test_mlc_predictions_prune(run_mlc, mlc_home, monkeypatch) -> None:
    settings = Settings(home=mlc_home, store_url=f"sqlite:///{mlc_home}/mlc.db")
    _write(settings, [("old", "a", NOW - dt.timedelta(days=3)), ("new", "a", NOW)])

    missing = run_mlc("predictions", "prune")
    assert missing.returncode == 2 and missing.stderr.startswith("error: no retention given")
    assert "Traceback" not in missing.stderr
    bad = run_mlc("predictions", "prune", "--older-than", "three days")
    assert bad.returncode == 2
    assert bad.stderr.startswith("error: --older-than expects e.g. 30m, 2h, 7d or an ISO date, got 'three days'")

    dry = run_mlc("predictions", "prune", "--older-than", "1d", "--dry-run", "--json")
    assert dry.returncode == 0, dry.stderr
    assert json.loads(dry.stdout)["predictions"] == 2 and _left(settings, PredictionRow) == ["new", "old"]
    by_date = run_mlc("predictions", "prune", "--older-than", _ago(5).date().isoformat(), "--dry-run", "--json")
    assert json.loads(by_date.stdout)["predictions"] == 0  # nothing from before five days ago
    done = run_mlc("predictions", "prune", env={"MLC_PREDICTION_RETENTION": "P1D"})
    assert done.returncode == 0, done.stderr
    assert "removed 2 predictions and 0 labels older than" in done.stderr
    assert _left(settings, PredictionRow) == ["new"]


def test_a_bad_retention_setting_stops_a_command_in_one_line_naming_it(run_mlc) -> None:
    r = run_mlc("predictions", "prune", env={"MLC_PREDICTION_RETENTION": "a month"})
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.startswith("error: MLC_PREDICTION_RETENTION 'a month' is not a duration")
