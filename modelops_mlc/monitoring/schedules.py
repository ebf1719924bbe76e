"""Per-model schedules: one waiting ``mlc-monitor-schedule`` (or ``mlc-retrain-schedule``) instance
per model, whose timer (in the engine's database, so it survives a restart, and visible in Cockpit)
throws ``mlc.monitor`` (or ``mlc.retrain``) each time it fires. Scheduling a model again replaces its
schedule of that kind; unscheduling ends it.

Timers take an ISO-8601 repeating interval (``R/PT1H``) or a cron expression. Camunda 7.24 reads
cron with cron-utils' Spring 5.3 definition: six fields, seconds first, no year, day of week 0-7
with 0 and 7 for Sunday, ``?`` allowed in either day field. A unix crontab line (five fields) is
the same with ``0`` seconds in front, which :func:`cron_to_engine` adds.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from modelops_mlc.errors import EngineError, NotFoundError, UsageError, first_line

if TYPE_CHECKING:
    from modelops_mlc.engine import EngineClient

__all__ = [
    "MONITOR",
    "MONITOR_SIGNAL",
    "RETRAIN",
    "SCHEDULE_PROCESS",
    "UNSCHEDULE_MESSAGE",
    "MonitorOutcome",
    "Schedule",
    "ScheduleKind",
    "cron_to_engine",
    "every_to_cycle",
    "list_schedules",
    "monitor_outcome",
    "run_monitor",
    "schedule",
    "timer_expression",
    "unschedule",
]

SCHEDULE_PROCESS = "mlc-monitor-schedule"
UNSCHEDULE_MESSAGE = "mlc.monitor-unschedule"
MONITOR_SIGNAL = "mlc.monitor"


@dataclass(frozen=True)
class ScheduleKind:
    """What a schedule starts: its waiting process, the message that ends it and its variables."""

    name: str  # monitor / retrain
    process: str
    unschedule_message: str
    timer_variable: str
    spec_variable: str
    trigger_variable: str
    data_variables: tuple[str, ...]  # the data the started process reads, passed on each time

    @property
    def variables(self) -> tuple[str, ...]:
        return ("MODEL_ID", "MODEL_VERSION", *self.data_variables, self.timer_variable, self.spec_variable)


MONITOR = ScheduleKind("monitor", SCHEDULE_PROCESS, UNSCHEDULE_MESSAGE, "MONITOR_SCHEDULE", "MONITOR_SCHEDULE_SPEC",
                       "MONITOR_TRIGGER", ("CURRENT_DATA", "REFERENCE_DATA"))
RETRAIN = ScheduleKind("retrain", "mlc-retrain-schedule", "mlc.retrain-unschedule", "RETRAIN_SCHEDULE",
                       "RETRAIN_SCHEDULE_SPEC", "RETRAIN_TRIGGER", ("TRAINING_DATA", "IMPROVEMENT_MARGIN"))
_CRON_FIELD = re.compile(r"^[0-9A-Za-z*?,/#\-]+$")


class Schedule(BaseModel):
    """A model's schedule as the engine holds it."""

    kind: str = MONITOR.name
    model: str
    version: str | None = None
    timer: str  # what the engine's timer reads: R/PT1H, or a six-field cron
    spec: str | None = None  # as given: "every 1h", "cron 0 2 * * 0"
    current_data: str | None = None
    reference_data: str | None = None
    training_data: str | None = None
    improvement_margin: float | None = None
    instance_id: str
    next_due: str | None = None
    since: str | None = None


def every_to_cycle(every: str) -> str:
    """``30s``, ``15m``, ``1h``, ``1h30m``, ``1d``, ``2w``, an ISO duration (``PT1H``) or an ISO repeating
    interval (``R/PT1H``, ``R5/PT10M``) -> the repeating interval the timer reads."""
    text = every.strip()
    if text.upper().startswith("R"):
        return text.upper() if "/" in text else _bad_every(every)
    if text.upper().startswith("P"):
        from modelops_mlc.durations import iso_duration_seconds

        try:
            iso_duration_seconds(text)
        except UsageError:
            _bad_every(every)
        return f"R/{text.upper()}"
    from modelops_mlc.durations import duration_seconds

    try:
        exact = duration_seconds(text)
    except UsageError:
        _bad_every(every)
    seconds = round(exact)
    if abs(exact - seconds) > 1e-6:  # a timer's cycle counts whole seconds (1.1h is 3960.0000000000005)
        _bad_every(every)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    time = "".join(f"{v}{u}" for v, u in ((hours, "H"), (minutes, "M"), (secs, "S")) if v)
    return "R/P" + (f"{days}D" if days else "") + (f"T{time}" if time else "")


