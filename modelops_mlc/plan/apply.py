"""`mlc plan apply DIR`: make a written plan real on the running stack, changing only what differs.

1. deploy the processes and decisions the plan chose (the engine's duplicate filtering skips
   unchanged ones);
2. set the registered model's tags ``risk_tier``, ``governance_level`` and the registry schema
   (``mlc.registry_schema``), creating the registered model when it does not exist yet;
3. start the monitor and retrain schedules unless the model already has the same ones, and end a
   schedule of the model that the plan has none of (an earlier plan's, or one set by hand): the
   model's schedules are what its latest applied plan says.

Each step reports ``changed`` or ``unchanged``; a second apply of the same plan reports no change.
Processes stay deployed when a later plan does not choose them, since other models may use them.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError

from modelops_mlc.errors import NotFoundError, UsageError

if TYPE_CHECKING:
    from modelops_mlc.config import Settings
    from modelops_mlc.engine import EngineClient
    from modelops_mlc.plan.outputs import Plan
    from modelops_mlc.registry import Registry

__all__ = ["ApplyResult", "ApplyStep", "apply_plan", "definition_files", "read_plan"]

DEPLOYMENT_NAME = "mlc"  # the same deployment name as `mlc deploy` and `mlc up`, so duplicate filtering sees theirs


class ApplyStep(BaseModel):
    step: str
    status: str  # changed, unchanged, skipped
    detail: str


class ApplyResult(BaseModel):
    model: str
    steps: list[ApplyStep]

    @property
    def changed(self) -> bool:
        return any(s.status == "changed" for s in self.steps)


def read_plan(directory: Path) -> tuple["Plan", dict[str, Any]]:
    """plan.json and registry-schema.json of a plan directory."""
    from modelops_mlc.plan.outputs import PLAN_FILE, Plan

    path = directory / PLAN_FILE
    if not path.is_file():
        raise UsageError(f"{directory} is not a plan directory (no {PLAN_FILE})", hint="write one with `mlc plan`")
    try:
        plan = Plan.model_validate_json(path.read_text())
        schema = json.loads((directory / "registry-schema.json").read_text())
    except (ValidationError, ValueError, OSError) as exc:
        raise UsageError(f"unreadable plan in {directory}: {str(exc).splitlines()[0]}") from None
    return plan, schema


_BPMN = "{http://www.omg.org/spec/BPMN/20100524/MODEL}"
_DMN = "{https://www.omg.org/spec/DMN/20191111/MODEL/}"


def definition_files(bpmn_dir: Path, keys: list[str]) -> list[Path]:
    """The BPMN/DMN files that define ``keys`` (process ids, decision ids); NotFoundError names a missing one."""
    where: dict[str, Path] = {}
    for path in sorted([*bpmn_dir.glob("*.bpmn"), *bpmn_dir.glob("*.dmn")]):
        root = ET.parse(path).getroot()
        for element in (*root.iter(f"{_BPMN}process"), *root.iter(f"{_DMN}decision")):
            if element.get("id"):
                where.setdefault(element.get("id", ""), path)
    missing = [k for k in keys if k not in where]
    if missing:
        raise NotFoundError(f"no definition of {', '.join(missing)} in {bpmn_dir}")
    return sorted({where[k] for k in keys})


def _deploy(client: "EngineClient", bpmn_dir: Path, keys: list[str]) -> ApplyStep:
    result = client.deploy_processes(definition_files(bpmn_dir, keys), name=DEPLOYMENT_NAME, changed_only=True)
    if not result.created:
        return ApplyStep(step="processes", status="unchanged", detail=f"{len(keys)} definitions already deployed")
    keys_made = sorted({d.key for d in result.process_definitions + result.decision_definitions})
    return ApplyStep(step="processes", status="changed", detail=f"deployed {', '.join(keys_made)}")


def _model_tags(registry: "Registry", plan: "Plan", schema: dict[str, Any]) -> ApplyStep:
    from mlflow.exceptions import MlflowException

    from modelops_mlc.plan.schema import SCHEMA_TAG

    name = plan.inputs.model_name
    wanted = {"risk_tier": plan.decisions.risk_tier, "governance_level": plan.inputs.governance_level.value,
              SCHEMA_TAG: json.dumps(schema, sort_keys=True, separators=(",", ":"))}
    client = registry.client
    created = False
    try:
        current = dict(client.get_registered_model(name).tags or {})
    except MlflowException:
        client.create_registered_model(name)
        current, created = {}, True
    differ = {k: v for k, v in wanted.items() if current.get(k) != v}
    for key, value in differ.items():
        client.set_registered_model_tag(name, key, value)
    if not differ:
        return ApplyStep(step="model", status="unchanged",
                         detail=f"{name}: risk_tier {wanted['risk_tier']}, governance_level "
                                f"{wanted['governance_level']}, registry schema already set")
    shown = ", ".join("registry schema" if k == SCHEMA_TAG else f"{k}={v}" for k, v in differ.items())
    return ApplyStep(step="model", status="changed", detail=("created " if created else "") + f"{name}: set {shown}")


def _schedule(client: "EngineClient", plan: "Plan", has_version: bool, kind_name: str) -> ApplyStep | None:
    from modelops_mlc.monitoring import schedules

    d, data, name = plan.decisions, plan.inputs.data, plan.inputs.model_name
    kind = schedules.MONITOR if kind_name == "monitor" else schedules.RETRAIN
    every = d.monitor_every if kind is schedules.MONITOR else d.retrain_every
    step = f"{kind.name} schedule"
    if every is None:
        stale = [s for s in schedules.list_schedules(client, (kind,)) if s.model == name]
        if not stale:
            return None
        try:
            schedules.unschedule(client, name, kind=kind)
        except NotFoundError:  # ended meanwhile (another apply, `mlc monitor unschedule`)
            return ApplyStep(step=step, status="unchanged", detail=f"the plan has no {kind.name} schedule")
        return ApplyStep(step=step, status="changed",
                         detail=f"ended the {' and '.join(s.spec or s.timer for s in stale)} schedule: the plan has "
                                f"no {kind.name} schedule")
    if kind is schedules.MONITOR and not data.current:
        return ApplyStep(step=step, status="skipped", detail="the plan names no data.current for the monitor to read")
    if not has_version:
        return ApplyStep(step=step, status="skipped", detail=f"{name} has no version yet: register one, then apply again")
    files = ({"current_data": data.current, "reference_data": data.reference} if kind is schedules.MONITOR
             else {"training_data": data.training})
    timer = schedules.every_to_cycle(every)
    for existing in schedules.list_schedules(client, (kind,)):
        if existing.model == name and existing.timer == timer and existing.version is None and all(
                getattr(existing, k) == v for k, v in files.items()):
            return ApplyStep(step=step, status="unchanged", detail=f"every {every} ({timer}) already scheduled")
    made = schedules.schedule(client, name, every=every, kind=kind, **files)
    return ApplyStep(step=step, status="changed", detail=f"every {every}; next run {made.next_due}")


def apply_plan(settings: "Settings", directory: Path, bpmn_dir: Path) -> ApplyResult:
    """Apply the plan in ``directory``; each step says whether it changed anything."""
    from modelops_mlc.engine import EngineClient
    from modelops_mlc.registry import Registry

    plan, schema = read_plan(directory)
    registry = Registry(settings)
    steps: list[ApplyStep] = []
    with EngineClient(settings) as client:
        steps.append(_deploy(client, bpmn_dir, plan.decisions.processes))
        steps.append(_model_tags(registry, plan, schema))
        has_version = registry.get_model(plan.inputs.model_name).latest_version is not None
        for kind in ("monitor", "retrain"):
            step = _schedule(client, plan, has_version, kind)
            if step is not None:
                steps.append(step)
    return ApplyResult(model=plan.inputs.model_name, steps=steps)
