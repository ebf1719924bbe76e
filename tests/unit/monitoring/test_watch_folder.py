"""The new-data watcher's rounds on a real engine and MLC store, with a clock the test moves: a file
fires mlc.monitor once it is completely written, once per file, also across restarts and a crash
between the signal and its record."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

from modelops_mlc.config import Settings
from modelops_mlc.engine import EngineClient
from modelops_mlc.monitoring.seen import FIRED, PENDING, SeenFileRow, seen_key
from modelops_mlc.monitoring.watch import SIGNAL, TRIGGER_ID_VAR, FolderWatcher, is_data_name
from modelops_mlc.store import open_store

BPMN = Path(__file__).resolve().parents[2] / "data" / "monitor_trigger.bpmn"
PROCESS = "test-monitor-trigger"  # starts on signal mlc.monitor and ends at once
MODEL, OTHER_MODEL = "watch-test-churn", "watch-test-fraud"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def client(engine, settings: Settings):
    with EngineClient(settings) as c:
        c.deploy_processes([BPMN], name=TRIGGER_DEPLOYMENT)
        yield c
        end_monitors(c, MODEL, OTHER_MODEL)
        remove_trigger_process(c)


TRIGGER_DEPLOYMENT = "mlc-test-triggers"


def remove_trigger_process(client: EngineClient) -> None:
    """Undeploy the test process: it starts on mlc.monitor too, and would answer later tests' signals."""
    for deployment in client.request("GET", "/deployment", params={"name": TRIGGER_DEPLOYMENT}):
        client.request("DELETE", f"/deployment/{deployment['id']}", params={"cascade": "true", "skipCustomListeners": "true"})


def end_monitors(client: EngineClient, *models: str) -> None:
    """The signal also starts mlc-monitor where other tests deployed it: leave none of ours waiting."""
    for model in models:
        for instance in client.instances(process_key="mlc-monitor", active_only=True, model_id=model):
            client.request("DELETE", f"/process-instance/{instance.id}", params={"skipCustomListeners": "true"})


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    path = tmp_path / "incoming"
    path.mkdir()
    return path


def monitors(client: EngineClient, path: Path) -> int:
    """Instances the signal started for this file, from the engine's history."""
    return client.count_instances(process_key=PROCESS, variables={"CURRENT_DATA": str(path.resolve())})


def watcher(settings: Settings, client: EngineClient, folder: Path, clock: Clock, settle: float = 1.0,
            model: str = MODEL) -> FolderWatcher:
    w = FolderWatcher(settings, client, folder, model, settle_s=settle, clock=clock)
    w.closes_reported = True  # as under inotify; the observer is not started in these tests
    return w


@pytest.mark.parametrize("name, data", [
    ("scores.csv", True), ("2026-12-01.parquet", True), ("scores.csv.part", False), ("scores.tmp", False),
    (".scores.csv", False), ("~scores.csv", False), ("scores.csv.crdownload", False), ("scores.csv~", False),
])
def test_temporary_and_hidden_names_are_not_data(name: str, data: bool) -> None:
    assert is_data_name(name) is data


def test_a_half_written_file_fires_nothing_until_it_is_complete(settings, client, folder) -> None:
    clock = Clock()
    w = watcher(settings, client, folder, clock)
    path = folder / "batch.csv"
    with path.open("w") as fh:
        fh.write("a,b\n1,2\n")
        fh.flush()
        w.note(path)
        w.note(path, writing=True)
        assert w.check().fired == []
        clock.now += 60  # long settled, but the writer has not closed it
        report = w.check()
        assert report.fired == [] and report.waiting == [str(path)]
        assert monitors(client, path) == 0
        fh.write("3,4\n")
    w.note(path, writing=False)  # the close-write
    assert w.check().fired == []  # it just grew: the settle window starts again
    clock.now += 1.0
    report = w.check()
    assert report.fired == [str(path)] and report.waiting == []
    assert monitors(client, path) == 1
    clock.now += 5
    assert w.check().fired == [] and monitors(client, path) == 1


