"""The one way into Camunda: authentication, HTTP client options and error mapping for every
transport the SDK uses (httpx for the client, aiohttp for external tasks, and requests
underneath pycamunda).

Every engine call of the project goes through :class:`~modelops_mlc.engine.EngineClient` or
:class:`~modelops_mlc.engine.ExternalTaskApi`, and both build their clients here:

* :func:`authorization` is the only place that turns ``MLC_ENGINE_AUTH`` and its credentials
  into an ``Authorization`` header;
* :func:`answer` (:func:`read_response` for httpx, a response hook for pycamunda) and
  :func:`unavailable` are the only places that turn an engine response or a transport failure
  into the :class:`~modelops_mlc.errors.MlcError` tree.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import httpx

from modelops_mlc.errors import EngineAuthError, EngineError, EngineUnavailable, UsageError

if TYPE_CHECKING:
    import requests

    from modelops_mlc.config import Settings

__all__ = [
    "AUTH_HINT",
    "PycamundaAuth",
    "answer",
    "authorization",
    "engine_error",
    "headers",
    "http_options",
    "is_lock_lost",
    "pycamunda_transport",
    "read_response",
    "unavailable",
]

AUTH_HINT = "check MLC_ENGINE_AUTH, MLC_ENGINE_USER and MLC_ENGINE_PASSWORD (or MLC_ENGINE_TOKEN)"


def authorization(settings: "Settings") -> str | None:
    """The ``Authorization`` header value for the configured auth mode (None for ``none``)."""
    if settings.engine_auth == "basic":
        pair = f"{settings.engine_user}:{settings.engine_password.get_secret_value()}".encode()
        return "Basic " + base64.b64encode(pair).decode("ascii")
    if settings.engine_auth == "bearer":
        if not settings.engine_token or not settings.engine_token.get_secret_value():
            raise UsageError("MLC_ENGINE_AUTH=bearer needs MLC_ENGINE_TOKEN")
        return f"Bearer {settings.engine_token.get_secret_value()}"
    return None


def headers(settings: "Settings") -> dict[str, str]:
    """Request headers every engine call carries."""
    found = {"Accept": "application/json"}
    auth = authorization(settings)
    if auth:
        found["Authorization"] = auth
    return found


def http_options(settings: "Settings", *, timeout: float | None = None) -> dict[str, Any]:
    """Keyword arguments for ``httpx.Client`` / ``httpx.AsyncClient`` talking to the engine."""
    return {
        "base_url": settings.engine_url,
        "headers": headers(settings),
        "timeout": timeout or settings.engine_request_timeout,
    }


def engine_error(status: int, body: str, *, what: str | None = None, reason: str = "") -> EngineError:
    """The error for an engine answer with HTTP ``status`` and response text ``body``.

    The engine answers ``{"type": "SomeException", "message": "..."}``; the message is kept as
    the engine wrote it (less the class name of a wrapped exception), and the type goes to
    ``engine_type``.
    """
    message, etype = (body or "").strip() or reason or f"HTTP {status}", None
    try:
        parsed = json.loads(body) if body else None
    except ValueError:
        parsed = None
    if isinstance(parsed, dict):
        message, etype = str(parsed.get("message") or reason or message), parsed.get("type")
    # A wrapped engine exception reads "org.camunda.bpm.engine.SomeException: what happened".
    head, sep, rest = message.partition(": ")
    if sep and head.startswith("org.camunda.") and " " not in head:
        etype, message = etype or head.rsplit(".", 1)[-1], rest.strip() or message
    prefix = f"{what}: " if what else ""
    if status in (401, 403):
        return EngineAuthError(f"{prefix}the engine refused the credentials ({status})", status=status,
                               engine_type=etype, hint=AUTH_HINT)
    return EngineError(f"{prefix}{message}", status=status, engine_type=etype)


def unavailable(url: str) -> EngineUnavailable:
    """The error for an engine nothing answers for (refused, timed out, reset)."""
    return EngineUnavailable(
        f"cannot reach the engine at {url}",
        hint="start one with `mlc engine start` or `mlc up`, or set MLC_ENGINE_URL",
    )


def answer(status: int, body: bytes, *, what: str | None = None, reason: str = "") -> Any:
    """The parsed JSON of an engine answer (None for an empty one); raises for an error status.
    Any transport hands its status, raw body and reason phrase here."""
    if status >= 400:
        raise engine_error(status, body.decode("utf-8", "replace"), what=what, reason=reason)
    if status == 204 or not body:
        return None
    try:
        return json.loads(body)
    except ValueError:
        return body.decode("utf-8", "replace")


def read_response(response: httpx.Response, *, what: str | None = None) -> Any:
    """:func:`answer` for an httpx response."""
    return answer(response.status_code, response.content, what=what, reason=response.reason_phrase)


def is_lock_lost(exc: EngineError) -> bool:
    """The external task is gone or locked by another worker: nothing of ours to report on it."""
    if exc.status == 404:
        return True
    text = (exc.message or "").lower()
    # the engine's words (7.24): "... It is locked by worker 'x'.", "External task with id ... does not exist"
    return any(s in text for s in ("locked by worker", "does not exist", "is not locked", "lock has expired"))


class PycamundaAuth:
    """What pycamunda gets as ``request.auth``: our header, and our reading of error answers.

    pycamunda offers no hook for either other than its ``auth`` slot, which it passes to
    requests on every call (also on ``deployment.Create``, which bypasses its session). Its own
    error mapping drops the engine's exception type and, for most statuses, the status itself;
    so a response hook registered here raises our :func:`engine_error` before pycamunda reads
    the response.
    """

    def __init__(self, settings: "Settings", what: str) -> None:
        self._authorization = authorization(settings)
        self._what = what

    def __call__(self, request: "requests.PreparedRequest") -> "requests.PreparedRequest":
        if self._authorization:
            request.headers["Authorization"] = self._authorization
        request.register_hook("response", self._check)
        return request

    def _check(self, response: "requests.Response", *args: Any, **kwargs: Any) -> "requests.Response":
        if response.status_code >= 400:
            raise engine_error(response.status_code, response.text, what=self._what, reason=response.reason or "")
        return response


@contextmanager
def pycamunda_transport(url: str, what: str) -> Iterator[None]:
    """Transport failures under pycamunda (it wraps requests' errors) as :func:`unavailable`."""
    import pycamunda

    try:
        yield
    except pycamunda.PyCamundaException as exc:
        import requests

        cause = exc.args[0] if exc.args else exc
        if isinstance(cause, requests.exceptions.ConnectionError | requests.exceptions.Timeout):
            raise unavailable(url) from None
        raise EngineError(f"{what}: {cause}") from None
