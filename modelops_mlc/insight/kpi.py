"""Life cycle KPIs from recorded timestamps: the engine's history for everything a process did
(snapshot to deployment, waits for approval and for tickets, test verdicts, incidents), the MLC
store's deployment events for deployments, promotions and rollbacks.

Every figure keeps the samples it was computed from, so a reader can check it against Cockpit.
"""

from __future__ import annotations

import datetime as dt
import statistics
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from modelops_mlc.insight.facts import (
    WAITING_ACTIVITIES,
    InstanceFacts,
    gather_instances,
    iso,
    model_name,
    parse_time,
    store_rows,
)

if TYPE_CHECKING:
    from modelops_mlc.engine import EngineClient
    from modelops_mlc.registry import Registry

__all__ = ["Duration", "Kpis", "Sample", "compute_kpis"]

DEPLOYED_END = "end_deployed"
BACK_TEST = "mlc-run-back-test"
MONITOR_PROCESSES = ("mlc-monitor", "mlc-monitor-schedule")


class Sample(BaseModel):
    """One measured duration: what it was, from when to when (engine history timestamps)."""

    model_id: str | None
    instance_id: str
    what: str
    start: str
    end: str
    seconds: float
    ticket: str | None = None


class Duration(BaseModel):
    count: int = 0
    median_s: float | None = None
    p90_s: float | None = None
    samples: list[Sample] = Field(default_factory=list)

    @classmethod
    def of(cls, samples: list[Sample]) -> "Duration":
        values = sorted(s.seconds for s in samples)
        if not values:
            return cls()
        p90 = statistics.quantiles(values, n=10, method="inclusive")[-1] if len(values) > 1 else values[0]
        return cls(count=len(values), median_s=round(statistics.median(values), 3), p90_s=round(p90, 3),
                   samples=samples)


class Kpis(BaseModel):
    since: str | None = None
    model_id: str | None = None
    models: list[str] = Field(default_factory=list)
    instances: int = 0
    time_to_deployment: Duration = Field(default_factory=Duration)
    approval_wait: dict[str, Duration] = Field(default_factory=dict)  # per user task (definition key)
    ticket_wait: dict[str, Duration] = Field(default_factory=dict)  # per waiting activity; samples name the ticket
    tests: int = 0
    tests_passed: int = 0
    test_pass_rate: float | None = None
    deployments: int = 0
    promotions: int = 0
    rollbacks: int = 0
    incidents: int = 0
    open_incidents: int = 0
    last_back_test_failed: list[str] = Field(default_factory=list)
    unmonitored: list[str] = Field(default_factory=list)

    def figures(self) -> dict[str, Any]:
        """The headline numbers, flat (what `mlc kpi` prints and the report shows)."""
        rows: dict[str, Any] = {
            "models": len(self.models), "process instances": self.instances,
            "snapshot to deployment, median (s)": self.time_to_deployment.median_s,
            "snapshot to deployment, p90 (s)": self.time_to_deployment.p90_s,
            "deployments measured": self.time_to_deployment.count,
        }
        for key, d in self.approval_wait.items():
            rows[f"approval wait {key}, median (s)"] = d.median_s
            rows[f"approval wait {key}, p90 (s)"] = d.p90_s
        for key, d in self.ticket_wait.items():
            rows[f"ticket wait {key}, median (s)"] = d.median_s
        rows.update({
            "tests": self.tests, "test pass rate": self.test_pass_rate, "deployments": self.deployments,
            "promotions": self.promotions, "rollbacks": self.rollbacks, "incidents": self.incidents,
            "open incidents": self.open_incidents, "last back test failed": self.last_back_test_failed,
            "models with no monitor": self.unmonitored,
        })
        return rows


def _seconds(start: Any, end: Any) -> float:
    return round((parse_time(end) - parse_time(start)).total_seconds(), 3)  # type: ignore[operator]


def _model(facts: InstanceFacts) -> str | None:
    value = facts.variables.get("MODEL_ID")
    return model_name(str(value)) if value else None


def _failed(verdict: Any) -> bool:
    return isinstance(verdict, dict) and verdict.get("passed") is False


def _time_to_deployment(instances: list[InstanceFacts]) -> list[Sample]:
    """Per snapshot (business key ``MODEL:VERSION``, shared by a router and the process it calls):
    the start of its first instance to the end of its first ``end_deployed`` event."""
    first: dict[str, InstanceFacts] = {}
    for f in instances:  # oldest first
        first.setdefault(f.instance.business_key or f.instance.id, f)
    samples: dict[str, Sample] = {}
    for f in instances:
        end = next((a for a in f.activities if a.activity_id == DEPLOYED_END and a.end_time), None)
        key = f.instance.business_key or f.instance.id
        if end is None or key in samples:
            continue
        start = first[key].instance
        samples[key] = Sample(model_id=_model(f), instance_id=f.instance.id, what=f"{start.process_key} -> {DEPLOYED_END}",
                              start=start.start_time or "", end=end.end_time or "",
                              seconds=_seconds(start.start_time, end.end_time))
    return list(samples.values())


