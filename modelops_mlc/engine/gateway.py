"""The one way into Camunda: authentication, HTTP client options and error mapping for every
transport the SDK uses (httpx for the client, aiohttp for external tasks, and requests
underneath pycamunda).

Every engine call of the project goes through :class:`~modelops_mlc.engine.EngineClient` or
:class:`~modelops_mlc.engine.ExternalTaskApi`, and both build their clients here:

* :func:`authorization` is the only place that turns ``MLC_ENGINE_AUTH`` and its credentials
  into an ``Authorization`` header;
* :func:`answer` (:func:`read_response` for httpx, a response hook for pycamunda) and
  :func:`unavailable` are the only places that turn an engine response or a transport failure
  into the :class:`~modelops_mlc.errors.MlcError` tree;
* :class:`Nodes` is the only place that knows ``MLC_ENGINE_URL`` may name several engines of a
  cluster (comma-separated, one database behind them), and which one a call goes to: a
  transport raises :class:`NodeDown`, and the caller moves on to the next node.
"""

from __future__ import annotations

import base64
import json
import time
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
    "NodeDown",
    "Nodes",
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
    """Keyword arguments for ``httpx.Client`` / ``httpx.AsyncClient`` talking to the engine (no
    base URL: :class:`Nodes` picks the node of each call)."""
    return {
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
    if status == 403 and etype == "AuthorizationException":  # authenticated, but no grant (authorization.py)
        return EngineAuthError(f"{prefix}not allowed: {message}", status=status, engine_type=etype,
                               hint="the MLC groups own the actions; an admin adds a user with "
                                    "`mlc engine users add USER --group GROUP` (docs/security.md)")
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


class NodeDown(Exception):
    """A transport could not get an answer from one node. ``sent``: the request may have reached
    it (reset or timed out after sending), so repeating it elsewhere may repeat its effect."""

    def __init__(self, url: str, *, sent: bool) -> None:
        super().__init__(url)
        self.url = url
        self.sent = sent


class Nodes:
    """The engine nodes behind ``MLC_ENGINE_URL``, and the order a call tries them in.

    A call goes to the node that answered last (the first one at start); a node that cannot be
    reached rests for ``rest_s`` seconds behind the others. :meth:`spread` starts each call at
    the next node in turn instead, which is how a worker shares its fetches among the nodes.
    """

    def __init__(self, urls: str, *, rest_s: float = 5.0) -> None:
        self.urls = [u.strip().rstrip("/") for u in urls.split(",") if u.strip()]
        if not self.urls:
            raise UsageError("MLC_ENGINE_URL names no engine")
        self._rest_s = rest_s
        self._preferred = 0
        self._turn = 0
        self._resting_until = [0.0] * len(self.urls)

    def __str__(self) -> str:
        return ", ".join(self.urls)

    def _from(self, first: int) -> list[str]:
        now = time.monotonic()
        ring = [(first + i) % len(self.urls) for i in range(len(self.urls))]
        return [self.urls[i] for i in sorted(ring, key=lambda i: self._resting_until[i] > now)]

    def order(self) -> list[str]:
        """Every node once, the preferred one first and resting ones last."""
        return self._from(self._preferred)

    def spread(self) -> list[str]:
        """Every node once, starting at the next node in turn."""
        self._turn = (self._turn + 1) % len(self.urls)
        return self._from(self._turn)

    def answered(self, url: str) -> None:
        i = self.urls.index(url)
        self._preferred, self._resting_until[i] = i, 0.0

    def failed(self, down: NodeDown, *, replay: bool) -> None:
        """Set the node aside; raise when the call must not go on to the next one (it may have
        had its effect and repeating it is not safe) or there is no other node."""
        self._resting_until[self.urls.index(down.url)] = time.monotonic() + self._rest_s
        if len(self.urls) == 1 or (down.sent and not replay):
            raise unavailable(down.url) from None

    def unreachable(self) -> EngineUnavailable:
        return unavailable(str(self))


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

    It also sends the request to the node of this attempt: pycamunda builds its URL from the
    first node (``base``), and this slot is the one place every one of its requests passes.
    """

    def __init__(self, settings: "Settings", what: str, *, base: str = "", node: str = "") -> None:
        self._authorization = authorization(settings)
        self._what = what
        self._base, self._node = base, node

    def __call__(self, request: "requests.PreparedRequest") -> "requests.PreparedRequest":
        if self._authorization:
            request.headers["Authorization"] = self._authorization
        if self._node != self._base and request.url and request.url.startswith(self._base):
            request.url = self._node + request.url[len(self._base):]
        request.register_hook("response", self._check)
        return request

    def _check(self, response: "requests.Response", *args: Any, **kwargs: Any) -> "requests.Response":
        if response.status_code >= 400:
            raise engine_error(response.status_code, response.text, what=self._what, reason=response.reason or "")
        return response


@contextmanager
def pycamunda_transport(url: str, what: str) -> Iterator[None]:
    """Transport failures under pycamunda (it wraps requests' errors) as :class:`NodeDown`."""
    import pycamunda

    try:
        yield
    except pycamunda.PyCamundaException as exc:
        import requests

        cause = exc.args[0] if exc.args else exc
        if isinstance(cause, requests.exceptions.ConnectionError | requests.exceptions.Timeout):
            raise NodeDown(url, sent=not _never_sent(cause)) from None
        raise EngineError(f"{what}: {cause}") from None


def _never_sent(exc: BaseException) -> bool:
    """requests' error says the connection was never made (refused, no route, connect timeout)."""
    import requests
    import urllib3.exceptions

    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return True
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return isinstance(reason, urllib3.exceptions.NewConnectionError | urllib3.exceptions.ConnectTimeoutError)
