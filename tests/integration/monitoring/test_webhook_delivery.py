"""The real `mlc webhook serve` on loopback: a delivery signed with the secret starts the process
the model's tag names, a badly signed one is refused with 401 and starts nothing; and a real
`mlflow server` delivers the webhook `mlc webhook register` created when a model version is
created through it (the webhook made by `register`, what `mlc webhook register` calls)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from modelops_mlc.config import Settings
from modelops_mlc.engine import EngineClient
from modelops_mlc.monitoring.webhooks import (
    DELIVERY_HEADER,
    EVENT_TAGS,
    PATH,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    register,
    sign,
)
from tests.integration.monitoring.conftest import wait_for
from tests.conftest import free_port, mlc_command

BPMN = Path(__file__).resolve().parents[2] / "data" / "webhook_target.bpmn"
PROCESS = "test-webhook-target"  # a signal start event only, then the end
SECRET = "whsec-integration-81c2"


def answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def start_mlflow_server(home: Path, env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    """A real `mlflow server` on the installation's registry database, allowed to deliver to loopback."""
    server_env = {**env, "MLFLOW_WEBHOOK_ALLOWED_SCHEMES": "http,https", "MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS": "true"}
    from cryptography.fernet import Fernet

    server_env["MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY"] = Fernet.generate_key().decode()
    (home / "artifacts").mkdir()
    with (home / "mlflow-server.log").open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", env["MLFLOW_TRACKING_URI"],
             "--default-artifact-root", (home / "artifacts").as_uri(), "--no-serve-artifacts", "--host", "127.0.0.1",
             "--port", str(port), "--workers", "1"], env=server_env, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True)


@pytest.fixture(scope="module")
def installation(engine: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A home on the session's engine with `mlc webhook serve` and `mlflow server` running in it
    (started together: each takes seconds to import MLflow)."""
    home = tmp_path_factory.mktemp("webhook-home")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLC_", "MLFLOW_"))}
    env.update({"MLC_HOME": str(home), "MLC_ENGINE_URL": engine.url, "MLC_ENGINE_AUTH": "none",
                "MLC_STORE_URL": f"sqlite:///{home / 'mlc.db'}", "MLFLOW_TRACKING_URI": f"sqlite:///{home / 'mlflow.db'}",
                "MLC_WEBHOOK_SECRET": SECRET, "MLC_WEBHOOK_PORT": str(free_port()), "COLUMNS": "200"})
    settings = Settings(home=home, engine_url=engine.url, mlflow_tracking_uri=env["MLFLOW_TRACKING_URI"])
    with EngineClient(settings) as client:
        client.deploy_processes([BPMN], name="mlc-test-triggers")
    from mlflow import MlflowClient  # create the registry's tables before the servers open it

    MlflowClient(env["MLFLOW_TRACKING_URI"], registry_uri=env["MLFLOW_TRACKING_URI"]).search_registered_models()
    log = home / "receiver.log"
    with log.open("wb") as out:
        receiver = subprocess.Popen([*mlc_command(), "webhook", "serve", "--log-format", "json"], env=env,
                                    stdout=out, stderr=subprocess.STDOUT)
    mlflow_port = free_port()
    server = start_mlflow_server(home, env, mlflow_port)
    base, mlflow_url = f"http://127.0.0.1:{env['MLC_WEBHOOK_PORT']}", f"http://127.0.0.1:{mlflow_port}"
    try:
        wait_for(lambda: answers(f"{base}/health") or receiver.poll() is not None, what="the receiver to answer",
                 interval=0.2, timeout=120)
        assert receiver.poll() is None, log.read_text()
        wait_for(lambda: answers(f"{mlflow_url}/health") or server.poll() is not None, what="mlflow server to answer",
                 interval=0.2, timeout=120)
        assert server.poll() is None, (home / "mlflow-server.log").read_text()[-2000:]
        yield {"home": home, "env": env, "settings": settings, "url": base + PATH, "log": log,
               "mlflow_server": mlflow_url}
    finally:
        receiver.send_signal(signal.SIGTERM)
        os.killpg(server.pid, signal.SIGTERM)
        receiver.wait(30)
        server.wait(30)
    assert SECRET not in log.read_text()


@pytest.fixture(scope="module")
def client(installation) -> Iterator[EngineClient]:
    with EngineClient(installation["settings"]) as c:
        yield c


def started(client: EngineClient, model: str) -> list[str]:
    return [i.id for i in client.instances(process_key=PROCESS, variables={"MODEL_ID": model})]


def post(url: str, body: bytes, secret: str) -> httpx.Response:
    delivery_id, timestamp = str(uuid.uuid4()), str(int(time.time()))
    return httpx.post(url, content=body, timeout=30, headers={
        "Content-Type": "application/json", DELIVERY_HEADER: delivery_id, TIMESTAMP_HEADER: timestamp,
        SIGNATURE_HEADER: sign(secret, delivery_id, timestamp, body)})


def test_signed_starts_the_process_and_badly_signed_is_refused(installation, client) -> None:
    from mlflow import MlflowClient

    name = f"fraud-{uuid.uuid4().hex[:8]}"
    uri = installation["env"]["MLFLOW_TRACKING_URI"]
    MlflowClient(uri, registry_uri=uri).create_registered_model(
        name, tags={EVENT_TAGS["model_version.created"]: PROCESS})
    body = (b'{"entity": "model_version", "action": "created", "timestamp": "2026-12-01T00:00:00+00:00", '
            b'"data": {"name": "%s", "version": "7", "source": "models:/m-1", "run_id": null, "tags": {}, '
            b'"description": null}}' % name.encode())

    refused = post(installation["url"], body, "a-wrong-secret")
    assert refused.status_code == 401
    assert "signature" in refused.json()["error"]
    unsigned = httpx.post(installation["url"], content=body, timeout=30)
    assert unsigned.status_code == 401 and SIGNATURE_HEADER in unsigned.json()["error"]
    assert started(client, name) == []

    accepted = post(installation["url"], body, SECRET)
    assert accepted.status_code == 200, accepted.text
    (instance_id,) = started(client, name)
    assert accepted.json()["started"][0]["instance_id"] == instance_id
    assert client.variables(instance_id)["MODEL_VERSION"] == 7


def test_mlflow_server_delivers_a_model_version_created_through_it(installation, client) -> None:
    from mlflow import MlflowClient

    mlflow_server = installation["mlflow_server"]
    hook = register(installation["settings"], secret=SECRET, url=installation["url"], tracking_uri=mlflow_server)
    assert hook["url"] == installation["url"] and "model_version.created" in hook["events"]
    assert SECRET not in str(hook)

    name = f"churn-{uuid.uuid4().hex[:8]}"
    through_server = MlflowClient(mlflow_server, registry_uri=mlflow_server)
    through_server.create_registered_model(name, tags={EVENT_TAGS["model_version.created"]: PROCESS})
    run = through_server.create_run(experiment_id="0")
    version = through_server.create_model_version(name, source=f"{run.info.artifact_uri}/model",
                                                  run_id=run.info.run_id)
    (instance_id,) = wait_for(lambda: started(client, name), what="MLflow's delivery to start the process",
                              interval=0.2)
    variables = client.variables(instance_id)
    assert variables["MODEL_VERSION"] == int(version.version)
    assert variables["MLC_EVENT"] == "model_version.created"
    assert variables["MLC_TRIGGER_ID"].startswith("webhook:")
