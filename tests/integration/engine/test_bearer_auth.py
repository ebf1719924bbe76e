"""MLC_ENGINE_AUTH=bearer: the stock engine has no bearer auth of its own, so it is run behind a
token-checking reverse proxy (as an OAuth2 proxy would front it). The proxy here checks the
token and forwards to the session's real engine; every transport of the engine gateway must send
it: EngineClient's httpx and pycamunda calls, and the async ExternalTaskApi."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from modelops_mlc.config import Settings
from modelops_mlc.engine import EngineClient, ExternalTaskApi, Subscription
from modelops_mlc.errors import EngineAuthError, UsageError

TOKEN = "t0ken-" + uuid.uuid4().hex
DATA = Path(__file__).resolve().parents[2] / "data"


@pytest.fixture
def bearer_proxy(engine) -> Iterator[str]:
    upstream = engine.url.rsplit("/engine-rest", 1)[0]

    class Proxy(BaseHTTPRequestHandler):
        def _forward(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                self.send_response(401)
                self.send_header("Content-Type", "application/json")
                payload = b'{"type":"AuthenticationException","message":"bearer token required"}'
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
                return
            headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "authorization", "content-length")}
            r = httpx.request(self.command, upstream + self.path, content=body, headers=headers, timeout=30)
            self.send_response(r.status_code)
            for key in ("Content-Type",):
                if key in r.headers:
                    self.send_header(key, r.headers[key])
            self.send_header("Content-Length", str(len(r.content)))
            self.end_headers()
            self.wfile.write(r.content)

        do_GET = do_POST = do_PUT = do_DELETE = _forward

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Proxy)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/engine-rest"
    server.shutdown()
    server.server_close()


def test_bearer_token_reaches_the_engine_on_both_stacks(bearer_proxy: str) -> None:
    settings = Settings(engine_url=bearer_proxy, engine_auth="bearer", engine_token=TOKEN)
    model = f"bearer-{uuid.uuid4().hex[:6]}"
    with EngineClient(settings) as client:
        assert client.ping() == ["default"]  # httpx
        client.deploy_processes([DATA / "signal_start.bpmn"])  # pycamunda (requests, multipart)
        client.signal("mlc.test-review-requested", {"MODEL_ID": model})  # pycamunda
        assert client.count_instances(model_id=model) == 1


def test_bearer_token_reaches_the_engine_from_the_external_task_api(bearer_proxy: str) -> None:
    async def fetch(token: str) -> list:
        settings = Settings(engine_url=bearer_proxy, engine_auth="bearer", engine_token=token)
        async with ExternalTaskApi(settings, "bearer-test") as api:
            return await api.fetch_and_lock([Subscription("no-such-topic-" + uuid.uuid4().hex[:6])], 1)

    assert asyncio.run(fetch(TOKEN)) == []
    with pytest.raises(EngineAuthError, match="refused the credentials"):
        asyncio.run(fetch("wrong"))


def test_wrong_or_missing_token_is_refused(bearer_proxy: str) -> None:
    with EngineClient(Settings(engine_url=bearer_proxy, engine_auth="bearer", engine_token="wrong")) as client:
        with pytest.raises(EngineAuthError):
            client.ping()
        with pytest.raises(EngineAuthError):
            client.signal("mlc.test-review-requested")
    with pytest.raises(UsageError, match="MLC_ENGINE_TOKEN"):
        EngineClient(Settings(engine_url=bearer_proxy, engine_auth="bearer"))
