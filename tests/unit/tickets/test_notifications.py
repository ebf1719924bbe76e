"""Notifications: stored once per dedupe key, listed by `mlc alerts`, posted to a webhook."""

from __future__ import annotations

import datetime as dt
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from modelops_mlc.config import Settings
from modelops_mlc.errors import UsageError
from modelops_mlc.tickets.notifications import list_notifications, notify, parse_since


class _Hook(BaseHTTPRequestHandler):
    received: list = []
    status = 200

    def log_message(self, *args) -> None:
        pass

    def do_POST(self) -> None:  # noqa: N802
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append((self.headers["Content-Type"], json.loads(body)))
        self.send_response(type(self).status)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")


@pytest.fixture
def webhook():
    handler = type("Hook", (_Hook,), {"received": [], "status": 200})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield handler, f"http://127.0.0.1:{server.server_address[1]}/hooks/T000/B000"
    server.shutdown()
    server.server_close()


def test_notify_is_idempotent_and_listed(settings: Settings) -> None:
    first = notify(settings, "info", "test passed", model_id="churn", process_instance_id="pi-1", dedupe_key="pi-1:n")
    again = notify(settings, "info", "test passed", model_id="churn", process_instance_id="pi-1", dedupe_key="pi-1:n")
    assert again.id == first.id and first.webhook is None
    notify(settings, "warning", "drift", model_id="fraud")
    notify(settings, "error", "deploy failed", model_id="churn")
    assert [n.message for n in list_notifications(settings)] == ["deploy failed", "drift", "test passed"]
    assert [n.message for n in list_notifications(settings, model_id="churn", level="error")] == ["deploy failed"]
    future = dt.datetime.now(dt.timezone.utc) + dt.timedelta(minutes=5)
    assert list_notifications(settings, since=future) == []
    assert len(list_notifications(settings, since=parse_since("5m"))) == 3
    with pytest.raises(UsageError):
        notify(settings, "loud", "x")


def test_webhook_gets_slack_style_json(mlc_env, monkeypatch, webhook) -> None:
    handler, url = webhook
    monkeypatch.setenv("MLC_WEBHOOK_URL", url)
    monkeypatch.setenv("MLC_SERVICENOW_PASSWORD", "hush-hush-password")
    settings = Settings()
    sent = notify(settings, "error", "login hush-hush-password failed", model_id="churn", dedupe_key="k")
    assert sent.webhook == "sent" and "hush-hush-password" not in sent.message
    content_type, body = handler.received[0]
    assert content_type == "application/json"
    assert body == {"text": "[ERROR] churn: login *** failed"}
    notify(settings, "error", "again", dedupe_key="k")
    assert len(handler.received) == 1  # idempotent: not posted twice


def test_webhook_failure_is_recorded_and_retried(mlc_env, monkeypatch, webhook) -> None:
    handler, url = webhook
    handler.status = 500
    monkeypatch.setenv("MLC_WEBHOOK_URL", url)
    settings = Settings()
    assert notify(settings, "info", "hello", dedupe_key="k2").webhook == "failed"
    handler.status = 200
    assert notify(settings, "info", "hello", dedupe_key="k2").webhook == "sent"
    assert len(handler.received) == 2


def test_parse_since() -> None:
    now = dt.datetime(2026, 1, 2, tzinfo=dt.timezone.utc)
    assert parse_since("2h", now=now) == now - dt.timedelta(hours=2)
    assert parse_since("7d", now=now) == now - dt.timedelta(days=7)
    assert parse_since("1h30m", now=now) == parse_since("PT1H30M", now=now) == now - dt.timedelta(minutes=90)
    assert parse_since("2026-01-01") == dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    assert parse_since(None) is None
    with pytest.raises(UsageError):
        parse_since("last week")
    with pytest.raises(UsageError, match="reaches back before the year 1"):
        parse_since("99999999d")
    with pytest.raises(UsageError, match="reaches back before the year 1"):
        parse_since("9999999999w")
