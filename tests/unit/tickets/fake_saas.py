"""Local stand-ins for Jira (REST API v2) and ServiceNow (Table API, incident) on 127.0.0.1.

They implement the endpoints modelops-mlc calls with the documented request and response shapes:
JSON field names, status codes (201 on create, 204 on a transition, 404/400/401/403/410 errors
with each product's error body) and auth headers. Wrong credentials get 401.

Both say who changed a ticket the way the products do: Jira keeps a changelog (``expand=changelog``
on an issue or a search: histories with their author and status/resolution items) and sets
``fields.resolution`` on a done status; ServiceNow fills the sys_user references ``resolved_by``
(state 6) and ``closed_by`` (state 7) and ``sys_updated_by``, and the Table API dot-walks
``resolved_by.user_name`` in ``sysparm_fields``. ``set_status``/``set_state`` with ``by=`` are what a
reviewer does in the product's UI; API calls act as the authenticated account.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse


class _Handler(BaseHTTPRequestHandler):
    server: "_Server"
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:  # keep test output quiet
        pass

    def _send(self, status: int, body: Any = None, headers: dict[str, str] | None = None) -> None:
        data = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        if body is not None:
            self.send_header("Content-Type", "application/json;charset=UTF-8")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if data:
            self.wfile.write(data)

    def _body(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        return json.loads(raw) if raw else None

    def _dispatch(self, method: str) -> None:
        parsed = urlparse(self.path)
        query = {k: v[-1] for k, v in parse_qs(parsed.query, keep_blank_values=True).items()}
        fake = self.server.fake
        with fake.lock:
            fake.requests.append((method, parsed.path, query, dict(self.headers)))
            if fake.down_status:
                self._send(fake.down_status, {"message": "down for maintenance"})
                return
            if not fake.authorised(self.headers.get("Authorization")):
                status, body = fake.unauthorised()
                self._send(status, body, {"WWW-Authenticate": 'Basic realm="fake"'})
                return
            try:
                body = self._body() if method in ("POST", "PUT", "PATCH") else None
            except ValueError:
                self._send(400, {"errorMessages": ["Unexpected character in JSON"]})
                return
            status, payload, headers = fake.handle(method, parsed.path, query, body)
        self._send(status, payload, headers)

    def do_GET(self) -> None:  # noqa: N802
        self._dispatch("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._dispatch("POST")

    def do_PATCH(self) -> None:  # noqa: N802
        self._dispatch("PATCH")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    fake: "FakeService"


class FakeService:
    """Base: a threaded HTTP server on a free loopback port; ``url`` is its base."""

    def __init__(self, *, user: str, secret: str, bearer: str | None = None) -> None:
        self.user, self.secret, self.bearer = user, secret, bearer
        self.lock = threading.RLock()
        self.requests: list[tuple[str, str, dict[str, str], dict[str, str]]] = []
        self.down_status: int | None = None
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.fake = self
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> "FakeService":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def authorised(self, header: str | None) -> bool:
        if not header:
            return False
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "basic":
            try:
                user, _, secret = base64.b64decode(value).decode().partition(":")
            except ValueError:
                return False
            return user == self.user and secret == self.secret
        if scheme.lower() == "bearer":
            return self.bearer is not None and value == self.bearer
        return False

    def unauthorised(self) -> tuple[int, Any]:
        raise NotImplementedError

    def handle(self, method: str, path: str, query: dict[str, str], body: Any) -> tuple[int, Any, dict[str, str]]:
        raise NotImplementedError


# -- Jira -------------------------------------------------------------------------------------

JIRA_STATUSES = {
    "To Do": ("10000", "new", "To Do"),
    "In Progress": ("3", "indeterminate", "In Progress"),
    "Done": ("10001", "done", "Done"),
    "Rejected": ("10002", "done", "Done"),
}
JIRA_TRANSITIONS = [("11", "Back to do", "To Do"), ("21", "Start progress", "In Progress"),
                    ("31", "Done", "Done"), ("41", "Reject", "Rejected")]


def _jira_time(when: dt.datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}+0000"


class FakeJira(FakeService):
    """Jira Data Center / Cloud REST v2. ``cloud=True`` answers 410 on the retired /search."""

    def __init__(self, *, project: str = "OPS", cloud: bool = False, **kw: Any) -> None:
        super().__init__(**kw)
        self.project = project
        self.cloud = cloud
        self.issues: dict[str, dict[str, Any]] = {}
        self.comments: dict[str, list[dict[str, Any]]] = {}
        self._next = 1
        self._next_history = 10000

    def unauthorised(self) -> tuple[int, Any]:
        return 401, {"errorMessages": ["Client must be authenticated to access this resource."], "errors": {}}

    def set_status(self, key: str, status: str, *, by: str = "reviewer") -> None:
        """What a reviewer (user name ``by``) does in the Jira UI."""
        with self.lock:
            self._move(self.issues[key], status, by)

    def _move(self, issue: dict[str, Any], status: str, by: str) -> None:
        """A status change as Jira records it: the status, the resolution, one changelog history."""
        fields = issue["fields"]
        old = fields["status"]
        now = _jira_time(dt.datetime.now(dt.timezone.utc))
        items = [{"field": "status", "fieldtype": "jira", "from": old["id"], "fromString": old["name"],
                  "to": self._status(status)["id"], "toString": status}]
        done = JIRA_STATUSES[status][1] == "done"
        resolution = ({"id": "10001", "name": "Won't Do" if status == "Rejected" else "Done"} if done else None)
        if (fields.get("resolution") or {}).get("name") != (resolution or {}).get("name"):
            items.insert(0, {"field": "resolution", "fieldtype": "jira",
                             "from": (fields.get("resolution") or {}).get("id"),
                             "fromString": (fields.get("resolution") or {}).get("name"),
                             "to": (resolution or {}).get("id"), "toString": (resolution or {}).get("name")})
        fields["status"] = self._status(status)
        fields["resolution"] = resolution
        fields["resolutiondate"] = now if done else None
        fields["updated"] = now
        self._next_history += 1
        issue["changelog"].append({"id": str(self._next_history), "author": self._user(by), "created": now,
                                   "items": items})

    def _user(self, name: str) -> dict[str, Any]:
        email = name if "@" in name else f"{name}@example.com"
        return {"self": f"{self.url}/rest/api/2/user?username={name}", "name": name, "key": f"JIRAUSER-{name}",
                "emailAddress": email, "displayName": name.split("@")[0].title(), "active": True,
                "timeZone": "Etc/UTC"}

    def _status(self, name: str) -> dict[str, Any]:
        sid, cat, cat_name = JIRA_STATUSES[name]
        return {
            "self": f"{self.url}/rest/api/2/status/{sid}",
            "description": "",
            "iconUrl": f"{self.url}/images/icons/statuses/generic.png",
            "name": name,
            "id": sid,
            "statusCategory": {"self": f"{self.url}/rest/api/2/statuscategory/{cat}", "id": 2,
                               "key": cat, "colorName": "blue-gray", "name": cat_name},
        }

    def _view(self, issue: dict[str, Any], fields: str | None, expand: str | None = None) -> dict[str, Any]:
        wanted = set((fields or "*all").split(","))
        shown = {k: v for k, v in issue["fields"].items() if "*all" in wanted or k in wanted}
        view = {"expand": "renderedFields,names,schema,operations,editmeta,changelog,versionedRepresentations",
                "id": issue["id"], "self": f"{self.url}/rest/api/2/issue/{issue['id']}", "key": issue["key"],
                "fields": shown}
        if "changelog" in (expand or "").split(","):
            histories = issue["changelog"]
            view["changelog"] = {"startAt": 0, "maxResults": len(histories), "total": len(histories),
                                 "histories": histories}
        return view

    def _not_found(self) -> tuple[int, Any, dict[str, str]]:
        return 404, {"errorMessages": ["Issue does not exist or you do not have permission to see it."], "errors": {}}, {}

    def handle(self, method: str, path: str, query: dict[str, str], body: Any) -> tuple[int, Any, dict[str, str]]:
        if method == "POST" and path == "/rest/api/2/issue":
            return self._create(body)
        if method == "GET" and path in ("/rest/api/2/search", "/rest/api/2/search/jql"):
            return self._search(path, query)
        m = re.fullmatch(r"/rest/api/2/issue/([A-Z][A-Z0-9]*-\d+)(/transitions|/comment)?", path)
        if not m:
            return 404, {"errorMessages": ["null for uri: " + path]}, {}
        key, sub = m.group(1), m.group(2)
        issue = self.issues.get(key)
        if issue is None:
            return self._not_found()
        if method == "GET" and sub is None:
            return 200, self._view(issue, query.get("fields"), query.get("expand")), {}
        if sub == "/transitions" and method == "GET":
            current = issue["fields"]["status"]["name"]
            return 200, {"expand": "transitions", "transitions": [
                {"id": tid, "name": name, "to": self._status(to), "hasScreen": False, "isGlobal": True,
                 "isInitial": False, "isAvailable": True, "isConditional": False, "isLooped": False}
                for tid, name, to in JIRA_TRANSITIONS if to != current]}, {}
        if sub == "/transitions" and method == "POST":
            tid = str(((body or {}).get("transition") or {}).get("id"))
            current = issue["fields"]["status"]["name"]
            target = next((to for t, _n, to in JIRA_TRANSITIONS if t == tid and to != current), None)
            if target is None:
                return 400, {"errorMessages": [f"Transition id '{tid}' is not valid for this issue."], "errors": {}}, {}
            self._move(issue, target, self.user)
            return 204, None, {}
        if sub == "/comment" and method == "POST":
            text = (body or {}).get("body")
            if not text:
                return 400, {"errorMessages": [], "errors": {"comment": "Comment body can not be empty!"}}, {}
            cid = str(10000 + sum(len(c) for c in self.comments.values()))
            now = _jira_time(dt.datetime.now(dt.timezone.utc))
            comment = {"self": f"{self.url}/rest/api/2/issue/{issue['id']}/comment/{cid}", "id": cid,
                       "author": {"name": self.user}, "body": text, "created": now, "updated": now}
            self.comments.setdefault(key, []).append(comment)
            return 201, comment, {}
        return 405, {"errorMessages": ["method not allowed"]}, {}

    def _create(self, body: Any) -> tuple[int, Any, dict[str, str]]:
        fields = (body or {}).get("fields") or {}
        errors: dict[str, str] = {}
        if (fields.get("project") or {}).get("key") != self.project:
            errors["project"] = "valid project is required"
        if not fields.get("summary"):
            errors["summary"] = "You must specify a summary of the issue."
        if (fields.get("issuetype") or {}).get("name") not in ("Task", "Bug"):
            errors["issuetype"] = "valid issue type is required"
        for label in fields.get("labels") or []:
            if " " in label:
                errors["labels"] = f"The label '{label}' contains spaces which is invalid."
        if errors:
            return 400, {"errorMessages": [], "errors": errors}, {}
        iid = str(10000 + self._next)
        key = f"{self.project}-{self._next}"
        self._next += 1
        now = _jira_time(dt.datetime.now(dt.timezone.utc))
        self.issues[key] = {"id": iid, "key": key, "fields": {
            "summary": fields["summary"], "description": fields.get("description"),
            "labels": list(fields.get("labels") or []), "status": self._status("To Do"),
            "issuetype": {"name": fields["issuetype"]["name"]}, "project": {"key": self.project},
            "resolution": None, "resolutiondate": None, "created": now, "updated": now}, "changelog": []}
        return 201, {"id": iid, "key": key, "self": f"{self.url}/rest/api/2/issue/{iid}"}, {}

    def _search(self, path: str, query: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
        if self.cloud and path.endswith("/search"):
            return 410, {"errorMessages": ["The requested API has been removed. Please migrate to the "
                                           "/rest/api/3/search/jql API."], "errors": {}}, {}
        jql = query.get("jql", "")
        where, _, order = jql.partition(" ORDER BY ")
        matches = list(self.issues.values())
        for clause in [c.strip() for c in where.split(" AND ") if c.strip()]:
            keys = re.fullmatch(r'key in \(((?:"[^"]+"(?:, )?)+)\)', clause)
            if keys:
                wanted = re.findall(r'"([^"]+)"', keys.group(1))
                missing = [k for k in wanted if k not in self.issues]
                if missing:
                    return 400, {"errorMessages": [f"An issue with key '{missing[0]}' does not exist for field "
                                                   "'key'."], "errors": {}}, {}
                matches = [i for i in matches if i["key"] in wanted]
                continue
            m = re.fullmatch(r'(labels|project)\s*=\s*"([^"]*)"', clause)
            if not m:
                return 400, {"errorMessages": [f"Error in the JQL Query: cannot parse '{clause}'"], "errors": {}}, {}
            field, value = m.groups()
            if field == "labels":
                matches = [i for i in matches if value in i["fields"]["labels"]]
            else:
                matches = [i for i in matches if i["fields"]["project"]["key"] == value]
        if order.strip().lower() == "created desc":
            matches.sort(key=lambda i: int(i["id"]), reverse=True)
        limit = int(query.get("maxResults", 50))
        if path.endswith("/jql"):
            start = int(query.get("nextPageToken") or 0)
            page = matches[start:start + limit]
            more = start + limit < len(matches)
            body = {"issues": [self._view(i, query.get("fields") or "id", query.get("expand")) for i in page],
                    "isLast": not more}
            if more:
                body["nextPageToken"] = str(start + limit)
            return 200, body, {}
        start = int(query.get("startAt", 0))
        page = matches[start:start + limit]
        return 200, {"expand": "names,schema", "startAt": start, "maxResults": limit, "total": len(matches),
                     "issues": [self._view(i, query.get("fields"), query.get("expand")) for i in page]}, {}


# -- ServiceNow -------------------------------------------------------------------------------


def _sn_time(when: dt.datetime) -> str:
    return when.strftime("%Y-%m-%d %H:%M:%S")


class FakeServiceNow(FakeService):
    """ServiceNow Table API for ``incident``; a resolution needs close_code and close_notes."""

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.records: dict[str, dict[str, Any]] = {}
        self.journal: dict[str, list[tuple[str, str]]] = {}
        self.users: dict[str, dict[str, str]] = {}  # sys_user by sys_id
        self._next = 10001

    def unauthorised(self) -> tuple[int, Any]:
        return 401, {"error": {"message": "User Not Authenticated", "detail": "Required to provide Auth information"},
                     "status": "failure"}

    def set_state(self, number: str, code: str, *, by: str = "reviewer") -> None:
        """What a user (``by``, a user name) does in the ServiceNow UI."""
        with self.lock:
            record = next(r for r in self.records.values() if r["number"] == number)
            self._write(record, {"state": code}, by)

    def user_id(self, user_name: str) -> str:
        """The sys_id of the sys_user called ``user_name`` (created on first use)."""
        for sys_id, user in self.users.items():
            if user["user_name"] == user_name:
                return sys_id
        sys_id = uuid.uuid4().hex
        self.users[sys_id] = {"sys_id": sys_id, "user_name": user_name, "email": f"{user_name}@example.com"}
        return sys_id

    def _write(self, record: dict[str, Any], changes: dict[str, Any], by: str) -> None:
        """An update as the platform's business rules make it: who resolved (6) or closed (7) it,
        cleared again on reopening, and the last writer."""
        now = _sn_time(dt.datetime.now(dt.timezone.utc))
        for field, value in changes.items():
            if field in ("work_notes", "comments"):
                self.journal.setdefault(record["sys_id"], []).append((field, str(value)))
            else:
                record[field] = str(value)
        if "state" in changes:
            state = str(changes["state"])
            if state in ("6", "7") and not record["resolved_by"]:
                record["resolved_by"], record["resolved_at"] = self.user_id(by), now
            if state == "7":
                record["closed_by"], record["closed_at"] = self.user_id(by), now
            if state not in ("6", "7"):
                record.update(resolved_by="", resolved_at="", closed_by="", closed_at="")
        record["sys_updated_on"], record["sys_updated_by"] = now, by

    def _fields(self, record: dict[str, Any], query: dict[str, str]) -> dict[str, Any]:
        wanted = query.get("sysparm_fields")
        if not wanted:
            return dict(record)
        return {f: self._field(record, f) for f in wanted.split(",")}

    def _field(self, record: dict[str, Any], name: str) -> str:
        """A field, or a dot-walked one through a sys_user reference (``resolved_by.user_name``)."""
        reference, _, field = name.partition(".")
        if not field:
            return record.get(name, "")
        return self.users.get(record.get(reference, ""), {}).get(field, "")

    def _matches(self, record: dict[str, Any], condition: str) -> bool:
        for op in ("LIKE", "IN", "="):
            field, sep, value = condition.partition(op)
            if sep and re.fullmatch(r"[a-z_]+", field):
                actual = str(record.get(field, ""))
                if op == "LIKE":
                    return value.lower() in actual.lower()
                if op == "IN":
                    return actual in value.split(",")
                return actual == value
        raise ValueError(condition)

    def handle(self, method: str, path: str, query: dict[str, str], body: Any) -> tuple[int, Any, dict[str, str]]:
        table = "/api/now/table/incident"
        if path == table and method == "POST":
            sys_id = uuid.uuid4().hex
            now = _sn_time(dt.datetime.now(dt.timezone.utc))
            record = {"sys_id": sys_id, "number": f"INC{self._next:07d}", "state": "1", "impact": "3",
                      "urgency": "3", "priority": "5", "active": "true", "sys_created_on": now,
                      "sys_updated_on": now, "short_description": "", "description": "", "category": "inquiry",
                      "correlation_id": "", "correlation_display": "", "close_code": "", "close_notes": "",
                      "resolved_by": "", "resolved_at": "", "closed_by": "", "closed_at": "",
                      "sys_created_by": self.user, "sys_updated_by": self.user}
            self._next += 1
            for field, value in (body or {}).items():
                if field in ("work_notes", "comments"):
                    self.journal.setdefault(sys_id, []).append((field, str(value)))
                else:
                    record[field] = str(value)
            self.records[sys_id] = record
            return 201, {"result": self._fields(record, query)}, {"Location": f"{self.url}{table}/{sys_id}"}
        if path == table and method == "GET":
            rows = list(self.records.values())
            order = None
            for condition in [c for c in query.get("sysparm_query", "").split("^") if c]:
                if condition.startswith("ORDERBYDESC"):
                    order = (condition[len("ORDERBYDESC"):], True)
                    continue
                if condition.startswith("ORDERBY"):
                    order = (condition[len("ORDERBY"):], False)
                    continue
                try:
                    rows = [r for r in rows if self._matches(r, condition)]
                except ValueError:
                    return 400, {"error": {"message": "Invalid query", "detail": condition}, "status": "failure"}, {}
            if order:
                rows.sort(key=lambda r: (r.get(order[0], ""), r["number"]), reverse=order[1])
            limit = int(query.get("sysparm_limit", 10000))
            return 200, {"result": [self._fields(r, query) for r in rows[:limit]]}, {}
        m = re.fullmatch(table + r"/([0-9a-f]{32})", path)
        record = self.records.get(m.group(1)) if m else None
        if record is None:
            return 404, {"error": {"message": "No Record found",
                                   "detail": "Record doesn't exist or ACL restricts the record retrieval"},
                         "status": "failure"}, {}
        if method == "GET":
            return 200, {"result": self._fields(record, query)}, {}
        if method == "PATCH":
            changes = dict(body or {})
            if str(changes.get("state")) == "6" and not (changes.get("close_code") and changes.get("close_notes")):
                return 403, {"error": {"message": "Operation Failed", "detail": "Data Policy Exception: \n The "
                             "following fields are mandatory: Resolution code, Resolution notes"},
                             "status": "failure"}, {}
            self._write(record, changes, self.user)
            return 200, {"result": self._fields(record, query)}, {}
        return 405, {"error": {"message": "Method not Supported"}, "status": "failure"}, {}
