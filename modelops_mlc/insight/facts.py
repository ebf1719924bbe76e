"""The recorded facts the read side is built from, each read where it is kept: the engine's history,
the MLflow registry and runs, and the MLC store. Nothing here infers; it only gathers and joins by
recorded ids (process instance, run id, model name and version)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from modelops_mlc.config import Settings
    from modelops_mlc.engine import EngineClient, HistoricActivity, ProcessInstance
    from modelops_mlc.registry import Registry

__all__ = [
    "SHOWN_ACTIVITIES",
    "WAITING_ACTIVITIES",
    "InstanceFacts",
    "cockpit_url",
    "gather_instances",
    "iso",
    "mlflow_runs",
    "model_name",
    "monitor_runs",
    "parse_time",
    "run_link",
    "store_rows",
]

# Activity types a reader cares about; gateways and sequence plumbing are noise.
SHOWN_ACTIVITIES = {
    "startEvent", "signalStartEvent", "messageStartEvent", "noneEndEvent", "errorEndEvent", "terminateEndEvent",
    "serviceTask", "externalTask", "userTask", "businessRuleTask", "intermediateMessageCatch",
    "intermediateTimer", "receiveTask", "boundaryError", "boundaryTimer", "sendTask", "scriptTask", "callActivity",
    "intermediateSignalThrow", "signalEndEvent",
}
WAITING_ACTIVITIES = {"intermediateMessageCatch", "receiveTask"}


def model_name(model_id: str) -> str:
    """The registered model name of ``name``, ``name/version`` or ``name@alias``."""
    return model_id.split("@", 1)[0].split("/", 1)[0]


def parse_time(value: Any) -> dt.datetime | None:
    """An engine timestamp (``2026-01-01T10:00:00.123+0000``), ISO text or datetime, as aware UTC."""
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        moment = value
    elif isinstance(value, (int, float)):
        moment = dt.datetime.fromtimestamp(value / 1000, tz=dt.timezone.utc)
    else:
        moment = dt.datetime.fromisoformat(str(value))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.timezone.utc)
    return moment.astimezone(dt.timezone.utc)


def iso(value: Any) -> str | None:
    moment = parse_time(value)
    return moment.isoformat(timespec="milliseconds") if moment else None


def cockpit_url(settings: "Settings", instance_id: str) -> str:
    """Where a process instance opens in Cockpit (the webapps sit beside ``/engine-rest``)."""
    base = settings.engine_url.rstrip("/").removesuffix("/engine-rest")
    return f"{base}/camunda/app/cockpit/default/#/process-instance/{instance_id}"


def run_link(registry: "Registry", run_id: str | None, experiment_id: str | None = None) -> str | None:
    """The MLflow UI page of a run when the tracking URI is a server, else ``runs:/<id>``."""
    if not run_id:
        return None
    uri = registry.tracking_uri.rstrip("/")
    if uri.startswith(("http://", "https://")):
        return f"{uri}/#/experiments/{experiment_id or registry.experiment_id}/runs/{run_id}"
    return f"runs:/{run_id}"


@dataclass
class InstanceFacts:
    """One process instance as its history recorded it."""

    instance: "ProcessInstance"
    activities: list["HistoricActivity"]
    variables: dict[str, Any]
    tasks: list[dict[str, Any]] = field(default_factory=list)
    operations: list[dict[str, Any]] = field(default_factory=list)
    workers: dict[str, str] = field(default_factory=dict)  # activity instance id -> worker id
    topics: dict[str, str] = field(default_factory=dict)  # activity instance id -> external task topic
    decisions: dict[str, dict[str, Any]] = field(default_factory=dict)  # activity instance id -> decision evaluated

    @property
    def path(self) -> list[str]:
        """The activities the instance went through, in order (gateways left out)."""
        return [a.activity_id for a in self.activities if a.activity_type in SHOWN_ACTIVITIES]

    @property
    def end_event(self) -> str | None:
        ends = [a.activity_id for a in self.activities if a.activity_type.endswith("EndEvent") and a.end_time]
        return ends[-1] if ends else None

    def approver(self, activity: "HistoricActivity") -> str | None:
        """Who completed a user task: its assignee, else the user the operation log names, else the
        process's ``APPROVED_BY`` (recorded by the review's listeners)."""
        task = next((t for t in self.tasks if t.get("activityInstanceId") == activity.id), None)
        if activity.assignee or (task and task.get("assignee")):
            return activity.assignee or task["assignee"]  # type: ignore[index]
        if task is not None:
            for op in self.operations:
                if op.get("taskId") == task.get("id") and op.get("userId"):
                    return str(op["userId"])
        approved_by = self.variables.get("APPROVED_BY") if activity.end_time else None
        return str(approved_by) if approved_by else None

    def actor(self, activity: "HistoricActivity") -> str:
        """The actor of a step: the worker that completed an external task, the user of a user task,
        the engine for the rest (events, decisions, gateways)."""
        if activity.activity_type == "userTask":
            who = self.approver(activity)
            return f"user:{who}" if who else "user:(not recorded)"
        worker = self.workers.get(activity.id)
        if worker:
            return f"worker:{worker}"
        return f"process:{self.instance.process_key}"


def gather_instances(client: "EngineClient", *, model_id: str | None = None, process_key: str | None = None,
                     since: dt.datetime | None = None, limit: int = 200, details: bool = True) -> list[InstanceFacts]:
    """Process instances (oldest first; started since ``since``) with their activities and variables, and
    with ``details`` their user tasks, user operations, decisions evaluated and the workers (and topics)
    of their external tasks."""
    found = []
    for inst in reversed(client.instances(model_id=model_id, process_key=process_key, limit=limit)):
        if since is not None and parse_time(inst.start_time) < since:  # type: ignore[operator]
            continue
        facts = InstanceFacts(instance=inst, activities=client.history_activities(inst.id),
                              variables=client.variables(inst.id))
        if details:
            query = {"processInstanceId": inst.id}
            facts.tasks = client.history("task", query=query)
            facts.operations = client.history("user-operation", query=query)
            for d in client.history("decision-instance", query={**query, "includeOutputs": "true"}):
                outputs = d.get("outputs") or []
                facts.decisions[d.get("activityInstanceId") or d["id"]] = {
                    "decision": d.get("decisionDefinitionKey"),
                    "rules": sorted({o["ruleId"] for o in outputs if o.get("ruleId")}),
                    "outputs": {o.get("variableName") or o.get("clauseName"): o.get("value") for o in outputs},
                }
            logs = client.history("external-task-log", query={**query, "sortBy": "timestamp", "sortOrder": "asc"})
            for r in logs:  # oldest first: the worker that last reported wins
                if r.get("workerId"):
                    facts.workers[r["activityInstanceId"]] = r["workerId"]
                    facts.topics[r["activityInstanceId"]] = r.get("topicName")
        found.append(facts)
    return found


def mlflow_runs(registry: "Registry", name: str | None = None, kind: str | None = None) -> list[Any]:
    """MLflow runs of the MLC experiment tagged with the model (``mlc.model_name``) and kind
    (``mlc.kind``: train, test, score, compare, register...), oldest first."""
    filters = []
    if name:
        filters.append(f"tags.`mlc.model_name` = '{name.replace(chr(39), chr(92) + chr(39))}'")
    if kind:
        filters.append(f"tags.`mlc.kind` = '{kind}'")
    runs: list[Any] = []
    token = None
    while True:
        page = registry.client.search_runs([registry.experiment_id], filter_string=" and ".join(filters),
                                           order_by=["attributes.start_time ASC"], max_results=1000, page_token=token)
        runs.extend(page)
        token = page.token
        if not token:
            return runs


def store_rows(settings: "Settings", model: type, *where: Any, order: Any = None) -> list[Any]:
    """Rows of one MLC store table (detached, read only)."""
    from sqlalchemy import select

    from modelops_mlc.store import open_store

    query = select(model).where(*where)
    if order is not None:
        query = query.order_by(order)
    with open_store(settings).session() as s:
        return list(s.scalars(query))


def monitor_runs(settings: "Settings", name: str) -> list[Any]:
    """The model's recorded monitor runs with their per-feature drift (none when no monitor ran, or
    in a build without the monitoring package's history)."""
    try:
        from modelops_mlc.monitoring.history import history
    except ImportError:
        return []
    return history(settings, name, limit=1000)
