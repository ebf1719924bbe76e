"""The audit log on a real sqlite MLC store and a real MLflow registry: a row per change with its
actor, before and after; none for a change that failed or rolled back; rows that cannot be changed."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select, text

from modelops_mlc.errors import MlcError
from modelops_mlc.insight.actor import acting_as, current_actor
from modelops_mlc.insight.audit import AuditRow, audit_entries
from modelops_mlc.runtimes.models import RuntimeRow
from modelops_mlc.store import open_store


def _runtime(store, name: str, **values) -> None:
    with store.session() as s:
        s.add(RuntimeRow(name=name, **values))


def test_store_changes_are_recorded_with_actor_before_and_after(settings) -> None:
    store = open_store(settings)
    with acting_as("user:alice"):
        _runtime(store, "qa", tags={"stage": "QA"})
    with acting_as("worker:w1", process_instance_id="pi-7"):
        with store.session() as s:
            s.scalars(select(RuntimeRow).where(RuntimeRow.name == "qa")).one().tags = {"stage": "PROD"}
    with store.session() as s:
        s.delete(s.scalars(select(RuntimeRow).where(RuntimeRow.name == "qa")).one())

    created, updated, deleted = audit_entries(settings, target_kind="runtime")
    assert (created["actor"], created["action"], created["target"]) == ("user:alice", "runtime.create", "qa")
    assert created["before"] is None and created["after"]["tags"] == {"stage": "QA"}
    assert (updated["actor"], updated["process_instance_id"]) == ("worker:w1", "pi-7")
    assert updated["before"] == {"tags": {"stage": "QA"}} and updated["after"] == {"tags": {"stage": "PROD"}}
    assert deleted["action"] == "runtime.delete" and deleted["before"]["tags"] == {"stage": "PROD"}
    assert deleted["actor"] == current_actor().name


def test_heartbeats_leave_no_row(settings) -> None:
    import datetime as dt

    store = open_store(settings)
    _runtime(store, "served")
    with store.session() as s:
        s.scalars(select(RuntimeRow)).one().last_heartbeat = dt.datetime.now(dt.timezone.utc)
    assert [e["action"] for e in audit_entries(settings)] == ["runtime.create"]


def test_a_change_that_fails_or_rolls_back_leaves_no_row(settings) -> None:
    store = open_store(settings)
    _runtime(store, "qa")
    with pytest.raises(MlcError):  # the unique name refuses the second runtime
        _runtime(store, "qa")
    with pytest.raises(RuntimeError):
        with store.session() as s:
            s.scalars(select(RuntimeRow)).one().tags = {"stage": "PROD"}
            s.flush()  # the audit row is written here, in the transaction that then rolls back
            raise RuntimeError("the command fails after its change")
    assert [e["action"] for e in audit_entries(settings)] == ["runtime.create"]
    with store.session() as s:
        assert s.scalars(select(RuntimeRow)).one().tags == {}


def test_audit_rows_are_append_only(settings) -> None:
    store = open_store(settings)
    _runtime(store, "qa")
    with pytest.raises(MlcError, match="append-only"):
        with store.session() as s:
            s.scalars(select(AuditRow)).one().actor = "someone else"
    for statement in ("UPDATE mlc_audit SET actor = 'x'", "DELETE FROM mlc_audit"):
        with pytest.raises(Exception, match="append-only"):
            with store.engine.begin() as conn:
                conn.execute(text(statement))
    assert [e["actor"] for e in audit_entries(settings)] == [current_actor().name]


def test_registry_changes_are_recorded_once_mlflow_accepted_them(registry, breast_cancer) -> None:
    X, _, model = breast_cancer
    with acting_as("user:bob"):
        v = registry.register("audited", estimator=model, input_example=X.head(3), tags={"risk_tier": "LOW"})
        registry.set_tags(v.ref, {"risk_tier": "HIGH"})
        registry.move_aliases("audited", {"champion": v.version})
        with pytest.raises(MlcError):
            registry.set_tags("audited/99", {"risk_tier": "MEDIUM"})  # no such version: nothing changed
    rows = audit_entries(registry.settings, model_id="audited")
    assert all(r["actor"] == "user:bob" for r in rows)
    assert ("model.register", "audited/1") in [(r["action"], r["target"]) for r in rows]
    tags = [(r["before"], r["after"]) for r in rows if r["action"] == "model.tag" and "risk_tier" in r["after"]]
    assert tags == [({"risk_tier": None}, {"risk_tier": "LOW"}), ({"risk_tier": "LOW"}, {"risk_tier": "HIGH"})]
    [alias] = [r for r in rows if r["action"] == "model.alias"]
    assert alias["before"] == {"champion": None} and alias["after"] == {"champion": "1"}
    assert not any("MEDIUM" in json.dumps(r["after"]) for r in rows)


def test_model_level_tags_are_recorded_like_version_tags(registry) -> None:
    """What `mlc plan apply` does to a model: create it, then tag risk_tier and governance_level."""
    from mlflow.exceptions import MlflowException

    client = registry.client
    with acting_as("user:dana"):
        client.create_registered_model("planned")
        client.set_registered_model_tag("planned", "risk_tier", "HIGH")
        client.set_registered_model_tag("planned", "risk_tier", "HIGH")  # no change: no row
        client.set_registered_model_tag("planned", "governance_level", "production")
        with pytest.raises(MlflowException):
            client.set_registered_model_tag("unplanned", "risk_tier", "LOW")  # no such model: nothing changed
    rows = [(r["actor"], r["action"], r["target"], r["before"], r["after"])
            for r in audit_entries(registry.settings, model_id="planned")]
    assert rows == [
        ("user:dana", "model.create", "planned", None, {"tags": {}}),
        ("user:dana", "model.tag", "planned", {"risk_tier": None}, {"risk_tier": "HIGH"}),
        ("user:dana", "model.tag", "planned", {"governance_level": None}, {"governance_level": "production"}),
    ]
    assert audit_entries(registry.settings, model_id="unplanned") == []


def test_mlc_audit_shows_the_cli_user(run_mlc) -> None:
    r = run_mlc("--user", "carol", "runtime", "add", "batch-qa", "--tag", "stage=QA")
    assert r.returncode == 0, r.stderr
    r = run_mlc("runtime", "add", "batch-qa", "--tag", "stage=QA")  # exists already: refused, no row
    assert r.returncode != 0
    r = run_mlc("audit", "--kind", "runtime", "--json")
    assert r.returncode == 0, r.stderr
    [row] = json.loads(r.stdout)
    assert (row["actor"], row["action"], row["target"]) == ("user:carol", "runtime.create", "batch-qa")
    assert row["after"]["tags"] == {"stage": "QA"}

