"""ServiceNow incidents through the Table API (``/api/now/table/incident``).

Auth is basic (``MLC_SERVICENOW_USER`` + ``MLC_SERVICENOW_PASSWORD``) or an OAuth bearer token
(``MLC_SERVICENOW_TOKEN``). Our ticket key is the incident number (``INC0010001``); the
``correlation_id`` carries the dedupe key and ``correlation_display`` marks our incidents.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from typing import TYPE_CHECKING, Any


from modelops_mlc.errors import ConfigError, UsageError
from modelops_mlc.store import open_store
from modelops_mlc.tickets import links
from modelops_mlc.tickets._http import HttpApi, TicketNotFound, credentials
from modelops_mlc.tickets.base import (
    Ticket,
    TicketContext,
    TicketState,
    model_from_labels,
    model_label,
    normalise_state,
    standard_labels,
)
from modelops_mlc.tickets.template import redact, render_description

if TYPE_CHECKING:
    from modelops_mlc.config import Settings

__all__ = ["STATE_CODES", "ServiceNowTicketSystem"]

TABLE = "/api/now/table/incident"
MARKER = "modelops-mlc"
# resolved_by and closed_by reference sys_user; dot-walking gives their login (user_name).
_RESOLVERS = ("resolved_by.user_name", "closed_by.user_name", "sys_updated_by")
_FIELDS = ("sys_id,number,short_description,description,state,sys_created_on,sys_updated_on,correlation_id,"
           + ",".join(_RESOLVERS))
_CREDENTIALS_HINT = "set MLC_SERVICENOW_USER and MLC_SERVICENOW_PASSWORD, or MLC_SERVICENOW_TOKEN (OAuth)"

# incident.state: 1 New, 2 In Progress, 3 On Hold, 6 Resolved, 7 Closed, 8 Canceled
STATE_CODES: dict[str, tuple[str, TicketState]] = {
    "1": ("New", TicketState.OPEN),
    "2": ("In Progress", TicketState.IN_PROGRESS),
    "3": ("On Hold", TicketState.IN_PROGRESS),
    "6": ("Resolved", TicketState.DONE),
    "7": ("Closed", TicketState.DONE),
    "8": ("Canceled", TicketState.REJECTED),
}
_TARGET_CODE = {
    TicketState.OPEN: "1",
    TicketState.IN_PROGRESS: "2",
    TicketState.DONE: "6",
    TicketState.REJECTED: "8",
}
_SYS_ID = re.compile(r"^[0-9a-f]{32}$")
_NUMBER = re.compile(r"^[A-Z]+\d+$")
_LABELS_LINE = re.compile(r"^Labels: (.+)$", re.MULTILINE)


def correlation_id(dedupe_key: str) -> str:
    """correlation_id holds 100 characters; longer keys are hashed."""
    return dedupe_key if len(dedupe_key) <= 100 else "sha1:" + hashlib.sha1(dedupe_key.encode()).hexdigest()


def _parse_time(value: str | None) -> dt.datetime | None:
    """The Table API writes ``2026-11-23 13:00:00`` in UTC (without display values)."""
    if not value:
        return None
    try:
        return dt.datetime.strptime(value, "%Y-%m-%d %H:%M:%S").replace(tzinfo=dt.timezone.utc)
    except ValueError:
        return None


class ServiceNowTicketSystem:
    """Incidents in ServiceNow; work notes carry our comments."""

    name = "servicenow"

    def __init__(self, settings: "Settings") -> None:
        if not settings.servicenow_url:
            raise ConfigError("the servicenow ticket system needs MLC_SERVICENOW_URL")
        auth, headers = credentials("servicenow", bearer=settings.servicenow_token, user=settings.servicenow_user,
                                    secret=settings.servicenow_password, hint=_CREDENTIALS_HINT)
        headers["Content-Type"] = "application/json"
        self.settings = settings
        self.store = open_store(settings)
        self.base_url = settings.servicenow_url.rstrip("/")
        self.api = HttpApi(
            "servicenow", self.base_url, settings, auth=auth, headers=headers, credentials_hint=_CREDENTIALS_HINT
        )

    def create(
        self,
        title: str,
        description: str,
        labels: list[str],
        context: TicketContext,
        dedupe_key: str | None = None,
    ) -> Ticket:
        context = context.with_cockpit(self.settings.engine_url)
        found = links.claim(self.store, self.name, dedupe_key)
        if found.existing:
            return links.existing_ticket(self.settings, found.existing)
        assert found.link_id is not None
        try:
            record = None
            if dedupe_key and found.taken_over:  # a creator died mid-way: maybe the incident exists
                hits = self._query(f"correlation_id={correlation_id(dedupe_key)}", limit=1)
                record = hits[0] if hits else None
            if record is None:
                all_labels = standard_labels(labels, context)
                body: dict[str, Any] = {
                    "short_description": redact(title, self.settings)[:160],
                    "description": render_description(
                        context, intro=description, labels=all_labels, settings=self.settings
                    ),
                    "category": "software",
                    "correlation_display": MARKER,
                }
                if dedupe_key:
                    body["correlation_id"] = correlation_id(dedupe_key)
                record = self.api.call(
                    "POST", TABLE, params={"sysparm_fields": _FIELDS, "sysparm_exclude_reference_link": "true"}, json=body
                ).json()["result"]
            ticket = self._ticket(record)
        except BaseException:
            links.release_claim(self.store, found.link_id)
            raise
        ticket = ticket.model_copy(
            update={
                "model_id": context.model_id or ticket.model_id,
                "model_version": context.model_version or ticket.model_version,
                "process_instance_id": context.process_instance_id,
            }
        )
        links.finish_claim(self.store, found.link_id, ticket, context, remote_id=record.get("sys_id"))
        return ticket

    def get(self, key: str) -> Ticket:
        return self._ticket(self._record(key))

    def transition(self, key: str, state: str | TicketState, comment: str | None = None) -> Ticket:
        target = normalise_state(state)
        record = self._record(key)
        body: dict[str, Any] = {}
        if STATE_CODES.get(str(record.get("state")), ("", TicketState.OPEN))[1] != target:
            body["state"] = _TARGET_CODE[target]
            if target is TicketState.DONE:  # resolving needs a close code and notes on stock instances
                body["close_code"] = "Solution provided"
                body["close_notes"] = redact(comment, self.settings) if comment else "Resolved through modelops-mlc"
        if comment:
            body["work_notes"] = redact(comment, self.settings)
        if not body:
            return self._ticket(record)
        updated = self.api.call(
            "PATCH",
            f"{TABLE}/{record['sys_id']}",
            params={"sysparm_fields": _FIELDS, "sysparm_exclude_reference_link": "true"},
            json=body,
            not_found=f"no ServiceNow incident {key!r}",
        ).json()["result"]
        return self._ticket(updated)

    def comment(self, key: str, text: str) -> None:
        record = self._record(key)
        self.api.call(
            "PATCH",
            f"{TABLE}/{record['sys_id']}",
            params={"sysparm_fields": "sys_id"},
            json={"work_notes": redact(text, self.settings)},
            not_found=f"no ServiceNow incident {key!r}",
        )

    def search(self, model_id: str | None = None, state: str | TicketState | None = None) -> list[Ticket]:
        query = f"correlation_display={MARKER}"
        if model_id:
            query += f"^descriptionLIKE{model_label(model_id)}"
        if state:
            codes = [c for c, (_n, s) in STATE_CODES.items() if s == normalise_state(state)]
            query += "^stateIN" + ",".join(codes)
        tickets = [self._ticket(r) for r in self._query(query + "^ORDERBYDESCsys_created_on", limit=500)]
        if model_id:  # LIKE matches prefixes of longer names too
            tickets = [t for t in tickets if t.model_id == model_id or model_label(model_id) in t.labels]
        return tickets

    def get_many(self, keys: list[str]) -> dict[str, Ticket]:
        """Several incidents in one query per 100 numbers (the watcher's poll)."""
        found: dict[str, Ticket] = {}
        for start in range(0, len(keys), 100):
            chunk = [k.strip().upper() for k in keys[start : start + 100] if _NUMBER.match(k.strip().upper())]
            if not chunk:
                continue
            for record in self._query("numberIN" + ",".join(chunk), limit=len(chunk)):
                ticket = self._ticket(record)
                found[ticket.key] = ticket
        return found

    def close(self) -> None:
        self.api.close()

    def __enter__(self) -> "ServiceNowTicketSystem":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _record(self, key: str) -> dict[str, Any]:
        params = {"sysparm_fields": _FIELDS, "sysparm_exclude_reference_link": "true"}
        if _SYS_ID.match(key):
            return self.api.call(
                "GET", f"{TABLE}/{key}", params=params, not_found=f"no ServiceNow incident {key!r}"
            ).json()["result"]
        number = key.strip().upper()
        if not _NUMBER.match(number):
            raise UsageError(f"{key!r} is not a ServiceNow incident number (like INC0010001) or sys_id")
        hits = self._query(f"number={number}", limit=1)
        if not hits:
            raise TicketNotFound(f"no ServiceNow incident {key!r} (or our account may not see it)")
        return hits[0]

    def _query(self, query: str, *, limit: int) -> list[dict[str, Any]]:
        params = {
            "sysparm_query": query,
            "sysparm_fields": _FIELDS,
            "sysparm_limit": str(limit),
            "sysparm_exclude_reference_link": "true",
        }
        return list(self.api.call("GET", TABLE, params=params).json().get("result") or [])

    def _ticket(self, record: dict[str, Any]) -> Ticket:
        code = str(record.get("state") or "1")
        raw, state = STATE_CODES.get(code, (code, TicketState.OPEN))
        description = record.get("description") or ""
        match = _LABELS_LINE.search(description)
        labels = [lb.strip() for lb in match.group(1).split(",")] if match else []
        model_id, model_version = model_from_labels(labels)
        key = record.get("number") or record["sys_id"]
        resolver = _resolver(record, state)
        link = links.link_for(self.store, self.name, key)
        if link is not None:
            model_id = link.model_id or model_id
            model_version = link.model_version or model_version
        return Ticket(
            key=key,
            system=self.name,
            title=record.get("short_description") or "",
            description=description,
            state=state,
            raw_state=raw,
            labels=labels,
            model_id=model_id,
            model_version=model_version,
            process_instance_id=link.process_instance_id if link else None,
            url=f"{self.base_url}/nav_to.do?uri=incident.do%3Fsys_id%3D{record.get('sys_id')}",
            created_at=_parse_time(record.get("sys_created_on")),
            updated_at=_parse_time(record.get("sys_updated_on")),
            resolved_by=resolver,
            resolved_by_ids=[resolver] if resolver else [],
        )


def _resolver(record: dict[str, Any], state: TicketState) -> str | None:
    """Who resolved (Done) or cancelled (Rejected) the incident; None while it is open.

    Done: the user name of ``resolved_by``, else of ``closed_by``, else None (the watcher then
    refuses the approval). Never ``sys_updated_by``: the last writer may be our own account (the
    watcher's refusal comment), and an approval must not become that account's. Rejected: ``closed_by``,
    else the last writer (a rejection approves nothing)."""
    if not state.terminal:
        return None
    fields = _RESOLVERS[:2] if state is TicketState.DONE else _RESOLVERS[1:]
    return next((str(record[f]).strip() for f in fields if str(record.get(f) or "").strip()), None)
