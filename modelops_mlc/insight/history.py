"""A model's whole history, oldest first: versions registered, every process instance with its
path through the BPMN and its steps, tests with metrics and verdicts, approvals, tickets,
deployments, promotions and rollbacks, alias moves and drift results. Each event says when, who
(a user, a worker or a process) and where to look (a Cockpit URL or an MLflow run)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from modelops_mlc.governance.review import SEPARATION_OF_DUTIES_PREFIX
from modelops_mlc.insight.facts import (
    InstanceFacts,
    cockpit_url,
    gather_instances,
    iso,
    mlflow_runs,
    model_name,
    monitor_runs,
    run_link,
    store_rows,
)

if TYPE_CHECKING:
    from modelops_mlc.config import Settings
    from modelops_mlc.engine import EngineClient
    from modelops_mlc.registry import Registry

__all__ = ["HistoryEvent", "model_history"]


class HistoryEvent(BaseModel):
    time: str | None
    kind: str  # version, process, step, approval, test, ticket, deployment, alias, drift
    what: str
    actor: str | None = None
    link: str | None = None
    version: int | None = None
    process: str | None = None
    instance_id: str | None = None
    step: str | None = None
    duration_ms: int | None = None
    state: str | None = None
    details: dict[str, Any] = Field(default_factory=dict)


APPROVED_BY = "APPROVED_BY"  # the reviewer, recorded by the review task's listeners or delivered by the watcher
_STEP_TYPES = {"serviceTask", "externalTask", "userTask", "businessRuleTask", "intermediateMessageCatch",
               "receiveTask", "callActivity", "boundaryError", "intermediateTimer", "sendTask", "scriptTask"}


def _version_of(value: Any) -> int | None:
    try:
        return int(str(value).rsplit("/", 1)[-1])
    except (TypeError, ValueError):
        return None


def _process_events(settings: "Settings", facts: InstanceFacts) -> list[HistoryEvent]:
    inst = facts.instance
    link = cockpit_url(settings, inst.id)
    version = _version_of(facts.variables.get("MODEL_VERSION"))
    common = {"process": inst.process_key, "instance_id": inst.id, "link": link, "version": version}
    starter = next((a for a in facts.activities if a.activity_type.endswith("StartEvent")), None)
    events = [HistoryEvent(
        time=iso(inst.start_time), kind="process", actor=f"process:{inst.process_key}",
        what=f"{inst.process_key} {inst.state.lower() if inst.state else ''}".strip()
             + (f" at {facts.end_event}" if facts.end_event else ""),
        duration_ms=inst.duration_ms, state=inst.state, **common,
        details={"path": facts.path, "end_event": facts.end_event, "business_key": inst.business_key,
                 "started_by": starter.activity_name or starter.activity_id if starter else None},
    )]
    for act in facts.activities:
        if act.activity_type not in _STEP_TYPES:
            continue
        state = "canceled" if act.canceled else ("running" if act.end_time is None else "done")
        base = {"time": iso(act.start_time), "actor": facts.actor(act), "step": act.activity_name or act.activity_id,
                "duration_ms": act.duration_ms, "state": state, **common}
        if act.activity_type == "userTask":
            approved = facts.variables.get("approved")
            verdict = "" if act.end_time is None or approved is None else (" approved" if approved else " rejected")
            events.append(HistoryEvent(kind="approval", what=f"{base['step']}{verdict}",
                                       details={"approved": approved if act.end_time else None,
                                                "comment": facts.variables.get("review_comment")}, **base))
        elif act.id in facts.decisions:  # what the engine's DMN decided, and by which rules
            decided = facts.decisions[act.id]
            shown = ", ".join(f"{k}={v}" for k, v in decided["outputs"].items())
            events.append(HistoryEvent(kind="step", what=f"{base['step']}: {decided['decision']} -> {shown}",
                                       details=decided, **base))
        else:
            events.append(HistoryEvent(kind="step", what=str(base["step"]), **base))
    return events


def _test_events(registry: "Registry", name: str, by_run: dict[str, InstanceFacts]) -> list[HistoryEvent]:
    events = []
    for run in mlflow_runs(registry, name, "test"):
        tags = run.data.tags
        facts = by_run.get(run.info.run_id)
        verdict = facts.variables.get("TEST_VERDICT") if facts else None
        passed = verdict.get("passed") if isinstance(verdict, dict) else None
        worker = None
        if facts is not None:
            test_step = next((a for a in reversed(facts.activities) if facts.topics.get(a.id) == "run-test"), None)
            worker = facts.actor(test_step) if test_step else None
        metrics = {k: v for k, v in sorted(run.data.metrics.items())}
        shown = ", ".join(f"{k}={v:.4g}" for k, v in list(metrics.items())[:4])
        events.append(HistoryEvent(
            time=iso(run.info.start_time), kind="test", version=_version_of(tags.get("mlc.model_version")),
            what=f"test run {'passed' if passed else 'failed' if passed is False else 'finished'}"
                 + (f": {shown}" if shown else ""),
            actor=worker or f"user:{tags.get('mlflow.user', 'unknown')}",
            link=run_link(registry, run.info.run_id, run.info.experiment_id),
            process=facts.instance.process_key if facts else None, instance_id=facts.instance.id if facts else None,
            state=run.info.status, details={"run_id": run.info.run_id, "metrics": metrics, "verdict": verdict,
                                            "data": run.data.params.get("data_uri"),
                                            "data_sha256": run.data.params.get("data_sha256")},
        ))
    return events


def _ticket_events(settings: "Settings", link: Any, audit: list[dict[str, Any]],
                   approved_by: str | None) -> list[HistoryEvent]:
    """A ticket (who opened it), and for a review ticket its decision: the reviewer the watcher
    delivered as ``APPROVED_BY`` (its audit row acts as that user), and every approval it refused
    under separation of duties (the refusal it wrote to the ticket's ``last_error``)."""
    target = f"{link.system}:{link.key}"
    link_url = link.url or (cockpit_url(settings, link.process_instance_id) if link.process_instance_id else None)
    common = {"version": _version_of(link.model_version), "link": link_url, "instance_id": link.process_instance_id}
    ticket = {"system": link.system, "key": link.key}
    events = [HistoryEvent(
        time=iso(link.created_at), kind="ticket", what=f"ticket {link.key} ({link.system}) {link.last_seen_state or 'open'}",
        actor=_ticket_creator(audit, target) or (f"process:{link.process_instance_id}" if link.process_instance_id else None),
        state=link.last_seen_state, details={**ticket, "watch": link.watch}, **common,
    )]
    for a in audit:
        after = a["after"] or {}
        if a["action"] != "ticket.update" or a["target"] != target:
            continue
        refusal = after.get("last_error") or ""
        if refusal.startswith(SEPARATION_OF_DUTIES_PREFIX):
            events.append(HistoryEvent(
                time=iso(a["at"]), kind="approval", actor=a["actor"], state="refused",
                what=f"review ticket {link.key} approval refused: {refusal.removeprefix(SEPARATION_OF_DUTIES_PREFIX).strip()}",
                details={**ticket, "approved": None, "refusal": refusal}, **common))
        elif after.get("last_delivered_state") and approved_by and a["actor"] == f"user:{approved_by}":
            approved = after["last_delivered_state"] == "Done"
            events.append(HistoryEvent(
                time=iso(a["at"]), kind="approval", actor=a["actor"], state=after["last_delivered_state"],
                what=f"review ticket {link.key} {'approved' if approved else 'rejected'} by {approved_by}",
                details={**ticket, "approved": approved}, **common))
    return events


def _ticket_creator(audit: list[dict[str, Any]], target: str) -> str | None:
    """Who opened a ticket: its link is reserved under a ``pending:`` key first (no ticket yet, no
    model) and gets the ticket's key when the ticket exists; that update is the creation."""
    return next((a["actor"] for a in audit if a["target"] == target and (
        a["action"] == "ticket.create" or (a["action"] == "ticket.update" and "key" in (a["after"] or {})))), None)


def _audit_actor(audit: list[dict[str, Any]], action: str, target: str) -> str | None:
    return next((a["actor"] for a in audit if a["action"] == action and a["target"] == target), None)


def model_history(client: "EngineClient", registry: "Registry", model_id: str, *, limit: int = 200) -> list[HistoryEvent]:
    """Every recorded event of a model (``name``, ``name/version`` or ``name@alias`` give the name), oldest first."""
    from modelops_mlc.insight.audit import audit_entries
    from modelops_mlc.registry import parse_model_id
    from modelops_mlc.runtimes.deployments import DeploymentManager
    from modelops_mlc.tickets.models import TicketLinkRow

    settings = registry.settings
    name = model_name(model_id)
    audit = audit_entries(settings, model_id=name, limit=10000)
    events: list[HistoryEvent] = []

    for v in reversed(registry.list_versions(name)):
        parent = v.tags.get("mlc.parent_version") or v.tags.get("mlc.copied_from")
        events.append(HistoryEvent(
            time=iso(v.created_at), kind="version", version=v.version,
            what=f"version {v.version} registered" + (f" from version {parent}" if parent else ""),
            actor=_audit_actor(audit, "model.register", f"{name}/{v.version}") or "registry",
            link=run_link(registry, v.run_id), details={"source": v.source, "run_id": v.run_id, "aliases": v.aliases},
        ))

    instances = gather_instances(client, model_id=name, limit=limit)
    by_run = {str(f.variables["TEST_RUN_ID"]): f for f in instances if f.variables.get("TEST_RUN_ID")}
    for facts in instances:
        events.extend(_process_events(settings, facts))
    events.extend(_test_events(registry, name, by_run))

    approvers = {f.instance.id: f.variables.get(APPROVED_BY) for f in instances}
    for link in store_rows(settings, TicketLinkRow, TicketLinkRow.model_id == name, order=TicketLinkRow.id):
        events.extend(_ticket_events(settings, link, audit, approvers.get(link.process_instance_id or "")))

    manager = DeploymentManager(settings)
    deployments = {d.id: d for d in manager.list(name)}
    for e in manager.events(model=name):
        dep = deployments.get(e.deployment_id)
        events.append(HistoryEvent(
            time=iso(e.at), kind="deployment", version=_version_of(dep.model_version) if dep else None,
            what=f"deployment {e.deployment_id} {e.action}" + (f" on {dep.runtime} ({dep.mode}, {dep.stage})" if dep else ""),
            actor=e.actor, instance_id=dep.process_instance_id if dep else None,
            link=cockpit_url(settings, dep.process_instance_id) if dep and dep.process_instance_id else None,
            details={"deployment_id": e.deployment_id, "action": e.action, "detail": e.detail},
        ))

    for a in audit:
        if a["action"] in ("model.alias", "model.unalias"):
            (alias, to), = (a["after"] or {None: None}).items()
            frm = (a["before"] or {}).get(alias)
            events.append(HistoryEvent(
                time=iso(a["at"]), kind="alias", actor=a["actor"], version=_version_of(to) if to else None,
                what=f"alias {alias} " + (f"moved {frm} -> {to}" if to and frm else f"set to {to}" if to else f"removed from {frm}"),
                instance_id=a["process_instance_id"], details={"alias": alias, "before": frm, "after": to},
            ))

    for run in monitor_runs(settings, name):
        events.append(HistoryEvent(
            time=iso(run.at), kind="drift", version=_version_of(run.model_version),
            what=f"monitor verdict {run.verdict}" + (f", max PSI {run.max_psi:.3f} ({run.max_psi_feature})"
                                                     if run.max_psi is not None else ""),
            actor=f"process:{run.process_instance_id}" if run.process_instance_id else "monitor",
            link=run_link(registry, run.mlflow_run_id) or (cockpit_url(settings, run.process_instance_id)
                                                           if run.process_instance_id else None),
            instance_id=run.process_instance_id, state=run.verdict,
            details={"trigger": run.trigger, "reason": run.reason, "drifted_features": run.drifted_features,
                     "features": {f.feature: f.psi for f in run.features}},
        ))

    _, wanted, _ = parse_model_id(model_id)
    if wanted is not None:
        events = [e for e in events if e.version in (None, wanted)]
    events.sort(key=lambda e: (e.time or "", _KIND_ORDER.get(e.kind, 9)))
    return events


_KIND_ORDER = {"version": 0, "process": 1, "step": 2, "approval": 2, "test": 3}