def compute_kpis(client: "EngineClient", registry: "Registry", *, since: dt.datetime | None = None,
                 model_id: str | None = None, limit: int = 5000) -> Kpis:
    """KPIs over the process instances started since ``since`` (all when None), of one model or all."""
    from modelops_mlc.runtimes.models import DeploymentEventRow
    from modelops_mlc.tickets.models import TicketLinkRow

    settings = registry.settings
    name = model_name(model_id) if model_id else None
    scoped = gather_instances(client, model_id=name, since=since, limit=limit, details=False)
    ids = {f.instance.id for f in scoped}
    by_id = {f.instance.id: f for f in scoped}
    kpis = Kpis(since=iso(since), model_id=name, instances=len(scoped))
    kpis.models = [name] if name else [m.name for m in registry.list_models()]

    kpis.time_to_deployment = Duration.of(_time_to_deployment(scoped))

    waits: dict[str, list[Sample]] = {}
    for task in client.history("task", query={"finished": "true"}, limit=limit):
        if task.get("processInstanceId") in ids and task.get("endTime") and (task.get("deleteReason") or "") != "deleted":
            key = task.get("taskDefinitionKey") or task.get("name") or "task"
            waits.setdefault(key, []).append(Sample(
                model_id=_model(by_id[task["processInstanceId"]]), instance_id=task["processInstanceId"],
                what=task.get("name") or key, start=task["startTime"], end=task["endTime"],
                seconds=_seconds(task["startTime"], task["endTime"])))
    kpis.approval_wait = {k: Duration.of(v) for k, v in sorted(waits.items())}

    tickets = {}
    if ids:
        for link in store_rows(settings, TicketLinkRow, TicketLinkRow.process_instance_id.in_(ids), order=TicketLinkRow.id):
            tickets.setdefault(link.process_instance_id, f"{link.system}:{link.key}")
    ticket_waits: dict[str, list[Sample]] = {}
    for f in scoped:
        for a in f.activities:
            if a.activity_type in WAITING_ACTIVITIES and a.end_time and not a.canceled:
                ticket_waits.setdefault(a.activity_id, []).append(Sample(
                    model_id=_model(f), instance_id=f.instance.id, what=a.activity_name or a.activity_id,
                    start=a.start_time or "", end=a.end_time, seconds=_seconds(a.start_time, a.end_time),
                    ticket=tickets.get(f.instance.id)))
    kpis.ticket_wait = {k: Duration.of(v) for k, v in sorted(ticket_waits.items())}

    # one verdict per test run: a calling process that receives its called process's variables holds it too
    by_run: dict[str, dict[str, Any]] = {}
    for f in scoped:
        if isinstance(f.variables.get("TEST_VERDICT"), dict):
            by_run.setdefault(str(f.variables.get("TEST_RUN_ID") or f.instance.id), f.variables["TEST_VERDICT"])
    verdicts = list(by_run.values())
    kpis.tests = len(verdicts)
    kpis.tests_passed = sum(1 for v in verdicts if v.get("passed") is True)
    kpis.test_pass_rate = round(kpis.tests_passed / kpis.tests, 4) if kpis.tests else None

    where = [DeploymentEventRow.model_name == name] if name else []
    for e in store_rows(settings, DeploymentEventRow, *where):
        if since is not None and parse_time(e.at) < since:  # type: ignore[operator]
            continue
        kpis.deployments += e.action == "deployed"
        kpis.promotions += e.action == "promote"
        kpis.rollbacks += e.action == "rollback"

    incidents = [i for i in client.history("incident", limit=limit)  # root causes: not their copies up the call chain
                 if i.get("processInstanceId") in ids and i.get("rootCauseIncidentId") in (None, i.get("id"))]
    kpis.incidents = len(incidents)
    kpis.open_incidents = sum(1 for i in incidents if i.get("open"))

    # a model's state, whenever it was reached: its last back test, whether anything monitors it
    last_back_test: dict[str, InstanceFacts] = {}
    for f in gather_instances(client, model_id=name, process_key=BACK_TEST, limit=limit, details=False):
        if f.instance.state != "ACTIVE" and _model(f):  # oldest first: the last one wins
            last_back_test[_model(f)] = f  # type: ignore[index]
    kpis.last_back_test_failed = sorted(
        m for m, f in last_back_test.items()
        if _failed(f.variables.get("TEST_VERDICT")) or f.end_event not in (None, "end_passed"))
    monitored = {model_name(str(client.variables(i.id).get("MODEL_ID") or ""))
                 for key in MONITOR_PROCESSES for i in client.instances(model_id=name, process_key=key, limit=limit)}
    kpis.unmonitored = sorted(m for m in kpis.models if m not in monitored)
    return kpis
