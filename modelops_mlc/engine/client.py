"""The Camunda 7 REST client of the SDK and the CLI (external tasks: :mod:`.external_tasks`).

pycamunda carries the calls it models well (process deployments, signals, messages, start,
incidents, user tasks, decisions). httpx carries what pycamunda lacks or models poorly: the POST
queries with variable filters, counts, history, typed variables of an instance and retries of
external tasks and jobs. Both get their auth and their error mapping from :mod:`.gateway`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
from pydantic import BaseModel, Field

from modelops_mlc.engine import gateway
from modelops_mlc.engine.variables import from_engine, to_engine
from modelops_mlc.errors import EngineError, NotFoundError, UsageError

if TYPE_CHECKING:
    import requests

    from modelops_mlc.config import Settings

__all__ = [
    "Definition",
    "ProcessDeployment",
    "EngineClient",
    "HistoricActivity",
    "Incident",
    "Job",
    "ProcessInstance",
    "UserTask",
]

log = logging.getLogger(__name__)

DEPLOYABLE_SUFFIXES = (".bpmn", ".bpmn20.xml", ".dmn", ".dmn11.xml", ".form", ".cmmn")
_HISTORY_KINDS = {"task", "user-operation", "incident", "variable-instance", "decision-instance", "process-instance",
                  "external-task-log"}


class Definition(BaseModel):
    """A deployed process or decision definition."""

    id: str
    key: str
    name: str | None = None
    version: int
    kind: str = "process"
    resource: str | None = None
    deployment_id: str | None = None


class ProcessDeployment(BaseModel):
    """What a deployment of MLC processes to the engine created; ``created`` is false when nothing
    had changed. (A model deployment to a runtime is :class:`modelops_mlc.runtimes.Deployment`.)"""

    id: str | None = None
    name: str
    created: bool
    resources: list[str] = Field(default_factory=list)
    process_definitions: list[Definition] = Field(default_factory=list)
    decision_definitions: list[Definition] = Field(default_factory=list)


class ProcessInstance(BaseModel):
    id: str
    process_key: str | None = None
    definition_id: str | None = None
    business_key: str | None = None
    state: str | None = None
    start_time: str | None = None
    end_time: str | None = None
    duration_ms: int | None = None
    variables: dict[str, Any] | None = None


class Incident(BaseModel):
    id: str
    type: str
    message: str | None = None
    process_instance_id: str | None = None
    process_definition_id: str | None = None
    activity_id: str | None = None
    configuration: str | None = None
    timestamp: str | None = None


class UserTask(BaseModel):
    id: str
    name: str | None = None
    task_definition_key: str | None = None
    assignee: str | None = None
    created: str | None = None
    process_instance_id: str | None = None
    process_definition_id: str | None = None


class Job(BaseModel):
    """A job of the engine's job executor: a timer or an asynchronous continuation."""

    id: str
    due_date: str | None = None
    process_instance_id: str | None = None
    retries: int | None = None
    exception_message: str | None = None
    failed_activity_id: str | None = None


class HistoricActivity(BaseModel):
    id: str
    activity_id: str
    activity_name: str | None = None
    activity_type: str
    start_time: str | None = None
    end_time: str | None = None
    duration_ms: int | None = None
    canceled: bool = False
    assignee: str | None = None


def _resources(paths: Iterable[Path]) -> list[Path]:
    """Expand directories to their deployable files; refuse missing or foreign files."""
    found: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            found.extend(sorted(p for p in path.rglob("*") if p.is_file() and p.name.endswith(DEPLOYABLE_SUFFIXES)))
        elif not path.exists():
            raise UsageError(f"no such file: {path}")
        elif not path.name.endswith(DEPLOYABLE_SUFFIXES):
            raise UsageError(f"{path} is not a BPMN, DMN or form file (expected {', '.join(DEPLOYABLE_SUFFIXES)})")
        else:
            found.append(path)
    if not found:
        raise UsageError("nothing to deploy: no .bpmn or .dmn file found")
    return found


def _definition(d: Mapping[str, Any], kind: str) -> Definition:
    return Definition(id=d["id"], key=d["key"], name=d.get("name"), version=d["version"], kind=kind,
                      resource=d.get("resource"), deployment_id=d.get("deploymentId"))


