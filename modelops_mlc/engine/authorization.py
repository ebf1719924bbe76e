"""Who may do what in the engine when its authorization is on (``MLC_ENGINE_AUTH=basic``).

Camunda 7 checks every REST call against authorizations kept in its database. The groups below
own the MLC actions, as ModelOp assigns them per group; :func:`ensure_groups` creates them and
their grants through the engine's REST API, idempotently, on every ``mlc engine start``:

* ``mlc-reviewers`` complete reviews (claim and work the user tasks, from the CLI, REST or
  Tasklist);
* ``mlc-deployers`` deploy processes (create deployments);
* ``mlc-operators`` throw signals (a signal start creates a process instance);
* ``mlc-workers`` fetch, lock and complete external tasks (a worker that does not log in as
  the admin user).

Every group may read definitions, instances, tasks and their history. The admin user
(``MLC_ENGINE_USER``) is in Camunda's own ``camunda-admin`` group, which may do everything.
:func:`add_user` creates a user and puts it in groups (``mlc engine users add``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from modelops_mlc.errors import EngineError, UsageError

if TYPE_CHECKING:
    from modelops_mlc.engine.client import EngineClient

__all__ = ["GROUPS", "Grant", "add_user", "ensure_groups"]

# Camunda 7 resource type ids (org.camunda.bpm.engine.authorization.Resources)
APPLICATION, FILTER = 0, 5
PROCESS_DEFINITION, TASK, PROCESS_INSTANCE, DEPLOYMENT, DECISION_DEFINITION, DECISION_REQUIREMENTS = 6, 7, 8, 9, 10, 14
AUTH_TYPE_GRANT = 1


@dataclass(frozen=True)
class Grant:
    """Permissions on one resource (every one of the type: ``*``)."""

    resource_type: int
    permissions: tuple[str, ...]
    resource_id: str = "*"


_READ = (
    Grant(PROCESS_DEFINITION, ("READ", "READ_HISTORY", "READ_INSTANCE", "READ_TASK")),
    Grant(PROCESS_INSTANCE, ("READ",)),
    Grant(TASK, ("READ",)),
    Grant(DEPLOYMENT, ("READ",)),
    Grant(DECISION_DEFINITION, ("READ", "READ_HISTORY")),
    Grant(DECISION_REQUIREMENTS, ("READ",)),
)

GROUPS: dict[str, tuple[str, tuple[Grant, ...]]] = {
    "mlc-reviewers": ("MLC reviewers: complete reviews", (
        Grant(TASK, ("TASK_ASSIGN", "TASK_WORK")),
        Grant(APPLICATION, ("ACCESS",), "tasklist"),  # reviews in Tasklist, through its saved filters
        Grant(FILTER, ("READ",)),
    )),
    "mlc-deployers": ("MLC deployers: deploy processes", (
        Grant(DEPLOYMENT, ("CREATE",)),
    )),
    "mlc-operators": ("MLC operators: throw signals", (
        Grant(PROCESS_DEFINITION, ("CREATE_INSTANCE", "UPDATE_INSTANCE")),
        Grant(PROCESS_INSTANCE, ("CREATE",)),
    )),
    "mlc-workers": ("MLC workers: fetch and complete external tasks", (
        Grant(PROCESS_DEFINITION, ("UPDATE_INSTANCE",)),
        Grant(PROCESS_INSTANCE, ("UPDATE",)),
    )),
}


def _merged(grants: tuple[Grant, ...]) -> dict[tuple[int, str], set[str]]:
    found: dict[tuple[int, str], set[str]] = {}
    for grant in (*_READ, *grants):
        found.setdefault((grant.resource_type, grant.resource_id), set()).update(grant.permissions)
    return found


def _ensure_group(client: "EngineClient", group: str, name: str) -> bool:
    if client.request("GET", "/group/count", params={"id": group})["count"]:
        return False
    client.request("POST", "/group/create", json={"id": group, "name": name, "type": "mlc"})
    return True


def ensure_groups(client: "EngineClient") -> list[str]:
    """Create the MLC groups and their grants where missing (a grant the engine has is widened to
    the permissions above, never narrowed); returns what it created or changed."""
    changed: list[str] = []
    for group, (name, grants) in GROUPS.items():
        if _ensure_group(client, group, name):
            changed.append(f"group {group}")
        for (resource_type, resource_id), permissions in _merged(grants).items():
            where = {"groupId": group, "resourceType": resource_type, "resourceId": resource_id,
                     "type": AUTH_TYPE_GRANT}
            rows = client.request("GET", "/authorization", params={
                "groupIdIn": group, "resourceType": resource_type, "resourceId": resource_id, "type": AUTH_TYPE_GRANT})
            have = set(rows[0].get("permissions") or []) if rows else set()
            if "ALL" in have or permissions <= have:
                continue
            if rows:
                client.request("PUT", f"/authorization/{rows[0]['id']}",
                               json={**where, "permissions": sorted(have | permissions)})
            else:
                client.request("POST", "/authorization/create", json={**where, "permissions": sorted(permissions)})
            changed.append(f"grant {group} {resource_type}:{resource_id}")
    return changed


def add_user(client: "EngineClient", user: str, *, password: str | None, groups: list[str]) -> list[str]:
    """Create ``user`` (with ``password``) when missing and make it a member of ``groups``; returns
    what it did. A new user needs a password; an existing one keeps its own."""
    done: list[str] = []
    exists = bool(client.request("GET", "/user/count", params={"id": user})["count"])
    if not exists:
        if not password:
            raise UsageError(f"user {user} does not exist yet: give it a password "
                             "(--password or MLC_NEW_USER_PASSWORD)")
        try:
            client.request("POST", "/user/create", json={
                "profile": {"id": user, "firstName": user, "lastName": "", "email": ""},
                "credentials": {"password": password}})
        except EngineError as exc:
            raise UsageError(f"cannot create user {user}: {exc.message}") from None
        done.append(f"created user {user}")
    for group in groups:
        if not client.request("GET", "/group/count", params={"id": group})["count"]:
            raise UsageError(f"no group {group} in the engine",
                             hint=f"the MLC groups are {', '.join(GROUPS)} (made by `mlc engine start` with auth on)")
        members = client.request("GET", "/user", params={"id": user, "memberOfGroup": group})
        if not members:
            client.request("PUT", f"/group/{group}/members/{user}")
            done.append(f"added {user} to {group}")
    return done