def _bad_every(every: str) -> str:
    raise UsageError(f"--every {every!r} is not an interval",
                     hint="use 30s, 15m, 1h, 1h30m, 1d, an ISO duration such as PT1H, or a repeat such as R/PT1H")


def cron_to_engine(cron: str) -> str:
    """A unix crontab schedule (5 fields: minute hour day-of-month month day-of-week) -> the 6-field
    cron Camunda 7.24 reads (seconds first). Six fields pass as they are; ``@hourly``-style macros too.

    A crontab line that restricts both day of month and day of week runs when either matches;
    the engine's cron would need both, so such a line is refused rather than run on other days.
    """
    text = " ".join(cron.split())
    if text.startswith("@"):
        if text.lower() not in ("@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"):
            raise UsageError(f"unknown cron macro {text!r}", hint="@hourly, @daily, @weekly, @monthly or @yearly")
        return text.lower()
    fields = text.split(" ")
    if len(fields) not in (5, 6) or not all(_CRON_FIELD.match(f) for f in fields):
        raise UsageError(f"--cron {cron!r} is not a cron expression",
                         hint='five fields: minute hour day-of-month month day-of-week, e.g. "0 2 * * 0"')
    if len(fields) == 5:
        dom, dow = fields[2], fields[4]
        if dom not in ("*", "?") and dow not in ("*", "?"):
            raise UsageError(f"--cron {cron!r} restricts both the day of month and the day of week",
                             hint="restrict one of them and leave the other *")
        fields = ["0", *fields]
    return " ".join(fields)


def timer_expression(*, every: str | None = None, cron: str | None = None) -> tuple[str, str]:
    """(timer expression, spec as given) from exactly one of ``every`` and ``cron``."""
    if (every is None) == (cron is None):
        raise UsageError("give exactly one of --every and --cron")
    if every is not None:
        return every_to_cycle(every), f"every {every.strip()}"
    assert cron is not None
    return cron_to_engine(cron), f"cron {' '.join(cron.split())}"


def _model_parts(model: str) -> tuple[str, str | None]:
    from modelops_mlc.registry.client import parse_model_id

    name, version, alias = parse_model_id(model)
    return name, (str(version) if version is not None else alias)


def _active(client: "EngineClient", kind: ScheduleKind, name: str | None = None) -> list[Any]:
    return client.instances(process_key=kind.process, active_only=True, business_key=name, limit=100_000)


def _variables(client: "EngineClient", ids: list[str], kind: ScheduleKind) -> dict[str, dict[str, Any]]:
    """The schedule variables of many instances in one query."""
    from modelops_mlc.engine import from_engine

    found: dict[str, dict[str, Any]] = {i: {} for i in ids}
    for start in range(0, len(ids), 500):
        rows = client.request("POST", "/variable-instance", params={"deserializeValues": "false"}, json={
            "processInstanceIdIn": ids[start:start + 500], "variableNameIn": list(kind.variables)})
        for row in rows:
            found.setdefault(row["processInstanceId"], {}).update(from_engine({row["name"]: row}))
    return found


def _end(client: "EngineClient", instance_id: str, kind: ScheduleKind) -> None:
    try:
        client.correlate_message(kind.unschedule_message, process_instance_id=instance_id)
    except EngineError as exc:  # ended meanwhile (a concurrent unschedule)
        if exc.status not in (400, 404):
            raise


def schedule(client: "EngineClient", model: str, *, every: str | None = None, cron: str | None = None,
             current_data: str | None = None, reference_data: str | None = None, training_data: str | None = None,
             improvement_margin: float | None = None, kind: ScheduleKind = MONITOR) -> Schedule:
    """Start (or replace) the model's schedule of ``kind``; returns it with its first due time.

    The new schedule starts before the old one ends, so a model is never left without one; when
    two schedule the same model at once, the newest instance is kept by both.
    """
    timer, spec = timer_expression(every=every, cron=cron)
    name, version = _model_parts(model)
    data = {"CURRENT_DATA": current_data, "REFERENCE_DATA": reference_data, "TRAINING_DATA": training_data,
            "IMPROVEMENT_MARGIN": improvement_margin}
    variables = {"MODEL_ID": name, "MODEL_VERSION": version, kind.trigger_variable: "schedule",
                 kind.timer_variable: timer, kind.spec_variable: spec,
                 **{k: data[k] for k in kind.data_variables}}
    try:
        started = client.start(kind.process, {k: v for k, v in variables.items() if v is not None},
                               business_key=name)
    except EngineError as exc:
        if "parsing cycle expression" in exc.message:
            why = first_line(exc.message).rsplit("': ", 1)[-1]
            raise UsageError(f"the engine refused the schedule {timer!r}: {why}") from None
        if exc.status == 404 or "no processes deployed" in exc.message.lower():
            raise NotFoundError(f"process {kind.process} is not deployed", hint="mlc deploy bpmn/") from None
        raise
    active = sorted(_active(client, kind, name), key=lambda i: (i.start_time or "", i.id))
    keep = active[-1].id if active else started.id
    for instance in active:
        if instance.id != keep:
            _end(client, instance.id, kind)
    jobs = client.jobs(process_instance_id=keep, timers=True)
    return Schedule(kind=kind.name, model=name, version=version, timer=timer, spec=spec,
                    **{k.lower(): data[k] for k in kind.data_variables}, instance_id=keep,
                    next_due=jobs[0].due_date if jobs else None, since=started.start_time)