class EngineClient:
    """Talks to one engine's ``/engine-rest`` (or to the first of a cluster's nodes that answers);
    cheap to create, close it (or use ``with``) when done."""

    def __init__(self, settings: "Settings", *, timeout: float | None = None) -> None:
        self._nodes = gateway.Nodes(settings.engine_url)
        self.url = self._nodes.urls[0]
        self._settings = settings
        self._http = httpx.Client(**gateway.http_options(settings, timeout=timeout))
        self._session: "requests.Session | None" = None

    # -- plumbing -----------------------------------------------------------------------------

    def close(self) -> None:
        self._http.close()
        if self._session is not None:
            self._session.close()

    def __enter__(self) -> "EngineClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        """One REST call through httpx; returns parsed JSON (or None for 204). A POST whose
        answer was lost is not sent to another node: it may have had its effect."""
        if any(part in ("", ".", "..") for part in path.split("?", 1)[0].split("/")[1:]):
            # an id typed as "", "." or "..": the URL would name another resource (/incident/. is /incident/)
            raise UsageError(f"{path!r} holds an empty id, '.' or '..', which names no engine object")
        for node in self._nodes.order():
            try:
                response = self._http.request(method, node + path, **kwargs)
            except httpx.InvalidURL as exc:  # an id typed with characters no URL can carry
                raise UsageError(f"{path!r} cannot be sent to the engine: {exc}") from None
            except httpx.TransportError as exc:
                log.debug("engine transport error on %s %s at %s: %s", method, path, node, exc)
                sent = not isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout)
                self._nodes.failed(gateway.NodeDown(node, sent=sent), replay=method != "POST")
                continue
            self._nodes.answered(node)
            return gateway.read_response(response)
        raise self._nodes.unreachable()

    def _call(self, what: str, request: Any) -> Any:
        """Send a pycamunda request over our pooled session, with our auth and error mapping,
        to the first node that answers (only on to the next one if the last was never reached)."""
        import requests

        if self._session is None:
            self._session = requests.Session()
        request.session = self._session
        for node in self._nodes.order():
            request.auth = gateway.PycamundaAuth(self._settings, what, base=self.url, node=node)
            try:
                with gateway.pycamunda_transport(node, what):
                    found = request()
            except gateway.NodeDown as down:
                self._nodes.failed(down, replay=False)
                continue
            self._nodes.answered(node)
            return found
        raise self._nodes.unreachable()

    # -- engine -------------------------------------------------------------------------------

    def ping(self) -> list[str]:
        """Names of the process engines behind the URL; raises EngineUnavailable when none answer."""
        return [e["name"] for e in self.request("GET", "/engine")]

    def version(self) -> str:
        return str(self.request("GET", "/version").get("version"))

    # -- deployments and definitions ----------------------------------------------------------

    def deploy_processes(
        self, paths: Iterable[Path | str], *, name: str = "mlc", changed_only: bool = True
    ) -> ProcessDeployment:
        """Deploy MLC processes: BPMN, DMN and form files (directories are expanded); with
        ``changed_only`` unchanged ones are skipped."""
        import pycamunda.deployment

        files = _resources(Path(p) for p in paths)
        req = pycamunda.deployment.Create(
            self.url, name=name, source="modelops-mlc", enable_duplicate_filtering=changed_only,
            deploy_changed_only=changed_only,
        )
        for path in files:  # bytes, not open files: a second node may need the body again
            req.add_resource((path.name, path.read_bytes()))
        result = self._call(f"deploy {', '.join(p.name for p in files)}", req)

        def definitions(found: Mapping[str, Any] | None, kind: str) -> list[Definition]:
            return [
                Definition(id=d.id_, key=d.key, name=d.name, version=d.version, resource=d.resource,
                           deployment_id=d.deployment_id, kind=kind)
                for d in (found or {}).values()
            ]

        procs = definitions(result.deployed_process_definitions, "process")
        decisions = definitions(result.deployed_decision_definitions, "decision")
        created = bool(procs or decisions)
        return ProcessDeployment(
            id=result.id_ if created else None,
            name=name,
            created=created,
            resources=[p.name for p in files],
            process_definitions=procs,
            decision_definitions=decisions,
        )

    def process_definitions(self, *, key: str | None = None) -> list[Definition]:
        """The latest version of every process definition (or of one key)."""
        params: dict[str, Any] = {"latestVersion": "true", "sortBy": "key", "sortOrder": "asc"}
        if key:
            params["key"] = key
        return [_definition(d, "process") for d in self.request("GET", "/process-definition", params=params)]

    def decision_definitions(self) -> list[Definition]:
        """The latest version of every decision definition."""
        rows = self.request("GET", "/decision-definition", params={"latestVersion": "true"})
        return [_definition(d, "decision") for d in rows]

    # -- starting and moving processes --------------------------------------------------------

    def signal(self, name: str, variables: Mapping[str, Any] | None = None) -> None:
        """Throw a signal to every subscribed start and intermediate event."""
        import pycamunda.signal

        req = pycamunda.signal.EventAll(self.url, name=name)
        req.variables = to_engine(variables)
        self._call(f"signal {name}", req)

    def correlate_message(
        self,
        name: str,
        *,
        business_key: str | None = None,
        correlation_keys: Mapping[str, Any] | None = None,
        variables: Mapping[str, Any] | None = None,
        all: bool = False,
        process_instance_id: str | None = None,
    ) -> list[dict[str, Any]]:
        """Correlate a message (to one instance when ``process_instance_id`` is given); returns the
        correlation results (instance ids)."""
        import pycamunda.message

        cls = pycamunda.message.CorrelateAll if all else pycamunda.message.CorrelateSingle
        req = cls(self.url, message_name=name, business_key=business_key, result_enabled=True,
                  process_instance_id=process_instance_id)
        req.correlation_keys = to_engine(correlation_keys) or None
        req.process_variables = to_engine(variables) or None
        results = self._call(f"correlate message {name}", req)
        if not isinstance(results, (list, tuple)):
            results = [results]
        out = []
        for r in results:
            pi = getattr(r, "process_instance", None)
            out.append({"result_type": str(getattr(r, "result_type", "")), "process_instance_id": getattr(pi, "id_", None)})
        return out

    def start(self, key: str, variables: Mapping[str, Any] | None = None, *, business_key: str | None = None) -> ProcessInstance:
        """Start the latest version of process ``key``."""
        import pycamunda.processdef

        req = pycamunda.processdef.StartInstance(self.url, key=key, business_key=business_key)
        req.variables = to_engine(variables)
        inst = self._call(f"start {key}", req)
        # pycamunda drops the response's `ended`; history has the state (an instance may end at once).
        return self.history_instance(inst.id_)

    # -- instances ----------------------------------------------------------------------------

    @staticmethod
    def _instance_query(
        *, model_id: str | None, active_only: bool, process_key: str | None, business_key: str | None,
        variables: Mapping[str, Any] | None,
    ) -> dict[str, Any]:
        query: dict[str, Any] = {"sorting": [{"sortBy": "startTime", "sortOrder": "desc"}]}
        var_filters = [{"name": k, "operator": "eq", "value": v} for k, v in (variables or {}).items()]
        if model_id:
            name = model_id.split("@", 1)[0].split("/", 1)[0]
            var_filters.append({"name": "MODEL_ID", "operator": "eq", "value": name})
        if var_filters:
            query["variables"] = var_filters
        if active_only:
            query["unfinished"] = True
        if process_key:
            query["processDefinitionKey"] = process_key
        if business_key:
            query["processInstanceBusinessKey"] = business_key
        return query

    def instances(
        self,
        *,
        model_id: str | None = None,
        active_only: bool = False,
        process_key: str | None = None,
        business_key: str | None = None,
        variables: Mapping[str, Any] | None = None,
        limit: int = 200,
    ) -> list[ProcessInstance]:
        """Process instances, newest first, from history (history level full keeps ended ones too)."""
        query = self._instance_query(
            model_id=model_id, active_only=active_only, process_key=process_key, business_key=business_key,
            variables=variables,
        )
        rows = self.request("POST", "/history/process-instance", params={"maxResults": limit}, json=query)
        return [self._historic_instance(r) for r in rows]

    def count_instances(
        self,
        *,
        model_id: str | None = None,
        active_only: bool = False,
        process_key: str | None = None,
        business_key: str | None = None,
        variables: Mapping[str, Any] | None = None,
    ) -> int:
        query = self._instance_query(
            model_id=model_id, active_only=active_only, process_key=process_key, business_key=business_key,
            variables=variables,
        )
        query.pop("sorting")
        return int(self.request("POST", "/history/process-instance/count", json=query)["count"])

    @staticmethod
    def _historic_instance(r: Mapping[str, Any]) -> ProcessInstance:
        return ProcessInstance(
            id=r["id"], process_key=r.get("processDefinitionKey"), definition_id=r.get("processDefinitionId"),
            business_key=r.get("businessKey"), state=r.get("state"), start_time=r.get("startTime"),
            end_time=r.get("endTime"), duration_ms=r.get("durationInMillis"),
        )

    def history_instance(self, instance_id: str) -> ProcessInstance:
        try:
            return self._historic_instance(self.request("GET", f"/history/process-instance/{instance_id}"))
        except EngineError as exc:
            if exc.status == 404:
                raise NotFoundError(f"no process instance {instance_id}") from None
            raise

    def variables(self, instance_id: str) -> dict[str, Any]:
        """The variables of an instance, running or ended (history level full keeps them current)."""
        rows = self.request(
            "GET", "/history/variable-instance",
            params={"processInstanceId": instance_id, "deserializeValues": "false"},
        )
        if not rows:
            self.history_instance(instance_id)  # raises NotFoundError for an unknown id
        # Process-scope values win over local ones of the same name.
        rows.sort(key=lambda r: r.get("activityInstanceId") == instance_id)
        for r in rows:
            info = r.get("valueInfo") or {}
            if r.get("type") == "Object" and "java" in str(info.get("serializationDataFormat", "")):
                # Java-serialised values (e.g. a DMN result map) are only readable deserialised by the engine.
                r["value"] = self.request("GET", f"/history/variable-instance/{r['id']}").get("value")
        return from_engine({r["name"]: r for r in rows})

    def history_activities(self, instance_id: str) -> list[HistoricActivity]:
        rows = self.request(
            "GET", "/history/activity-instance",
            params={"processInstanceId": instance_id, "sortBy": "startTime", "sortOrder": "asc"},
        )
        return [
            HistoricActivity(
                id=r["id"], activity_id=r["activityId"], activity_name=r.get("activityName"),
                activity_type=r["activityType"], start_time=r.get("startTime"), end_time=r.get("endTime"),
                duration_ms=r.get("durationInMillis"), canceled=bool(r.get("canceled")), assignee=r.get("assignee"),
            )
            for r in rows
        ]

    def history(self, kind: str, *, query: Mapping[str, Any] | None = None, limit: int = 10000) -> list[dict[str, Any]]:
        """Raw rows of a history query (read only), e.g. ``history("task", query={"processInstanceId": i})``.

        ``kind`` is one of ``task``, ``user-operation``, ``incident``, ``variable-instance``,
        ``decision-instance``, ``process-instance``, ``external-task-log``; list values of
        ``query`` go as the engine's ``...In`` filters (comma separated)."""
        if kind not in _HISTORY_KINDS:
            raise UsageError(f"unknown history kind {kind!r}; one of {', '.join(sorted(_HISTORY_KINDS))}")
        params: dict[str, Any] = {"maxResults": limit}
        for key, value in (query or {}).items():
            params[key] = ",".join(map(str, value)) if isinstance(value, (list, tuple, set)) else value
        return list(self.request("GET", f"/history/{kind}", params=params) or [])

    # -- jobs -------------------------------------------------------------------------------

    def jobs(self, *, process_key: str | None = None, process_instance_id: str | None = None,
             timers: bool = False) -> list[Job]:
        """Jobs waiting to run (timers only with ``timers``), soonest due first."""
        params: dict[str, Any] = {"sortBy": "jobDueDate", "sortOrder": "asc"}
        if process_key:
            params["processDefinitionKey"] = process_key
        if process_instance_id:
            params["processInstanceId"] = process_instance_id
        if timers:
            params["timers"] = "true"
        return [
            Job(id=j["id"], due_date=j.get("dueDate"), process_instance_id=j.get("processInstanceId"),
                retries=j.get("retries"), exception_message=j.get("exceptionMessage"),
                failed_activity_id=j.get("failedActivityId"))
            for j in self.request("GET", "/job", params=params)
        ]

    # -- incidents ----------------------------------------------------------------------------

    def incidents(self, *, process_instance_id: str | None = None) -> list[Incident]:
        import pycamunda.incident

        req = pycamunda.incident.GetList(self.url, process_instance_id=process_instance_id)
        rows = self._call("list incidents", req)
        return [
            Incident(
                id=i.id_, type=getattr(i.incident_type, "value", str(i.incident_type)), message=i.incident_message,
                process_instance_id=i.process_instance_id, process_definition_id=i.process_definition_id,
                activity_id=i.activity_id, configuration=i.configuration,
                timestamp=i.incident_timestamp.isoformat() if i.incident_timestamp else None,
            )
            for i in rows
        ]

    def retry_incident(self, incident_id: str, *, retries: int = 1) -> Incident:
        """Give the failed external task or job of an incident new retries, which resolves the incident."""
        try:
            raw = self.request("GET", f"/incident/{incident_id}")
        except EngineError as exc:
            if exc.status == 404:
                raise NotFoundError(f"no incident {incident_id}", hint="list them with `mlc incidents`") from None
            raise
        incident = Incident(
            id=raw["id"], type=raw["incidentType"], message=raw.get("incidentMessage"),
            process_instance_id=raw.get("processInstanceId"), activity_id=raw.get("activityId"),
            configuration=raw.get("configuration"), timestamp=raw.get("incidentTimestamp"),
        )
        if incident.type == "failedExternalTask":
            self.request("PUT", f"/external-task/{incident.configuration}/retries", json={"retries": retries})
        elif incident.type == "failedJob":
            self.request("PUT", f"/job/{incident.configuration}/retries", json={"retries": retries})
        else:
            raise UsageError(f"incident {incident_id} is of type {incident.type}, which cannot be retried")
        return incident

    # -- user tasks ---------------------------------------------------------------------------

    def tasks(
        self, *, process_instance_id: str | None = None, candidate_group: str | None = None, assignee: str | None = None
    ) -> list[UserTask]:
        params: dict[str, Any] = {"sortBy": "created", "sortOrder": "asc"}
        if process_instance_id:
            params["processInstanceId"] = process_instance_id
        if candidate_group:
            params["candidateGroup"] = candidate_group
        if assignee:
            params["assignee"] = assignee
        # httpx: pycamunda's task.GetList predates fields the 7.2x API returns and breaks on them.
        rows = self.request("GET", "/task", params=params)
        return [
            UserTask(
                id=t["id"], name=t.get("name"), task_definition_key=t.get("taskDefinitionKey"), assignee=t.get("assignee"),
                created=t.get("created"), process_instance_id=t.get("processInstanceId"),
                process_definition_id=t.get("processDefinitionId"),
            )
            for t in rows
        ]

    def claim(self, task_id: str, user: str) -> None:
        import pycamunda.task

        self._call(f"claim task {task_id}", pycamunda.task.Claim(self.url, id_=task_id, user_id=user))

    def complete_task(self, task_id: str, variables: Mapping[str, Any] | None = None) -> None:
        import pycamunda.task

        req = pycamunda.task.Complete(self.url, id_=task_id)
        req.variables = to_engine(variables)
        try:
            self._call(f"complete task {task_id}", req)
        except EngineError as exc:
            if exc.status == 404 or "Cannot find task" in exc.message:
                raise NotFoundError(f"no open task {task_id}", hint="list them with `mlc tasks`") from None
            raise

    # -- decisions ----------------------------------------------------------------------------

    def evaluate_decision(self, key: str, variables: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        """Evaluate the latest decision ``key``; one dict of outputs per matched rule."""
        import pycamunda.decisiondef

        req = pycamunda.decisiondef.Evaluate(self.url, key=key)
        req.variables = to_engine(variables)
        rows = self._call(f"evaluate decision {key}", req)
        return [{name: getattr(v, "value", v) for name, v in row.items()} for row in rows]
