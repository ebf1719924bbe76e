"""`mlc webhook` and `mlc up --mlflow-server` on bad input: one line, a non-zero exit, nothing started;
and the parts an MLflow server stack records for `mlc status` and `mlc down`."""

from __future__ import annotations

import json
import sys

import pytest

from modelops_mlc.config import Settings
from modelops_mlc.stack import MLFLOW_LOCAL_DELIVERY, Extras, Stack


def test_register_needs_a_tracking_server_and_a_secret(run_mlc) -> None:
    on_sqlite = run_mlc("webhook", "register", env={"MLC_WEBHOOK_SECRET": "s"})
    assert on_sqlite.returncode == 2
    assert "is not one" in on_sqlite.stderr and "mlc up --mlflow-server" in on_sqlite.stderr
    no_secret = run_mlc("webhook", "register", "--tracking-uri", "http://127.0.0.1:9")
    assert no_secret.returncode == 2 and "MLC_WEBHOOK_SECRET" in no_secret.stderr
    unreachable = run_mlc("webhook", "register", "--tracking-uri", "http://127.0.0.1:9",
                          env={"MLC_WEBHOOK_SECRET": "s"})
    assert unreachable.returncode == 1 and "cannot reach the MLflow server" in unreachable.stderr
    for result in (on_sqlite, no_secret, unreachable):
        assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) <= 2


def test_serve_refuses_to_start_without_a_secret(run_mlc) -> None:
    result = run_mlc("webhook", "serve", "--port", "0")
    assert result.returncode == 2 and "MLC_WEBHOOK_SECRET" in result.stderr


def test_up_with_mlflow_server_checks_before_starting_anything(run_mlc, mlc_home) -> None:
    no_secret = run_mlc("up", "--mlflow-server")
    assert no_secret.returncode == 2 and "MLC_WEBHOOK_SECRET" in no_secret.stderr
    on_a_server = run_mlc("up", "--mlflow-server", env={"MLC_WEBHOOK_SECRET": "s",
                                                        "MLFLOW_TRACKING_URI": "http://127.0.0.1:9"})
    assert on_a_server.returncode == 2 and "already a server" in on_a_server.stderr
    assert not (mlc_home / "run").exists()  # no engine, no daemon, no record


def test_an_mlflow_server_stack_runs_the_server_on_the_registry_database(settings: Settings, monkeypatch) -> None:
    monkeypatch.delenv("MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS", raising=False)
    monkeypatch.delenv("MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY", raising=False)
    stack = Stack(settings, mlflow_server=True)
    daemons = {d.name: d for d in stack.daemons}
    server, receiver, worker = daemons["mlflow-server"], daemons["webhook-receiver"], daemons["worker"]
    assert server.command[:4] == [sys.executable, "-m", "mlflow", "server"]
    assert server.env["MLFLOW_BACKEND_STORE_URI"] == settings.mlflow_tracking_uri
    assert not any(settings.mlflow_tracking_uri in part for part in server.command)  # no password in `ps`
    assert server.env["MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS"] == MLFLOW_LOCAL_DELIVERY["MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS"]
    assert server.env["MLFLOW_WEBHOOK_ALLOWED_SCHEMES"] == "http,https"
    # the key MLflow encrypts webhook secrets with outlives a restart of the server
    key = stack._webhook_encryption_key()
    assert len(key) == 44 and Stack(settings, mlflow_server=True)._webhook_encryption_key() == key
    assert worker.env["MLFLOW_TRACKING_URI"] == f"http://127.0.0.1:{settings.mlflow_port}"  # writes go through it
    assert receiver.args[:2] == ["webhook", "serve"]

    stack.extras.save(settings.home)  # what `mlc up` records: `mlc status` / `mlc down` need no flags
    again = Stack(settings)
    assert [d.name for d in again.daemons][-2:] == ["mlflow-server", "webhook-receiver"]
    assert json.loads(Extras.path(settings.home).read_text())["mlflow_backend"] == settings.mlflow_tracking_uri
    assert again.down() == [] and not Extras.path(settings.home).exists()
    assert [d.name for d in Stack(settings).daemons] == ["worker", "runtime", "ticket-watcher"]


@pytest.mark.parametrize(("backend", "recorded_as"), [
    ("postgresql://mlc:s3cret-pw@127.0.0.1:5432/mlflow", "postgresql://mlc@127.0.0.1:5432/mlflow"),
    # libpq's password parameter
    ("postgresql://mlc@127.0.0.1:5432/mlflow?password=s3cret-pw&sslmode=require",
     "postgresql://mlc@127.0.0.1:5432/mlflow?sslmode=require"),
])
def test_the_recorded_stack_keeps_no_database_password(settings: Settings, backend: str, recorded_as: str) -> None:
    on_postgres = settings.model_copy(update={"mlflow_tracking_uri": backend})
    Stack(on_postgres, mlflow_server=True).extras.save(on_postgres.home)
    recorded = Extras.path(on_postgres.home).read_text()
    assert "s3cret-pw" not in recorded
    assert json.loads(recorded)["mlflow_backend"] == recorded_as
    # the next `mlc up` runs the server on the same database, with the password from its settings
    again = {d.name: d for d in Stack(on_postgres).daemons}
    assert again["mlflow-server"].env["MLFLOW_BACKEND_STORE_URI"] == on_postgres.mlflow_tracking_uri
