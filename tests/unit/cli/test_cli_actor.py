"""Who an `mlc` command acts as: on an engine with basic auth the signed-in engine user, so a
submitter cannot name somebody else (`--user`, MLC_USER) and then approve their own model; the
worker stays a worker; the settings are read only when they matter (a --help needs none)."""

from __future__ import annotations

import json

import pytest

from modelops_mlc.config import Settings
from modelops_mlc.errors import UsageError
from modelops_mlc.insight import actor

AS_ALICE = {"MLC_ENGINE_AUTH": "basic", "MLC_ENGINE_USER": "alice", "MLC_ENGINE_PASSWORD": "pw-alice-7d1"}


@pytest.fixture
def fresh_actor(monkeypatch: pytest.MonkeyPatch):
    """The actor module as a new `mlc` process has it (restored afterwards)."""
    for name, value in (("_default", None), ("_signed_in", lambda: None), ("_lazy_cli_user", False)):
        monkeypatch.setattr(actor, name, value)
    monkeypatch.delenv(actor.ACTOR_ENV, raising=False)
    return actor


class Loads:
    """A settings loader that counts how often it is asked."""

    def __init__(self, **values: str) -> None:
        self.values, self.calls = values, 0

    def __call__(self) -> Settings:
        self.calls += 1
        return Settings(**self.values)


def test_with_basic_auth_the_actor_is_the_signed_in_user_read_when_first_needed(fresh_actor, tmp_path) -> None:
    loads = Loads(home=str(tmp_path), engine_auth="basic", engine_user="alice")
    fresh_actor.cli_actor("runtime", None, loads)
    assert loads.calls == 0  # nothing acted yet: no settings read
    assert fresh_actor.current_actor().name == "user:alice"
    assert fresh_actor.cli_user(None, "submit a model") == "alice"
    assert fresh_actor.cli_user("ALICE") == "alice" and loads.calls == 1


def test_with_basic_auth_another_user_is_refused(fresh_actor, tmp_path) -> None:
    loads = Loads(home=str(tmp_path), engine_auth="basic", engine_user="alice")
    with pytest.raises(UsageError, match="signed in to the engine as alice: you cannot act as bob"):
        fresh_actor.cli_actor("model", "bob", loads)
    assert loads.calls == 1  # a --user is checked before the command runs
    with pytest.raises(UsageError, match="you cannot complete a task as bob"):
        fresh_actor.cli_user("bob", "complete a task")


def test_without_engine_auth_the_user_names_the_actor(fresh_actor, tmp_path) -> None:
    fresh_actor.cli_actor("model", "bob", Loads(home=str(tmp_path)))
    assert fresh_actor.current_actor().name == "user:bob" and fresh_actor.cli_user() == "bob"
    assert fresh_actor.cli_user("carol") == "carol"
    with pytest.raises(UsageError, match="--user must not be empty"):
        fresh_actor.cli_user(" ")


def test_the_worker_stays_a_worker_without_reading_settings(fresh_actor) -> None:
    def broken() -> Settings:
        raise AssertionError("the worker's actor needs no settings")

    fresh_actor.cli_actor("worker", "bob", broken)
    assert fresh_actor.current_actor().name.startswith("worker:")


def test_a_snapshot_under_basic_auth_cannot_name_another_submitter(run_mlc) -> None:
    for args, env in ((["--user", "bob", "model", "snapshot", "churn", "--no-signal"], AS_ALICE),
                      (["model", "snapshot", "churn", "--no-signal", "--user", "bob"], AS_ALICE),
                      (["model", "snapshot", "churn", "--no-signal"], {**AS_ALICE, "MLC_USER": "bob"})):
        r = run_mlc(*args, env=env)
        assert r.returncode == 2, r.stderr
        assert "signed in to the engine as alice" in r.stderr and "as bob" in r.stderr
        assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) <= 2


def test_the_audit_log_names_the_signed_in_user(run_mlc) -> None:
    assert run_mlc("runtime", "add", "batch-qa", "--tag", "stage=QA", env=AS_ALICE).returncode == 0
    r = run_mlc("audit", "--kind", "runtime", "--json")
    assert r.returncode == 0, r.stderr
    [row] = json.loads(r.stdout)
    assert (row["actor"], row["action"]) == ("user:alice", "runtime.create")


def test_help_needs_no_settings(run_mlc) -> None:
    bad = {"MLC_ENGINE_AUTH": "kerberos", "MLC_USER": "bob"}
    for args in (["--help"], ["--user", "bob", "model", "snapshot", "--help"], ["tasks", "complete", "--help"]):
        r = run_mlc(*args, env=bad)
        assert r.returncode == 0 and "Usage" in r.stdout, r.stderr
    r = run_mlc("--user", "bob", "runtime", "list", env=bad)  # a command that reads them still says what is wrong
    assert r.returncode == 2 and "invalid setting engine_auth" in r.stderr and "Traceback" not in r.stderr
