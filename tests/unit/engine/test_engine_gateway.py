"""The engine gateway: one Authorization header for every transport, one reading of engine errors."""

from __future__ import annotations

import base64

import httpx
import pytest

from modelops_mlc.config import Settings
from modelops_mlc.engine import gateway, is_lock_lost
from modelops_mlc.errors import EngineAuthError, EngineError, UsageError


def test_authorization_for_each_mode() -> None:
    assert gateway.authorization(Settings(engine_auth="none")) is None
    basic = gateway.authorization(Settings(engine_auth="basic", engine_user="ann", engine_password="s3cret"))
    assert basic == "Basic " + base64.b64encode(b"ann:s3cret").decode()
    assert gateway.authorization(Settings(engine_auth="bearer", engine_token="tok")) == "Bearer tok"
    with pytest.raises(UsageError, match="MLC_ENGINE_TOKEN"):
        gateway.authorization(Settings(engine_auth="bearer"))


def test_engine_errors_keep_the_engines_message_type_and_status() -> None:
    body = '{"type": "RestException", "message": "No matching process definition with key: nope"}'
    exc = gateway.engine_error(400, body, what="start nope")
    assert type(exc) is EngineError and exc.status == 400 and exc.engine_type == "RestException"
    assert exc.message == "start nope: No matching process definition with key: nope"
    plain = gateway.engine_error(502, "Bad Gateway from the proxy")
    assert plain.message == "Bad Gateway from the proxy" and plain.engine_type is None
    assert gateway.engine_error(500, "", reason="Internal Server Error").message == "Internal Server Error"
    wrapped = gateway.engine_error(500, '{"message": "org.camunda.bpm.engine.ProcessEngineException: ENGINE-03004 x"}')
    assert wrapped.message == "ENGINE-03004 x" and wrapped.engine_type == "ProcessEngineException"


def test_refused_credentials_are_an_auth_error_with_a_hint_and_no_secret() -> None:
    exc = gateway.engine_error(401, '{"type": "AuthenticationException", "message": "bad password s3cret"}')
    assert isinstance(exc, EngineAuthError) and exc.status == 401
    assert "s3cret" not in exc.message and "MLC_ENGINE_AUTH" in (exc.hint or "")


def test_read_response_parses_json_and_raises_for_errors() -> None:
    request = httpx.Request("GET", "http://engine/engine-rest/x")
    assert gateway.read_response(httpx.Response(200, json={"a": 1}, request=request)) == {"a": 1}
    assert gateway.read_response(httpx.Response(204, request=request)) is None
    with pytest.raises(EngineError, match="does not exist") as info:
        gateway.read_response(httpx.Response(404, json={"type": "RestException", "message": "Task x does not exist"},
                                             request=request))
    assert is_lock_lost(info.value)


@pytest.mark.parametrize("typed", ["", ".", ".."])
def test_an_id_that_would_name_another_resource_is_refused_before_sending(typed: str) -> None:
    """`mlc incidents --retry .` once fetched /incident/ (the list) and failed inside; such an id is a usage
    error, found before any request (nothing answers at this address, so a request would say so instead)."""
    from modelops_mlc.engine import EngineClient

    with EngineClient(Settings(engine_url="http://127.0.0.1:9/engine-rest", engine_auth="none")) as client:
        with pytest.raises(UsageError, match="holds an empty id, '.' or '..'"):
            client.retry_incident(typed)
