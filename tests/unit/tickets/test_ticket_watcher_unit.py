"""The ticket watcher's delivery rules, with a recording stand-in for the engine client
(the real engine is in tests/integration/tickets)."""

from __future__ import annotations

import json
import logging
import os
import threading
import time

import pytest

from modelops_mlc.config import Settings
from modelops_mlc.daemon import GracefulStop, StatusFile
from modelops_mlc.engine.client import ProcessInstance
from modelops_mlc.errors import EngineError, EngineUnavailable, NotFoundError
from modelops_mlc.tickets import TicketContext, get_ticket_system
from modelops_mlc.tickets.watcher import MESSAGE, TicketWatcher, WatchReport


class RecordingEngine:
    """Answers like EngineClient: correlation succeeds for instances in ``waiting``."""

    def __init__(self) -> None:
        self.waiting: set[str] = set()
        self.ended: set[str] = set()
        self.down = False
        self.calls: list[tuple[str, dict, dict]] = []
        self.by_key: dict[str, str] = {}

    def correlate_message(self, name, *, business_key=None, correlation_keys=None, variables=None, all=False):
        if self.down:
            raise EngineUnavailable("cannot reach the engine")
        self.calls.append((name, dict(correlation_keys or {}), dict(variables or {})))
        pid = self.by_key.get((correlation_keys or {}).get("TICKET_KEY"))
        if pid not in self.waiting:
            raise EngineError("correlate message mlc.ticket-updated: Cannot correlate message", status=400)
        self.waiting.discard(pid)
        return [{"result_type": "Execution", "process_instance_id": pid}]

    def history_instance(self, instance_id):
        if instance_id in self.ended:
            return ProcessInstance(id=instance_id, state="COMPLETED")
        if instance_id in self.waiting or instance_id in self.by_key.values():
            return ProcessInstance(id=instance_id, state="ACTIVE")
        raise NotFoundError(f"no process instance {instance_id}")


def _ticket(settings: Settings, pid: str, engine: RecordingEngine, system: str = "local") -> str:
    ticket = get_ticket_system(settings, system).create(
        "t", "", [], TicketContext(model_id="m", process_instance_id=pid), dedupe_key=f"{pid}:act"
    )
    engine.by_key[ticket.key] = pid
    return ticket.key


def test_delivers_done_once_and_survives_restart(settings: Settings) -> None:
    engine = RecordingEngine()
    key = _ticket(settings, "pi-1", engine)
    engine.waiting.add("pi-1")
    watcher = TicketWatcher(settings, engine, interval=1)
    assert watcher.run_once().delivered == []  # still Open
    system = get_ticket_system(settings)
    system.transition(key, "In Progress")
    assert watcher.run_once().delivered == []  # not a decision: the process keeps waiting
    system.transition(key, "Done")
    report = watcher.run_once()
    assert report.delivered == [(key, "Done")]
    assert engine.calls[-1] == (MESSAGE, {"TICKET_KEY": key}, {"TICKET_STATE": "Done"})
    calls = len(engine.calls)
    assert watcher.run_once().delivered == []
    restarted = TicketWatcher(settings, engine, interval=1)
    assert restarted.run_once().checked == 0  # delivered tickets are no longer polled
    assert len(engine.calls) == calls


def test_rejected_and_not_yet_waiting(settings: Settings) -> None:
    engine = RecordingEngine()
    key = _ticket(settings, "pi-2", engine)
    get_ticket_system(settings).transition(key, "Rejected")
    watcher = TicketWatcher(settings, engine, interval=1)
    report = watcher.run_once()  # the process has not reached its catch event yet
    assert report.delivered == [] and report.pending == [key]
    engine.waiting.add("pi-2")
    assert watcher.run_once().delivered == [(key, "Rejected")]


def test_ended_process_stops_the_watch(settings: Settings) -> None:
    engine = RecordingEngine()
    key = _ticket(settings, "pi-3", engine)
    engine.ended.add("pi-3")
    get_ticket_system(settings).transition(key, "Done")
    watcher = TicketWatcher(settings, engine, interval=1)
    assert watcher.run_once().closed == [key]
    assert watcher.run_once().checked == 0


def test_a_ticket_system_that_is_down_backs_off_and_recovers(
    jira_env, fake_jira, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    settings = Settings()
    engine = RecordingEngine()
    jira_key = _ticket(settings, "pi-j", engine, "jira")
    local_key = _ticket(settings, "pi-l", engine, "local")
    engine.waiting |= {"pi-j", "pi-l"}
    watcher = TicketWatcher(settings, engine, interval=0.2, max_backoff=0.8)
    fake_jira.down_status = 503
    get_ticket_system(settings).transition(local_key, "Done")
    first = watcher.run_once()
    assert first.delivered == [(local_key, "Done")]  # the local system keeps going
    assert first.errors and "jira" in first.errors[0]
    assert watcher.run_once().skipped_systems == ["jira"]  # backing off
    watcher._backoff["jira"].until = 0  # time passes
    watcher.run_once()
    assert watcher._backoff["jira"].failures == 2
    watcher._backoff["jira"].until = 0
    for _ in range(5):
        watcher._fail(watcher._backoff["jira"], "jira", EngineError("x"), WatchReport())
    assert watcher._backoff["jira"].until - time.monotonic() <= 0.8 + 0.01  # capped
    watcher._backoff["jira"].until = 0
    fake_jira.down_status = None
    fake_jira.set_status(jira_key, "Done")
    assert watcher.run_once().delivered == [(jira_key, "Done")]
    assert "jira" in caplog.text and "answers again" in caplog.text
    assert "jira-api-token" not in caplog.text


def test_engine_down_then_run_loop_stops(settings: Settings) -> None:
    engine = RecordingEngine()
    key = _ticket(settings, "pi-4", engine)
    engine.waiting.add("pi-4")
    get_ticket_system(settings).transition(key, "Done")
    engine.down = True
    watcher = TicketWatcher(settings, engine, interval=0.2, max_backoff=0.4)
    report = watcher.run_once()
    assert report.errors and report.errors[0].startswith("engine")
    assert watcher.run_once().skipped_systems == ["engine"]
    engine.down = False
    stop = GracefulStop(1.0)
    status = StatusFile(settings.home, "ticket-watcher", kind="watchers")
    thread = threading.Thread(target=watcher.run, args=(stop, status))
    thread.start()
    def written() -> dict:
        try:
            return json.loads(status.path.read_text())
        except (OSError, ValueError):
            return {}

    for _ in range(100):
        if written().get("delivered"):
            break
        time.sleep(0.05)
    assert written()["rounds"] >= 1 and written()["delivered"] >= 1 and written()["pid"] == os.getpid()
    stop.request("test")
    thread.join(timeout=5)
    assert not thread.is_alive()
    assert not status.path.exists()  # removed on a clean stop
    assert engine.calls and engine.calls[-1][2] == {"TICKET_STATE": "Done"}


def test_refused_credentials_back_off_the_whole_system(jira_env, fake_jira, monkeypatch) -> None:
    engine = RecordingEngine()
    keys = [_ticket(Settings(), f"pi-{i}", engine, "jira") for i in range(2)]
    monkeypatch.setenv("MLC_JIRA_TOKEN", "revoked-token-000000")
    watcher = TicketWatcher(Settings(), engine, interval=1)
    report = watcher.run_once()
    assert len(report.errors) == 1 and "401" in report.errors[0] and "revoked-token" not in report.errors[0]
    assert watcher.run_once().skipped_systems == ["jira"]
    assert len(keys) == 2 and engine.calls == []
