"""The one place where HTTP failures of a SaaS ticket system become TicketErrors."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import httpx

from modelops_mlc.errors import TicketError, first_line
from modelops_mlc.tickets.base import TicketSystemUnavailable
from modelops_mlc.tickets.template import redact

if TYPE_CHECKING:
    from modelops_mlc.config import Settings

__all__ = ["HttpApi", "TicketAuthError", "TicketNotFound", "credentials"]

log = logging.getLogger(__name__)


class TicketNotFound(TicketError):
    """No ticket with that key (or it is not visible to our credentials)."""

    exit_code = 4


class TicketAuthError(TicketError):
    """The ticket system refused our credentials (401/403)."""


def credentials(
    system: str, *, bearer: Any, user: str | None, secret: Any, hint: str
) -> tuple[httpx.Auth | None, dict[str, str]]:
    """A bearer token wins over user + secret (basic); neither is a ConfigError naming the system."""
    from modelops_mlc.errors import ConfigError

    if bearer is not None:
        return None, {"Authorization": f"Bearer {bearer.get_secret_value()}"}
    if user and secret is not None:
        return httpx.BasicAuth(user, secret.get_secret_value()), {}
    raise ConfigError(f"the {system} ticket system needs credentials", hint=hint)


class HttpApi:
    """A small JSON client for one ticket system: auth, timeouts and error mapping."""

    def __init__(
        self,
        system: str,
        base_url: str,
        settings: "Settings",
        *,
        auth: httpx.Auth | None = None,
        headers: dict[str, str] | None = None,
        credentials_hint: str = "",
    ) -> None:
        self.system = system
        self.base_url = base_url.rstrip("/")
        self._settings = settings
        self._hint = credentials_hint
        self._client = httpx.Client(
            base_url=self.base_url,
            auth=auth,
            headers={"Accept": "application/json", **(headers or {})},
            timeout=settings.ticket_request_timeout,
            follow_redirects=False,
        )

    def close(self) -> None:
        self._client.close()

    def call(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json: Any = None,
        not_found: str | None = None,
    ) -> httpx.Response:
        """Send one request; 2xx returns the response, anything else raises a TicketError."""
        try:
            response = self._client.request(method, path, params=params, json=json)
        except httpx.TimeoutException as exc:
            raise TicketSystemUnavailable(f"{self.system} did not answer in time at {self.base_url}") from exc
        except httpx.TransportError as exc:
            raise TicketSystemUnavailable(
                f"{self.system} is unreachable at {self.base_url}: {type(exc).__name__}"
            ) from exc
        if response.is_success:
            return response
        detail = redact(self._error_detail(response), self._settings)
        status = response.status_code
        where = f"{method} {path}"
        if status in (401, 403):
            raise TicketAuthError(
                f"{self.system} refused our credentials (HTTP {status}) on {where}", hint=self._hint or None
            )
        if status == 404:
            raise TicketNotFound(not_found or f"{self.system}: not found: {where}")
        if status == 429 or status >= 500:
            raise TicketSystemUnavailable(f"{self.system} answered HTTP {status} on {where}: {detail}")
        raise TicketError(f"{self.system} rejected {where} (HTTP {status}): {detail}")

    @staticmethod
    def _error_detail(response: httpx.Response) -> str:
        """Jira: errorMessages/errors; ServiceNow: error.message/detail; else the first line of text."""
        try:
            body = response.json()
        except ValueError:
            return first_line(response.text or "", 300) or response.reason_phrase
        if isinstance(body, dict):
            parts: list[str] = []
            parts += [str(m) for m in body.get("errorMessages") or []]
            errors = body.get("errors")
            if isinstance(errors, dict):
                parts += [f"{k}: {v}" for k, v in errors.items()]
            error = body.get("error")
            if isinstance(error, dict):
                parts += [str(error[k]) for k in ("message", "detail") if error.get(k)]
            elif isinstance(error, str):
                parts.append(error)
            if body.get("message"):
                parts.append(str(body["message"]))
            if parts:
                return "; ".join(parts)[:500]
        return str(body)[:300]