def test_without_close_events_a_growing_file_waits_for_its_size_to_settle(settings, client, folder) -> None:
    clock = Clock()
    w = watcher(settings, client, folder, clock)
    w.closes_reported = False  # a platform where watchdog polls
    path = folder / "batch.csv"
    path.write_text("a,b\n")
    w.note(path, writing=True)
    clock.now += 0.5
    assert w.check().fired == []
    with path.open("a") as fh:
        fh.write("1,2\n")
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 1_000_000))
    clock.now += 0.9  # 1.4 s since it was first seen, 0 s since it changed
    assert w.check().fired == []
    clock.now += 1.0
    assert w.check().fired == [str(path)]
    assert monitors(client, path) == 1


def test_a_restarted_watcher_fires_the_files_it_never_fired_and_no_others(settings, client, folder) -> None:
    clock = Clock()
    first = folder / "monday.csv"
    first.write_text("a\n1\n")
    w = watcher(settings, client, folder, clock, settle=0)
    w.scan()
    assert w.check().fired == [str(first)]

    second = folder / "tuesday.csv"  # arrives while no watcher runs
    second.write_text("a\n2\n")
    restarted = watcher(settings, client, folder, clock, settle=0)
    restarted.scan()
    report = restarted.check()
    assert report.fired == [str(second)]
    assert monitors(client, first) == 1 and monitors(client, second) == 1
    assert restarted.fired_files() == [str(first), str(second)]

    another_model = watcher(settings, client, folder, clock, settle=0, model=OTHER_MODEL)
    another_model.scan()  # the same folder watched for another model fires for that model
    assert another_model.check().fired == [str(first), str(second)]


def test_the_same_name_written_again_with_new_content_is_new_data(settings, client, folder) -> None:
    clock = Clock()
    path = folder / "latest.csv"
    path.write_text("a\n1\n")
    w = watcher(settings, client, folder, clock, settle=0)
    w.scan()
    assert w.check().fired == [str(path)]
    path.write_text("a\n1\n2\n")
    w.note(path, writing=False)
    assert w.check().fired == [str(path)]
    assert monitors(client, path) == 2


def _pending_row(settings: Settings, folder: Path, path: Path, trigger_id: str) -> None:
    st = path.stat()
    fingerprint = f"{st.st_size}:{st.st_mtime_ns}"
    with open_store(settings).session() as s:
        s.add(SeenFileRow(key=seen_key(MODEL, str(path), fingerprint), model_id=MODEL, folder=str(folder.resolve()),
                          path=str(path), fingerprint=fingerprint, trigger_id=trigger_id, state=PENDING, attempts=1))


def _state(settings: Settings, trigger_id: str) -> str:
    with open_store(settings).session() as s:
        return s.query(SeenFileRow).filter_by(trigger_id=trigger_id).one().state


def test_a_crash_between_signal_and_record_does_not_fire_twice(settings, client, folder) -> None:
    after, before = f"new-data:{uuid.uuid4()}", f"new-data:{uuid.uuid4()}"
    reached = folder / "reached.csv"  # the signal got to the engine, the watcher died before recording it
    reached.write_text("a\n1\n")
    _pending_row(settings, folder, reached, after)
    client.signal(SIGNAL, {"MODEL_ID": MODEL, "CURRENT_DATA": str(reached), "MONITOR_TRIGGER": "new-data",
                           TRIGGER_ID_VAR: after})
    lost = folder / "lost.csv"  # the watcher died before the signal went out
    lost.write_text("a\n2\n")
    _pending_row(settings, folder, lost, before)

    w = watcher(settings, client, folder, Clock(), settle=0)
    w.scan()
    report = w.check()
    assert report.recovered == [str(reached)]
    assert report.fired == [str(lost)]
    assert monitors(client, reached) == 1 and monitors(client, lost) == 1
    assert _state(settings, after) == FIRED and _state(settings, before) == FIRED
    assert w.check().fired == [] and monitors(client, lost) == 1


def test_a_missing_folder_is_a_usage_error(settings, client, tmp_path) -> None:
    from modelops_mlc.errors import UsageError

    with pytest.raises(UsageError, match="not a directory"):
        FolderWatcher(settings, client, tmp_path / "nowhere", MODEL)
