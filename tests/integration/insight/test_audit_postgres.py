"""The audit log on a PostgreSQL MLC store: rows written with the change, refused by the database
when anyone tries to change or delete them."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select, text

from modelops_mlc.config import Settings
from modelops_mlc.insight.actor import acting_as
from modelops_mlc.insight.audit import audit_entries
from modelops_mlc.runtimes.models import RuntimeRow
from modelops_mlc.store import open_store


def test_audit_rows_on_postgresql_are_append_only(postgres, mlc_env, monkeypatch: pytest.MonkeyPatch) -> None:
    db = postgres.database(f"audit_{uuid.uuid4().hex[:8]}")
    monkeypatch.setenv("MLC_STORE_URL", db.url)
    settings = Settings()
    store = open_store(settings)
    with acting_as("user:dora"):
        with store.session() as s:
            s.add(RuntimeRow(name="pg-qa", tags={"stage": "QA"}))
    with pytest.raises(Exception):
        with store.session() as s:
            s.add(RuntimeRow(name="pg-qa"))  # the unique name refuses it: no row
    [row] = audit_entries(settings)
    assert (row["actor"], row["action"], row["target"], row["after"]["tags"]) == (
        "user:dora", "runtime.create", "pg-qa", {"stage": "QA"})
    for statement in ("UPDATE mlc_audit SET actor = 'x'", "DELETE FROM mlc_audit"):
        with pytest.raises(Exception, match="append-only"):
            with store.engine.begin() as conn:
                conn.execute(text(statement))
    with store.session() as s:
        assert list(s.scalars(select(RuntimeRow.name))) == ["pg-qa"]
    assert [r["actor"] for r in audit_entries(settings)] == ["user:dora"]
    store.dispose()
