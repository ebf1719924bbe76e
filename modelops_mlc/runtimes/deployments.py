"""Deployments: a model version put on a runtime, batch or online, with canary, promote and rollback.

* **Batch** (runtime without endpoints): the version becomes the active batch deployment for its
  service tag and stage — what the Run Batch Model Job process looks up with :meth:`active_batch`.
* **Online**: the runtime's server loads the version (told through its admin API, or on its own
  reconcile loop), a smoke request built from the input example or the signature must pass, and
  only then is the deployment ``deployed``. A traffic weight below 100 makes it a canary beside
  the versions already serving; :meth:`promote` moves it to 100 and retires the others,
  :meth:`rollback` returns to the previous version at 100. Every step is recorded as an event.
* **Shadow** (online, ``shadow=True``): the version gets a copy of the live traffic of the versions
  serving beside it and answers none of it; its predictions go to the prediction log with role
  ``shadow`` (:meth:`FeedbackStore.compare <modelops_mlc.runtimes.feedback.FeedbackStore.compare>`).
  Canary, promote and rollback leave shadows alone; a new shadow replaces the model's previous one
  on that runtime, a primary deployment of the same version ends it, and :meth:`retire_shadow` ends it.

The endpoint of an active online deployment follows its runtime: it is derived from the address
the runtime registered last (``mlc runtime serve`` on another port moves it); a deployment that
ended keeps the endpoint it had.
"""

from __future__ import annotations

import builtins
import datetime as dt
import logging
import math
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from modelops_mlc.errors import DeployFailedError, MlcError, NotFoundError, RuntimeServiceError, UsageError
from modelops_mlc.insight.actor import actor_name, current_actor
from modelops_mlc.runtimes.matching import find_runtime
from modelops_mlc.runtimes.models import DeploymentEventRow, DeploymentRow, DeploymentShadowRow, RuntimeRow
from modelops_mlc.runtimes.catalog import RuntimeCatalog, as_utc
from modelops_mlc.store import open_store, utcnow

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from modelops_mlc.config import Settings
    from modelops_mlc.runtimes.modelinfo import ModelVersionInfo

__all__ = ["Deployment", "DeploymentEvent", "DeploymentManager"]

log = logging.getLogger(__name__)

DeploymentState = Literal["deploying", "deployed", "failed", "retired"]
ACTIVE = ("deploying", "deployed")


class Deployment(BaseModel):
    """One deployment record."""

    id: int
    model_name: str
    model_version: str
    model_tag: str | None = None
    stage: str | None = None
    runtime: str
    mode: Literal["batch", "online"]
    state: DeploymentState
    traffic_weight: int
    shadow: bool = False
    endpoint: str | None = None
    flavor: str | None = None
    requested_by: str
    process_instance_id: str | None = None
    message: str | None = None
    created_at: dt.datetime
    updated_at: dt.datetime

    @classmethod
    def from_row(cls, row: DeploymentRow, *, shadow: bool = False,
                 runtime_endpoints: dict[str, list[str]] | None = None) -> "Deployment":
        """``runtime_endpoints`` (runtime name -> its endpoints now) gives an active online deployment
        the endpoint its runtime has now."""
        endpoint = row.endpoint
        current = (runtime_endpoints or {}).get(row.runtime)
        if current and row.mode == "online" and row.state in ACTIVE:
            endpoint = model_endpoint(current[0], row.model_name)
        return cls(
            id=row.id, model_name=row.model_name, model_version=row.model_version, model_tag=row.model_tag,
            stage=row.stage, runtime=row.runtime, mode=row.mode, state=row.state,  # type: ignore[arg-type]
            traffic_weight=row.traffic_weight, shadow=shadow, endpoint=endpoint, flavor=row.flavor,
            requested_by=row.requested_by, process_instance_id=row.process_instance_id, message=row.message,
            created_at=as_utc(row.created_at), updated_at=as_utc(row.updated_at),  # type: ignore[arg-type]
        )