def unschedule(client: "EngineClient", model: str, *, kind: ScheduleKind = MONITOR) -> int:
    """End the model's schedule of ``kind``; returns how many instances were ended (NotFoundError when none)."""
    name, _ = _model_parts(model)
    active = _active(client, kind, name)
    if not active:
        raise NotFoundError(f"model {name} has no {kind.name} schedule", hint="list them with `mlc monitor list`")
    for instance in active:
        _end(client, instance.id, kind)
    return len(active)


def list_schedules(client: "EngineClient", kinds: tuple[ScheduleKind, ...] = (MONITOR,)) -> list[Schedule]:
    """Every model's schedule of ``kinds`` with its next due time, by model name."""
    out: list[Schedule] = []
    for kind in kinds:
        out.extend(_schedules(client, kind))
    return sorted(out, key=lambda s: (s.model, s.kind, s.since or ""))


def _schedules(client: "EngineClient", kind: ScheduleKind) -> list[Schedule]:
    active = _active(client, kind)
    if not active:
        return []
    variables = _variables(client, [i.id for i in active], kind)
    due: dict[str, str | None] = {}
    for job in client.jobs(process_key=kind.process, timers=True):
        if job.process_instance_id and job.process_instance_id not in due:
            due[job.process_instance_id] = job.due_date
    out = []
    for instance in active:
        v = variables.get(instance.id, {})
        version = v.get("MODEL_VERSION")
        out.append(Schedule(
            kind=kind.name, model=str(v.get("MODEL_ID") or instance.business_key),
            version=None if version is None else str(version),
            timer=str(v.get(kind.timer_variable) or ""), spec=v.get(kind.spec_variable),
            **{k.lower(): v.get(k) for k in kind.data_variables}, instance_id=instance.id,
            next_due=due.get(instance.id), since=instance.start_time,
        ))
    return out


def run_monitor(client: "EngineClient", model: str, *, current_data: str | None = None,
                reference_data: str | None = None, trigger: str = "cli",
                extra: Mapping[str, Any] | None = None) -> str:
    """Throw ``mlc.monitor`` for ``model``; returns the MONITOR_REQUEST_ID the run carries, by which
    its instance is found in history."""
    name, version = _model_parts(model)
    request_id = uuid.uuid4().hex
    variables = {"MODEL_ID": name, "MODEL_VERSION": version, "CURRENT_DATA": current_data,
                 "REFERENCE_DATA": reference_data, "MONITOR_TRIGGER": trigger, "MONITOR_REQUEST_ID": request_id,
                 **(extra or {})}
    client.signal(MONITOR_SIGNAL, {k: v for k, v in variables.items() if v is not None})
    return request_id


class MonitorOutcome(BaseModel):
    """Where a monitor run started with :func:`run_monitor` stands."""

    request_id: str
    instance_id: str | None = None
    state: str | None = None  # ACTIVE, COMPLETED, ... (None: not started yet)
    end_event: str | None = None
    verdict: str | None = None
    reason: str | None = None
    summary: str | None = None


def monitor_outcome(client: "EngineClient", request_id: str, *, wait: float = 0.0) -> MonitorOutcome:
    """The run carrying ``request_id``; with ``wait`` (seconds) polls until it has ended."""
    import time

    deadline = time.monotonic() + wait
    while True:
        found = client.instances(process_key="mlc-monitor", variables={"MONITOR_REQUEST_ID": request_id}, limit=1)
        outcome = MonitorOutcome(request_id=request_id)
        if found:
            instance = found[0]
            outcome.instance_id, outcome.state = instance.id, instance.state
            if instance.state != "ACTIVE":
                ends = [a.activity_id for a in client.history_activities(instance.id)
                        if a.activity_type == "noneEndEvent"]
                variables = client.variables(instance.id)
                outcome.end_event = ends[-1] if ends else None
                outcome.verdict = variables.get("MONITOR_VERDICT")
                outcome.reason = variables.get("MONITOR_REASON") or variables.get("MLC_ERROR_MESSAGE")
                outcome.summary = variables.get("MONITOR_SUMMARY")
                return outcome
        if time.monotonic() >= deadline:
            return outcome
        time.sleep(0.5)
