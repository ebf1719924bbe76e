"""Secrets never reach process variables, tickets or logs.

A life cycle runs on the secured engine with every secret setting of modelops_mlc/config.py set
to a test value, except the Jira bearer token (MLC_JIRA_BEARER_TOKEN would replace the Jira
token's basic auth this run checks): the engine passwords (the admin's, and the worker's: the
stack's daemons log in as a member of mlc-workers), the engine bearer token and the engine's
JDBC password (set, though unused on a basic-auth engine the stack does not start), the Jira
token, the ServiceNow password and token, the runtime's admin token and the webhook secret. The
`make test` form is a single back test: it fails and opens a Jira ticket on the stand-in. In the
full form (marker ``security``, `make test-security`) the model first goes through
deploy-with-test: a reviewer approves it from the CLI, the deploy worker deploys it online to the
runtime with the admin token. Afterwards the whole run is searched for the secret values: every
log under $MLC_HOME and the engine's log, the CLI's output, the engine's history (variables,
incidents, user operations, external task logs), the stand-in's tickets and the MLC store and
MLflow databases. Any hit fails.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

from modelops_mlc.config import Settings
from modelops_mlc.engine import EngineClient
from tests.conftest import free_port
from tests.e2e.test_mlc_processes import data, end_of, register, submit, waiting_at  # noqa: F401 (data: a fixture)
from tests.integration.security.conftest import ADMIN, ADMIN_PASSWORD, SecureEngine
from tests.support.waiting import wait_for
from tests.unit.tickets.fake_saas import FakeJira

pytestmark = pytest.mark.slow

WORKER, WORKER_PASSWORD = "wendy", "pw-wendy"
SECRETS = {
    "MLC_ENGINE_TOKEN": "engine-token-6c1f0a9e2b",
    "MLC_ENGINE_JDBC_PASSWORD": "engine-jdbc-password-7d3b58",
    "MLC_JIRA_TOKEN": "jira-token-9b7e1c0d5a",
    "MLC_SERVICENOW_PASSWORD": "snow-password-3f6a2e91",
    "MLC_SERVICENOW_TOKEN": "snow-token-c8d04b7f",
    "MLC_RUNTIME_ADMIN_TOKEN": "runtime-admin-token-51e9a7",
    "MLC_WEBHOOK_SECRET": "webhook-secret-0d2c6f83",
}
JIRA_USER = "bot@example.com"


@pytest.fixture
def jira() -> Iterator[FakeJira]:
    fake = FakeJira(user=JIRA_USER, secret=SECRETS["MLC_JIRA_TOKEN"]).start()
    yield fake
    fake.stop()


@pytest.fixture
def secured_stack(secure_engine: SecureEngine, jira: FakeJira, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """`mlc up`'s stack on the secured engine: bpmn/ deployed by the admin, the daemons logged in
    as the worker user, every secret in their environment."""
    from modelops_mlc.stack import Stack

    home = tmp_path / "home"
    env = {
        "MLC_HOME": str(home), "MLC_STORE_URL": f"sqlite:///{home / 'mlc.db'}",
        "MLFLOW_TRACKING_URI": f"sqlite:///{home / 'mlflow.db'}", "MLC_TICKET_WATCH_INTERVAL": "1",
        "MLC_JIRA_URL": jira.url, "MLC_JIRA_PROJECT": "OPS", "MLC_JIRA_USER": JIRA_USER,
        "MLC_SERVICENOW_URL": "http://127.0.0.1:9", "MLC_SERVICENOW_USER": "mlc",
        **secure_engine.env(WORKER, WORKER_PASSWORD), **SECRETS,
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    admin = Settings(engine_user=ADMIN, engine_password=ADMIN_PASSWORD)
    stack = Stack(admin, runtime_port=free_port())
    try:
        parts = stack.up()
        assert all(p.healthy for p in parts), parts
        yield SimpleNamespace(settings=admin, home=home, env=env, runtime_port=stack.runtime_port)
    finally:
        stack.down()


@pytest.mark.parametrize("deploy", [False, pytest.param(True, marks=pytest.mark.security)],
                         ids=["back-test", "deploy-review-back-test"])
def test_a_life_cycle_leaves_no_secret_anywhere(secure_engine: SecureEngine, secured_stack, jira: FakeJira,
                                                data, deploy: bool) -> None:  # noqa: F811
    stack = secured_stack
    outputs: list[str] = []

    with EngineClient(stack.settings) as client:
        name = register(stack, data["good"], data, tag="secrets")
        if deploy:
            outputs += approve_and_deploy(secure_engine, client, stack, name)

        client.signal("mlc.run-back-test", {"MODEL_ID": name, "INPUT_FILE": str(data["paths"]["flipped"]),
                                            "TICKET_SYSTEM": "jira"})
        [back] = wait_for(lambda: client.instances(model_id=name, process_key="mlc-run-back-test"), what="back test")
        assert end_of(client, back.id) == "end_failed"
        assert [i["fields"]["project"]["key"] for i in jira.issues.values()] == ["OPS"]

        history = {kind: client.history(kind) for kind in
                   ("variable-instance", "incident", "user-operation", "external-task-log")}
    # the places searched hold this run: its variables, and Jira's requests (with the token's basic auth)
    assert any(name in json.dumps(v) for v in history["variable-instance"])
    assert any(h.get("Authorization", "").startswith("Basic ") for *_, h in jira.requests)

    places: dict[str, str] = {f"engine history {kind}": json.dumps(rows) for kind, rows in history.items()}
    places["jira tickets"] = json.dumps([jira.issues, jira.comments])
    places["cli output"] = "\n".join(outputs)
    logs = sorted((stack.home / "logs").glob("*.log"))
    assert {p.stem for p in logs} >= {"worker", "runtime", "ticket-watcher"}
    if secure_engine.log_file is not None:
        logs.append(secure_engine.log_file)
    databases = sorted(stack.home.glob("*.db*"))  # the MLC store and MLflow, with their WAL files
    for path in [*logs, *databases]:
        places[str(path)] = path.read_bytes().decode("utf-8", "replace")
    assert name in places[str(stack.home / "logs" / "worker.log")]
    assert any(name in places[str(p)] for p in databases if p.name.startswith("mlc.db"))

    secrets = {**SECRETS, "MLC_ENGINE_PASSWORD (admin)": ADMIN_PASSWORD, "MLC_ENGINE_PASSWORD (worker)": WORKER_PASSWORD}
    hits = [f"{var} in {where}" for var, value in secrets.items() for where, text in places.items() if value in text]
    assert hits == []


def approve_and_deploy(secure_engine: SecureEngine, client: EngineClient, stack, name: str) -> list[str]:
    """Submit the model, approve its review from the CLI as a reviewer, wait until it is deployed
    online; returns the CLI's output."""
    inst = submit(client, name)
    waiting_at(client, inst, "task_review")
    [task] = client.tasks(process_instance_id=inst)
    r = secure_engine.mlc("tasks", "complete", task.id, "--var", "approved=true", "--user", "bob", user="bob",
                          env=stack.env | secure_engine.env("bob"))
    assert r.returncode == 0, r.stderr
    assert end_of(client, inst) == "end_deployed"
    return [r.stdout, r.stderr]