class DeploymentEvent(BaseModel):
    deployment_id: int
    action: str
    detail: str | None
    actor: str
    at: dt.datetime


def model_endpoint(runtime_endpoint: str, model_name: str) -> str:
    """Where a model answers V2 requests on a runtime."""
    return f"{runtime_endpoint}/v2/models/{model_name}"


def _runtime_endpoints(s: "Session", names: "set[str]") -> dict[str, list[str]]:
    """The endpoints each named runtime registered last."""
    rows = s.execute(select(RuntimeRow.name, RuntimeRow.endpoints).where(RuntimeRow.name.in_(names)))
    return {str(name): list(endpoints or []) for name, endpoints in rows}


def _not_shadow():  # type: ignore[no-untyped-def]
    """Where-clause: the deployment is not a shadow."""
    return DeploymentRow.id.not_in(select(DeploymentShadowRow.deployment_id))


def _is_shadow(s: "Session", dep_id: int) -> bool:
    return s.get(DeploymentShadowRow, dep_id) is not None


def _event(s: "Session", row: DeploymentRow, action: str, detail: str | None, actor: str) -> None:
    s.add(DeploymentEventRow(deployment_id=row.id, model_name=row.model_name, action=action, detail=detail,
                             actor=actor, at=utcnow()))


class DeploymentManager:
    """Creates and changes deployments; the runtimes follow the records."""

    def __init__(self, settings: "Settings") -> None:
        self.settings = settings
        self.store = open_store(settings)

    # -- deploy -------------------------------------------------------------------------------
    def deploy(
        self,
        model_name: str,
        version: str | int | None = None,
        stage: str = "QA",
        *,
        traffic_weight: int = 100,
        requested_by: str | None = None,
        dedupe_key: str | None = None,
        process_instance_id: str | None = None,
        shadow: bool = False,
    ) -> Deployment:
        """Deploy a model version to the runtime chosen by its service tag and ``stage``.

        ``shadow`` deploys it beside the versions serving there without any of their traffic: it
        predicts a copy of their live requests, which are logged, and answers none.

        ``requested_by`` (default: the current actor, ``user:alice`` or ``worker:<id>``, as the audit log
        names it) is kept with the deployment and its events.
        ``process_instance_id`` records which process made it. Idempotent by ``dedupe_key`` (the
        deploy task: process instance and activity) for a model version and stage: a
        second call returns the deployment the first made (finishing it if it was interrupted,
        raising DeployFailedError again if it failed).
        """
        from modelops_mlc.runtimes.modelinfo import describe_version, resolve_version

        requested_by = actor_name(requested_by)
        traffic_weight = _weight(traffic_weight)
        stage = (stage or "QA").strip()
        name, ver = resolve_version(self.settings, model_name, version)

        if dedupe_key:
            existing = self._deduped(dedupe_key, name, ver, stage)
            if existing is not None:
                return self._again(existing, requested_by)

        info = describe_version(self.settings, name, ver)
        match = find_runtime(self.settings, info.service_tag, stage, info.flavors)
        rt = match.runtime
        if shadow:
            self._check_shadow(name, ver, rt.name, match.mode)
        flavor = next((f for f in rt.flavors if f in info.flavors), None) or (
            "python_function" if "python_function" in info.flavors else (info.flavors[0] if info.flavors else None)
        )
        try:
            with self.store.session() as s:
                row = DeploymentRow(
                    model_name=name, model_version=ver, model_tag=info.service_tag, stage=stage, runtime=rt.name,
                    mode=match.mode, state="deploying",
                    traffic_weight=0 if shadow else traffic_weight if match.mode == "online" else 100,
                    endpoint=model_endpoint(rt.endpoints[0], name) if rt.endpoints else None, flavor=flavor,
                    requested_by=requested_by, process_instance_id=process_instance_id, dedupe_key=dedupe_key,
                )
                s.add(row)
                s.flush()
                if shadow:
                    s.add(DeploymentShadowRow(deployment_id=row.id))
                _event(s, row, "deploy", f"shadow: {match.explanation}" if shadow else match.explanation, requested_by)
                dep_id = row.id
        except MlcError as exc:
            # a second delivery of the same task raced us to the insert: its deployment is ours
            existing = self._deduped(dedupe_key, name, ver, stage) if dedupe_key else None
            if existing is None or not isinstance(exc.__cause__, IntegrityError):
                raise
            return self._again(existing, requested_by)
        log.info("deployment %s: %s/%s -> %s (%s)", dep_id, name, ver, rt.name, match.mode)
        return self._finish(dep_id, info, requested_by)

    def _check_shadow(self, name: str, version: str, runtime: str, mode: str) -> None:
        """A shadow needs an online runtime where another version of the model serves."""
        if mode != "online":
            raise UsageError(f"a shadow needs an online runtime: {runtime} is a batch runtime")
        with self.store.session() as s:
            serving = set(s.scalars(select(DeploymentRow.model_version).where(
                DeploymentRow.model_name == name, DeploymentRow.runtime == runtime,
                DeploymentRow.state == "deployed", _not_shadow())))
        if not serving:
            raise UsageError(f"model {name!r} has no version serving on runtime {runtime} to shadow",
                             hint="deploy the champion first")
        if serving == {version}:
            raise UsageError(f"version {version} of {name!r} already serves on runtime {runtime}: "
                             "a shadow must be another version")

    def _deduped(self, key: str, name: str, version: str, stage: str) -> Deployment | None:
        with self.store.session() as s:
            row = s.scalar(
                select(DeploymentRow).where(
                    DeploymentRow.dedupe_key == key, DeploymentRow.model_name == name,
                    DeploymentRow.model_version == version, DeploymentRow.stage == stage,
                )
            )
            return Deployment.from_row(row, shadow=_is_shadow(s, row.id)) if row is not None else None

    def _again(self, existing: Deployment, actor: str) -> Deployment:
        """What a repeated deploy call for the same process instance gets: the first call's outcome."""
        from modelops_mlc.runtimes.modelinfo import describe_version

        if existing.state == "failed":
            raise DeployFailedError(existing.message or f"deployment {existing.id} failed")
        if existing.state in ("deployed", "retired"):
            return self.get(existing.id)  # with the endpoint its runtime has now
        log.info("resuming deployment %s of %s/%s", existing.id, existing.model_name, existing.model_version)
        return self._finish(existing.id, describe_version(self.settings, existing.model_name, existing.model_version),
                            actor)

    def _finish(self, dep_id: int, info: "ModelVersionInfo", actor: str) -> Deployment:
        dep = self.get(dep_id)
        note = None
        if dep.mode == "online":
            try:
                note = self._bring_online(dep, info)
            except DeployFailedError as exc:
                self._fail(dep_id, exc.message, actor)
                raise
            except Exception as exc:  # a bug or an unexpected answer: still a recorded failure
                self._fail(dep_id, f"{type(exc).__name__}: {exc}", actor)
                raise DeployFailedError(f"deployment {dep_id} failed: {type(exc).__name__}: {exc}") from exc
        with self.store.session() as s:
            row = s.get(DeploymentRow, dep_id)
            assert row is not None
            beside = list(
                s.scalars(
                    select(DeploymentRow).where(
                        DeploymentRow.model_name == row.model_name, DeploymentRow.runtime == row.runtime,
                        DeploymentRow.mode == row.mode, DeploymentRow.state == "deployed", DeploymentRow.id != row.id,
                    )
                )
            )
            shadows = [o for o in beside if _is_shadow(s, o.id)]
            others = [o for o in beside if o not in shadows]
            if dep.shadow:
                for old in shadows:  # one shadow per model and runtime
                    old.state = "retired"
                    _event(s, old, "retire", f"replaced by shadow {row.id} (version {row.model_version})", actor)
                note = _join(note, f"shadow of version {', '.join(o.model_version for o in others) or 'none'}")
            else:
                for old in shadows:
                    if old.model_version == row.model_version:  # the shadowed version now serves for real
                        old.state = "retired"
                        _event(s, old, "retire", f"version {row.model_version} serves in deployment {row.id}", actor)
                note = _place(s, row, others, note, actor)
            row.state = "deployed"
            row.message = note
            _event(s, row, "deployed", note or f"traffic {row.traffic_weight}%", actor)
        self._notify(dep.runtime)
        if dep.mode == "online" and not dep.shadow:
            self._wait_serving(dep)
        return self.get(dep_id)

    def _wait_serving(self, dep: Deployment) -> None:
        """Return once the runtime routes requests for the model, so 'deployed' means answering.

        The server picks the new state up on its next reconcile (at once with the admin token); a
        server of several processes is ready once every one of them has loaded the version.
        """
        from modelops_mlc.runtimes.client import RuntimeClient

        rt = RuntimeCatalog(self.settings).get(dep.runtime)
        wait = max(self.settings.runtime_reconcile_interval * 3 + 5, self.settings.runtime_deploy_timeout)
        for endpoint in rt.endpoints:
            with RuntimeClient(rt.name, endpoint, None, timeout=wait, settings=self.settings) as client:
                if not client.wait_serving(dep.model_name, wait):
                    log.warning("runtime %s does not route %s yet after %.0f s", rt.name, dep.model_name, wait)

    def _bring_online(self, dep: Deployment, info: "ModelVersionInfo") -> str | None:
        """Have the runtime load the version, then pass a smoke request; returns a note or raises."""
        from modelops_mlc.runtimes.client import (
            SMOKE_HEADER,
            AdminUnavailable,
            RuntimeClient,
            response_reason,
            v2_payload,
        )
        from modelops_mlc.runtimes.modelinfo import example_rows

        rt = RuntimeCatalog(self.settings).get(dep.runtime)
        if not rt.endpoints:
            raise DeployFailedError(f"runtime {rt.name} has no endpoint to deploy to")
        token = self.settings.runtime_admin_token.get_secret_value() if self.settings.runtime_admin_token else None
        example = example_rows(info)
        note = None if example else "smoke request skipped: the model has no signature or input example"
        timeout = self.settings.runtime_deploy_timeout
        for endpoint in rt.endpoints:
            with RuntimeClient(rt.name, endpoint, token, timeout=timeout, settings=self.settings) as client:
                try:
                    client.load(dep.id)
                except AdminUnavailable:
                    client.wait_ready(dep.model_name, dep.model_version, timeout)
                if example is None:
                    continue
                resp = client.infer_v2(dep.model_name, dep.model_version, v2_payload(example),
                                       headers={SMOKE_HEADER: "1"})
                if resp.status_code != 200:
                    raise DeployFailedError(
                        f"smoke request to {dep.model_name}/{dep.model_version} on runtime {rt.name} failed "
                        f"({resp.status_code}): {response_reason(resp)}"
                    )
                outputs = resp.json().get("outputs") or []
                rows = len(example["data"])
                if not outputs or (outputs[0].get("shape") or [None])[0] != rows:
                    raise DeployFailedError(
                        f"smoke request to {dep.model_name}/{dep.model_version} on runtime {rt.name} returned "
                        f"no predictions for {rows} rows"
                    )
        return note

    def _fail(self, dep_id: int, message: str, actor: str) -> None:
        with self.store.session() as s:
            row = s.get(DeploymentRow, dep_id)
            if row is not None:
                row.state = "failed"
                row.message = message
                _event(s, row, "failed", message, actor)
        self._notify_quietly(dep_id)

    def _notify_quietly(self, dep_id: int) -> None:
        try:
            self._notify(self.get(dep_id).runtime)
        except Exception as exc:  # a failed deploy must report its own cause, not this one
            log.debug("cannot notify runtime of deployment %s: %s", dep_id, exc)

    def _notify(self, runtime: str) -> None:
        """Tell an online runtime to reconcile now (it also polls the store by itself)."""
        from modelops_mlc.runtimes.client import RuntimeClient

        token = self.settings.runtime_admin_token.get_secret_value() if self.settings.runtime_admin_token else None
        if not token:
            return
        try:
            rt = RuntimeCatalog(self.settings).get(runtime)
        except NotFoundError:
            return
        for endpoint in rt.endpoints:
            with RuntimeClient(rt.name, endpoint, token, timeout=self.settings.runtime_deploy_timeout,
                               settings=self.settings) as client:
                if not client.reconcile():
                    log.info("runtime %s at %s did not take the reconcile call; it will catch up", rt.name, endpoint)

    # -- queries ------------------------------------------------------------------------------
    def get(self, deployment_id: int) -> Deployment:
        with self.store.session() as s:
            row = s.get(DeploymentRow, int(deployment_id))
            if row is None:
                raise NotFoundError(f"no deployment with id {deployment_id}")
            return Deployment.from_row(row, shadow=_is_shadow(s, row.id),
                                       runtime_endpoints=_runtime_endpoints(s, {row.runtime}))

    def list(
        self,
        model: str | None = None,
        *,
        runtime: str | None = None,
        state: str | None = None,
        active_only: bool = False,
    ) -> builtins.list[Deployment]:
        """Deployments, oldest first, optionally of one model / runtime / state."""
        q = select(DeploymentRow).order_by(DeploymentRow.id)
        if model:
            q = q.where(DeploymentRow.model_name == model)
        if runtime:
            q = q.where(DeploymentRow.runtime == runtime)
        if state:
            q = q.where(DeploymentRow.state == state)
        if active_only:
            q = q.where(DeploymentRow.state.in_(ACTIVE))
        with self.store.session() as s:
            shadows = set(s.scalars(select(DeploymentShadowRow.deployment_id)))
            rows = list(s.scalars(q))
            endpoints = _runtime_endpoints(s, {r.runtime for r in rows})
            return [Deployment.from_row(r, shadow=r.id in shadows, runtime_endpoints=endpoints) for r in rows]

    def events(self, deployment_id: int | None = None, *, model: str | None = None) -> builtins.list[DeploymentEvent]:
        q = select(DeploymentEventRow).order_by(DeploymentEventRow.id)
        if deployment_id is not None:
            q = q.where(DeploymentEventRow.deployment_id == int(deployment_id))
        if model:
            q = q.where(DeploymentEventRow.model_name == model)
        with self.store.session() as s:
            return [
                DeploymentEvent(deployment_id=e.deployment_id, action=e.action, detail=e.detail, actor=e.actor,
                                at=as_utc(e.at))  # type: ignore[arg-type]
                for e in s.scalars(q)
            ]

    def active_batch(self, tag: str, stage: str | None = None) -> Deployment | None:
        """The most recent batch deployment in deployed state for a model service tag (and stage)."""
        q = select(DeploymentRow).where(
            DeploymentRow.mode == "batch", DeploymentRow.state == "deployed", DeploymentRow.model_tag == tag
        )
        if stage:
            q = q.where(DeploymentRow.stage == stage)
        with self.store.session() as s:
            row = s.scalar(q.order_by(DeploymentRow.created_at.desc(), DeploymentRow.id.desc()).limit(1))
            return Deployment.from_row(row) if row is not None else None

    # -- canary, promote, rollback ------------------------------------------------------------
    def _serving(self, s: "Session", model_name: str, runtime: str | None) -> dict[str, builtins.list[DeploymentRow]]:
        q = select(DeploymentRow).where(DeploymentRow.model_name == model_name, DeploymentRow.state == "deployed",
                                        _not_shadow())
        if runtime:
            q = q.where(DeploymentRow.runtime == runtime)
        groups: dict[str, builtins.list[DeploymentRow]] = {}
        for row in s.scalars(q.order_by(DeploymentRow.id)):
            groups.setdefault(row.runtime, []).append(row)
        return groups

    def promote(self, model_name: str, *, runtime: str | None = None, actor: str | None = None) -> builtins.list[Deployment]:
        """Move the newest version of a canary to 100% and retire the versions beside it."""
        actor = actor_name(actor)
        promoted: builtins.list[int] = []
        with self.store.session() as s:
            groups = self._serving(s, model_name, runtime)
            if not groups:
                raise NotFoundError(f"model {model_name!r} has no deployed version" + (f" on {runtime}" if runtime else ""))
            for rows in groups.values():
                newest = rows[-1]
                if len(rows) == 1 and newest.traffic_weight >= 100:
                    continue
                for old in rows[:-1]:
                    old.state = "retired"
                    _event(s, old, "retire", f"promoted deployment {newest.id} (version {newest.model_version})", actor)
                newest.traffic_weight = 100
                _event(s, newest, "promote", f"version {newest.model_version} at 100%", actor)
                promoted.append(newest.id)
            if not promoted:
                raise UsageError(f"model {model_name!r} has no canary to promote: one version already serves 100%")
            runtimes = {s.get(DeploymentRow, i).runtime for i in promoted}  # type: ignore[union-attr]
        for rt in runtimes:
            self._notify_safely(rt)
        return [self.get(i) for i in promoted]

    def rollback(self, model_name: str, *, runtime: str | None = None, actor: str | None = None) -> builtins.list[Deployment]:
        """Retire the newest deployed version and return to the previous one at 100%.

        Applies on every runtime (or only ``runtime``) where the model has a previous version:
        a canary is retired and the version beside it gets 100%; a sole version is replaced by a
        new deployment of the version it replaced (loaded and smoke-tested like any deployment).
        """
        actor = actor_name(actor)
        results: builtins.list[Deployment] = []
        with self.store.session() as s:
            groups = self._serving(s, model_name, runtime)
            if not groups:
                raise NotFoundError(f"model {model_name!r} has no deployed version" + (f" on {runtime}" if runtime else ""))
            plans: builtins.list[tuple[int, int | None, int | None]] = []  # (current, remaining, revive)
            reasons: dict[str, str] = {}
            for rt_name, rows in groups.items():
                current = rows[-1]
                if len(rows) > 1:
                    plans.append((current.id, rows[-2].id, None))
                    continue
                previous = s.scalar(
                    select(DeploymentRow)
                    .where(DeploymentRow.model_name == model_name, DeploymentRow.runtime == rt_name,
                           DeploymentRow.mode == current.mode, DeploymentRow.state == "retired",
                           DeploymentRow.model_version != current.model_version, DeploymentRow.id < current.id)
                    .order_by(DeploymentRow.id.desc())
                    .limit(1)
                )
                if previous is None:
                    reasons[rt_name] = f"version {current.model_version} is the only one deployed there"
                    continue
                plans.append((current.id, None, previous.id))
            if not plans:
                listed = "; ".join(f"{rt}: {why}" for rt, why in reasons.items())
                raise RuntimeServiceError(f"model {model_name!r} has no previous version to roll back to ({listed})")

        for current_id, remaining_id, revive_id in plans:
            if revive_id is None:
                with self.store.session() as s:
                    current = s.get(DeploymentRow, current_id)
                    assert current is not None
                    serving = [r for r in self._serving(s, model_name, current.runtime)[current.runtime]
                               if r.id != current_id]
                    current.state = "retired"
                    _event(s, current, "rollback", "rolled back: canary retired", actor)
                    _share(serving, 100)
                    for r in serving:
                        _event(s, r, "rollback", f"traffic back to {r.traffic_weight}%", actor)
                    rt_name = current.runtime
                self._notify_safely(rt_name)
                results.extend(self.get(r.id) for r in serving)
            else:
                results.append(self._revive(current_id, revive_id, actor))
        return results

    def _revive(self, current_id: int, previous_id: int, actor: str) -> Deployment:
        """Deploy the previous version again (a new record), then retire the current one."""
        from modelops_mlc.runtimes.modelinfo import describe_version

        prev = self.get(previous_id)
        with self.store.session() as s:
            row = DeploymentRow(
                model_name=prev.model_name, model_version=prev.model_version, model_tag=prev.model_tag,
                stage=prev.stage, runtime=prev.runtime, mode=prev.mode, state="deploying", traffic_weight=100,
                endpoint=prev.endpoint, flavor=prev.flavor, requested_by=actor,
                process_instance_id=current_actor().process_instance_id,  # the rollout that rolls back, if any
            )
            s.add(row)
            s.flush()
            _event(s, row, "rollback", f"rollback from deployment {current_id} to version {prev.model_version}", actor)
            new_id = row.id
        info = describe_version(self.settings, prev.model_name, prev.model_version)
        return self._finish(new_id, info, actor)  # _finish retires the current version (weight 100)

    def retire_shadow(self, deployment_id: int, *, actor: str | None = None) -> Deployment:
        """End a shadow deployment: the runtime stops mirroring traffic to it (its log stays)."""
        actor = actor_name(actor)
        with self.store.session() as s:
            row = s.get(DeploymentRow, int(deployment_id))
            if row is None:
                raise NotFoundError(f"no deployment with id {deployment_id}")
            if not _is_shadow(s, row.id):
                raise UsageError(f"deployment {row.id} is not a shadow",
                                 hint="primary versions change with `mlc deployment promote` or `rollback`")
            if row.state in ACTIVE:
                row.state = "retired"
                _event(s, row, "retire", "shadow ended", actor)
            runtime = row.runtime
        self._notify_safely(runtime)
        return self.get(deployment_id)

    def _notify_safely(self, runtime: str) -> None:
        try:
            self._notify(runtime)
        except Exception as exc:
            log.info("runtime %s was not told to reconcile: %s", runtime, exc)


