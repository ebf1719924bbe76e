"""Jira through REST API v2: issues in ``MLC_JIRA_PROJECT``, statuses mapped onto our four states.

Auth is basic (``MLC_JIRA_USER`` = account e-mail, ``MLC_JIRA_TOKEN`` = API token; Jira Cloud) or a
bearer personal access token (``MLC_JIRA_BEARER_TOKEN``; Data Center). Search uses
``/rest/api/2/search`` and switches to ``/rest/api/2/search/jql`` where Jira Cloud retired the former.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import re
from typing import TYPE_CHECKING, Any


from modelops_mlc.errors import ConfigError, TicketError, UsageError
from modelops_mlc.store import open_store
from modelops_mlc.tickets import links
from modelops_mlc.tickets._http import HttpApi, credentials
from modelops_mlc.tickets.base import (
    Ticket,
    TicketContext,
    TicketState,
    TicketSystemUnavailable,
    model_from_labels,
    model_label,
    normalise_state,
    standard_labels,
)
from modelops_mlc.tickets.template import redact, render_description

if TYPE_CHECKING:
    from modelops_mlc.config import Settings

__all__ = ["DEFAULT_STATUS_MAP", "JiraTicketSystem", "dedupe_label", "parse_jira_time"]

log = logging.getLogger(__name__)

DEFAULT_STATUS_MAP: dict[str, TicketState] = {
    "to do": TicketState.OPEN,
    "open": TicketState.OPEN,
    "reopened": TicketState.OPEN,
    "in progress": TicketState.IN_PROGRESS,
    "done": TicketState.DONE,
    "closed": TicketState.DONE,
    "resolved": TicketState.DONE,
    "rejected": TicketState.REJECTED,
    "won't do": TicketState.REJECTED,
}
_CATEGORY_MAP = {"new": TicketState.OPEN, "indeterminate": TicketState.IN_PROGRESS, "done": TicketState.DONE}
_FIELDS = "status,summary,labels,description,updated,created"
_CREDENTIALS_HINT = "set MLC_JIRA_USER and MLC_JIRA_TOKEN (Jira Cloud) or MLC_JIRA_BEARER_TOKEN (Data Center)"


def dedupe_label(dedupe_key: str) -> str:
    return "mlc-ref-" + hashlib.sha1(dedupe_key.encode()).hexdigest()[:16]


def parse_jira_time(value: str | None) -> dt.datetime | None:
    """Jira writes ``2026-11-23T13:00:00.000+0000``."""
    if not value:
        return None
    for fmt in ("%Y-%m-%dT%H:%M:%S.%f%z", "%Y-%m-%dT%H:%M:%S%z"):
        try:
            return dt.datetime.strptime(value, fmt)
        except ValueError:
            continue
    try:
        return dt.datetime.fromisoformat(value)
    except ValueError:
        return None


_KEY = re.compile(r"^[A-Za-z][A-Za-z0-9_]*-\d+$|^\d+$")


def _check_key(key: str) -> str:
    """An issue key (``OPS-12``) or id; anything else never reaches a URL."""
    key = key.strip()
    if not _KEY.match(key):
        raise UsageError(f"{key!r} is not a Jira issue key (like OPS-12)")
    return key.upper()


class JiraTicketSystem:
    """Jira issues; the model id travels as label ``mlc-model-<name>``."""

    name = "jira"

    def __init__(self, settings: "Settings") -> None:
        if not settings.jira_url:
            raise ConfigError("the jira ticket system needs MLC_JIRA_URL")
        auth, headers = credentials("jira", bearer=settings.jira_bearer_token, user=settings.jira_user,
                                    secret=settings.jira_token, hint=_CREDENTIALS_HINT)
        self.settings = settings
        self.store = open_store(settings)
        self.base_url = settings.jira_url.rstrip("/")
        self.status_map = dict(DEFAULT_STATUS_MAP)
        for status, state in (settings.jira_status_map or {}).items():
            self.status_map[status.strip().lower()] = normalise_state(state)
        self.api = HttpApi(
            "jira", self.base_url, settings, auth=auth, headers=headers, credentials_hint=_CREDENTIALS_HINT
        )
        self._search_path = "/rest/api/2/search"

    # -- protocol ---------------------------------------------------------------------------

    def create(
        self,
        title: str,
        description: str,
        labels: list[str],
        context: TicketContext,
        dedupe_key: str | None = None,
    ) -> Ticket:
        if not self.settings.jira_project:
            raise ConfigError("creating Jira issues needs MLC_JIRA_PROJECT (the project key)")
        context = context.with_cockpit(self.settings.engine_url)
        found = links.claim(self.store, self.name, dedupe_key)
        if found.existing:
            return links.existing_ticket(self.settings, found.existing)
        assert found.link_id is not None
        try:
            all_labels = standard_labels(labels, context)
            ticket = None
            if dedupe_key and found.taken_over:  # a creator died mid-way: maybe the issue exists
                ticket = next(iter(self._jql(f'labels = "{dedupe_label(dedupe_key)}"', limit=1)), None)
            if ticket is None:
                fields = {
                    "project": {"key": self.settings.jira_project},
                    "summary": redact(title, self.settings)[:255],
                    "description": render_description(
                        context, intro=description, labels=all_labels, settings=self.settings
                    ),
                    "issuetype": {"name": self.settings.jira_issue_type},
                    "labels": all_labels + ([dedupe_label(dedupe_key)] if dedupe_key else []),
                }
                created = self.api.call("POST", "/rest/api/2/issue", json={"fields": fields}).json()
                ticket = self.get(created["key"])
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
        links.finish_claim(self.store, found.link_id, ticket, context)
        return ticket

    def get(self, key: str) -> Ticket:
        key = _check_key(key)
        body = self.api.call(
            "GET",
            f"/rest/api/2/issue/{key}",
            params={"fields": _FIELDS, "expand": "changelog"},
            not_found=f"no Jira issue {key!r} (or our account may not see it)",
        ).json()
        return self._ticket(body)

    def transition(self, key: str, state: str | TicketState, comment: str | None = None) -> Ticket:
        target = normalise_state(state)
        key = _check_key(key)
        current = self.get(key)
        if current.state != target:
            body = self.api.call(
                "GET", f"/rest/api/2/issue/{key}/transitions", not_found=f"no Jira issue {key!r}"
            ).json()
            options = body.get("transitions") or []
            chosen = self._pick_transition(options, target)
            if chosen is None:
                names = ", ".join(f"{t.get('name')} -> {(t.get('to') or {}).get('name')}" for t in options) or "none"
                raise TicketError(
                    f"Jira offers no transition of {key} from {current.raw_state!r} to a {target.value} status"
                    f" (available: {names})",
                    hint="map your workflow's status names with MLC_JIRA_STATUS_MAP",
                )
            self.api.call("POST", f"/rest/api/2/issue/{key}/transitions", json={"transition": {"id": str(chosen["id"])}})
        if comment:
            self.comment(key, comment)
        return self.get(key)

    def comment(self, key: str, text: str) -> None:
        key = _check_key(key)
        self.api.call(
            "POST",
            f"/rest/api/2/issue/{key}/comment",
            json={"body": redact(text, self.settings)},
            not_found=f"no Jira issue {key!r}",
        )

    def search(self, model_id: str | None = None, state: str | TicketState | None = None) -> list[Ticket]:
        clauses = ['labels = "mlc"']
        if self.settings.jira_project:
            clauses.append(f'project = "{self.settings.jira_project}"')
        if model_id:
            clauses.append(f'labels = "{model_label(model_id)}"')
        tickets = self._jql(" AND ".join(clauses) + " ORDER BY created DESC")
        if state:
            wanted = normalise_state(state)
            tickets = [t for t in tickets if t.state == wanted]
        return tickets

    def get_many(self, keys: list[str]) -> dict[str, Ticket]:
        """Several issues in one search per 50 keys (the watcher's poll); unknown keys are left out."""
        found: dict[str, Ticket] = {}
        for start in range(0, len(keys), 50):
            chunk = keys[start : start + 50]
            quoted = ", ".join(f'"{k}"' for k in chunk)
            try:
                tickets = self._jql(f"key in ({quoted})", limit=len(chunk), expand="changelog")
            except TicketError as exc:
                if isinstance(exc, TicketSystemUnavailable) or "HTTP 400" not in exc.message:
                    raise
                continue  # a deleted issue makes the whole JQL invalid: the caller asks one by one
            found.update({t.key: t for t in tickets})
        return found

    def close(self) -> None:
        self.api.close()

    def __enter__(self) -> "JiraTicketSystem":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- helpers ----------------------------------------------------------------------------

    def map_status(self, name: str | None, category: str | None = None) -> TicketState:
        """Our state for a Jira status: the configured/default name map, then the status category."""
        if name and name.strip().lower() in self.status_map:
            return self.status_map[name.strip().lower()]
        return _CATEGORY_MAP.get((category or "").lower(), TicketState.OPEN)

    def _pick_transition(self, options: list[dict[str, Any]], target: TicketState) -> dict[str, Any] | None:
        matches = []
        for option in options:
            to = option.get("to") or {}
            name = to.get("name")
            category = (to.get("statusCategory") or {}).get("key")
            if self.map_status(name, category) == target:
                exact = (name or "").strip().lower() in self.status_map
                matches.append((0 if exact else 1, option))
        matches.sort(key=lambda m: m[0])
        return matches[0][1] if matches else None

    def _jql(self, jql: str, *, limit: int = 500, expand: str | None = None) -> list[Ticket]:
        tickets: list[Ticket] = []
        params: dict[str, Any] = {"jql": jql, "fields": _FIELDS, "maxResults": min(limit, 100)}
        if expand:
            params["expand"] = expand
        while len(tickets) < limit:
            try:
                page = self.api.call("GET", self._search_path, params=params).json()
            except TicketError as exc:
                if self._search_path.endswith("/search") and "HTTP 410" in exc.message:
                    log.info("Jira retired /rest/api/2/search; using /rest/api/2/search/jql")
                    self._search_path = "/rest/api/2/search/jql"
                    params.pop("startAt", None)
                    continue
                raise
            issues = page.get("issues") or []
            tickets += [self._ticket(issue) for issue in issues]
            if self._search_path.endswith("/jql"):
                token = page.get("nextPageToken")
                if not token or page.get("isLast", False) or not issues:
                    break
                params["nextPageToken"] = token
            else:
                start = int(page.get("startAt", 0)) + len(issues)
                if not issues or start >= int(page.get("total", 0)):
                    break
                params["startAt"] = start
        return tickets[:limit]

    def _ticket(self, issue: dict[str, Any]) -> Ticket:
        fields = issue.get("fields") or {}
        status = fields.get("status") or {}
        labels = list(fields.get("labels") or [])
        model_id, model_version = model_from_labels(labels)
        key = issue["key"]
        link = links.link_for(self.store, self.name, key)
        if link is not None:
            model_id = link.model_id or model_id
            model_version = link.model_version or model_version
        state = self.map_status(status.get("name"), (status.get("statusCategory") or {}).get("key"))
        author = _resolver(key, issue.get("changelog"), status.get("name")) if state.terminal else None
        return Ticket(
            key=key,
            system=self.name,
            title=fields.get("summary") or "",
            description=fields.get("description") or "",
            state=state,
            raw_state=status.get("name"),
            labels=[lb for lb in labels if not lb.startswith("mlc-ref-")],
            model_id=model_id,
            model_version=model_version,
            process_instance_id=link.process_instance_id if link else None,
            url=f"{self.base_url}/browse/{key}",
            created_at=parse_jira_time(fields.get("created")),
            updated_at=parse_jira_time(fields.get("updated")),
            resolved_by=_identity(author)[0] if author else None,
            resolved_by_ids=_identity(author) if author else [],
        )


def _identity(user: dict[str, Any]) -> list[str]:
    """A Jira user's identities, the one to show first: user name and key (Data Center), e-mail,
    account id (Cloud)."""
    found: list[str] = []
    for field in ("name", "emailAddress", "accountId", "key"):
        value = str(user.get(field) or "").strip()
        if value and value not in found:
            found.append(value)
    return found


def _resolver(key: str, changelog: dict[str, Any] | None, status: str | None) -> dict[str, Any] | None:
    """The author of the change that moved the issue into its current status (``?expand=changelog``):
    the newest history with a ``status`` item whose ``toString`` is that status, else the newest
    that set the ``resolution``. None when the changelog is missing or cut short (Jira expands
    at most one page of it), so nobody is named on a guess."""
    if not changelog:
        return None
    histories = list(changelog.get("histories") or [])
    if int(changelog.get("total") or len(histories)) > len(histories):
        log.info("Jira issue %s: the changelog is longer than one page; its resolver is not known", key)
        return None
    histories.sort(key=lambda h: (parse_jira_time(h.get("created")) or dt.datetime.min.replace(tzinfo=dt.timezone.utc),
                                  int(h["id"]) if str(h.get("id", "")).isdigit() else 0))
    wanted = (status or "").strip().lower()
    for field, match in (("status", True), ("resolution", False)):
        for history in reversed(histories):
            for item in history.get("items") or []:
                to = str(item.get("toString") or "")
                if item.get("field") == field and (to.lower() == wanted if match else bool(to)):
                    return history.get("author") or None
    return None

