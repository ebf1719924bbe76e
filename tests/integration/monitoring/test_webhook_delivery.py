"""The MLflow parts of `mlc up --mlflow-server`, for real on loopback: the receiver (`mlc webhook
serve`) starts the process the model's tag names for a delivery signed with the secret, refuses a
badly signed one with 401 and starts nothing; the real `mlflow server` delivers the webhook the
stack registered when a model version is created through it; `mlc down` stops both."""

from __future__ import annotations

import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from modelops_mlc.config import Settings
from modelops_mlc.engine import EngineClient
from modelops_mlc.monitoring.webhooks import DELIVERY_HEADER, EVENT_TAGS, PATH, SIGNATURE_HEADER, TIMESTAMP_HEADER, sign
from modelops_mlc.stack import Stack
from tests.conftest import free_port
from tests.support.waiting import wait_for

BPMN = Path(__file__).resolve().parents[2] / "data" / "webhook_target.bpmn"
PROCESS = "test-webhook-target"  # a signal start event only, then the end
SECRET = "whsec-integration-81c2"


def answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture(scope="module")
def installation(engine: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The MLflow parts of `mlc up --mlflow-server` (`mlflow server` on the registry database, the
    receiver, the webhook registered on the server) in a home on the session's engine."""
    home = tmp_path_factory.mktemp("webhook-home")
    bpmn = home / "bpmn"
    bpmn.mkdir()
    shutil.copy(BPMN, bpmn)
    settings = Settings(home=home, engine_url=engine.url, engine_auth="none",
                        store_url=f"sqlite:///{home / 'mlc.db'}", mlflow_tracking_uri=f"sqlite:///{home / 'mlflow.db'}",
                        webhook_secret=SECRET, webhook_port=free_port(), mlflow_port=free_port())
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLC_WEBHOOK_SECRET", SECRET)  # what the receiver daemon reads, as under `mlc up`
        stack = Stack(settings, bpmn_dir=bpmn, mlflow_server=True)
        try:
            parts = stack.up(parts=("mlflow-server", "webhook-receiver"))
            assert all(p.healthy for p in parts[-2:]), parts
            receiver_url = f"http://127.0.0.1:{settings.webhook_port}"
            yield {"settings": settings, "url": receiver_url + PATH, "mlflow_server": stack.extras.mlflow_url}
        finally:
            assert stack.down() == ["webhook-receiver", "mlflow-server"]
    assert not answers(f"{receiver_url}/health") and not answers(f"{stack.extras.mlflow_url}/health")
    for name in ("webhook-receiver", "mlflow-server"):
        assert SECRET not in (home / "logs" / f"{name}.log").read_text()


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
    uri = installation["settings"].mlflow_tracking_uri
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
    (hook,) = MlflowClient(mlflow_server, registry_uri=mlflow_server).list_webhooks()  # made by the stack
    assert hook.url == installation["url"] and "model_version.created" in {str(e) for e in hook.events}

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