def _place(s: "Session", row: DeploymentRow, others: builtins.list[DeploymentRow], note: str | None,
           actor: str) -> str | None:
    """Give a primary deployment its traffic: all of it (retiring ``others``), or its canary share beside them."""
    if row.mode == "batch" or row.traffic_weight >= 100 or not others:
        if row.mode == "online" and row.traffic_weight < 100:
            note = _join(note, f"no other version serves: weight {row.traffic_weight} -> 100")
        row.traffic_weight = 100
        for other in others:
            other.state = "retired"
            _event(s, other, "retire", f"replaced by deployment {row.id} (version {row.model_version})", actor)
    else:
        _share(others, 100 - row.traffic_weight)
        for other in others:
            _event(s, other, "weight", f"traffic {other.traffic_weight}% beside canary {row.id}", actor)
    return note


def _share(rows: builtins.list[DeploymentRow], total: int) -> None:
    """Scale the weights of ``rows`` so they add up to ``total`` (largest remainder keeps the sum)."""
    if not rows:
        return
    current = [max(0, r.traffic_weight) for r in rows]
    base = sum(current) or len(rows)
    shares = [(c if sum(current) else 1) * total / base for c in current]
    floors = [int(x) for x in shares]
    left = total - sum(floors)
    order = sorted(range(len(rows)), key=lambda i: shares[i] - floors[i], reverse=True)
    for i in order[:left]:
        floors[i] += 1
    for r, w in zip(rows, floors):
        r.traffic_weight = w


def _weight(value: object) -> int:
    """A traffic percent from a flag or a process variable (int, integral float or digits)."""
    try:
        number = float(value) if not isinstance(value, bool) else math.nan  # type: ignore[arg-type]
    except (TypeError, ValueError):
        number = math.nan
    if not math.isfinite(number) or number != int(number) or not 0 <= number <= 100:
        raise UsageError(f"traffic weight must be a whole percent from 0 to 100, got {value!r}")
    return int(number)


def _join(a: str | None, b: str) -> str:
    return f"{a}; {b}" if a else b
