"""The MLflow webhook receiver: MLflow's signature scheme, refusals, and the process a model's tag
names started on a real engine from a real registry."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import pytest

from modelops_mlc.config import Settings
from modelops_mlc.engine import EngineClient
from modelops_mlc.monitoring.webhooks import (
    DELIVERY_HEADER,
    EVENT_TAGS,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    WebhookReceiver,
    WebhookRefused,
    sign,
    start_event_id,
    verify,
)

DATA = Path(__file__).resolve().parents[2] / "data"
PROCESS = "test-webhook-target"  # a signal start event only, then the end
SECRET = "whsec-unit-3f9a"


def delivery(event: str, data: dict, *, secret: str = SECRET, at: float | None = None,
             delivery_id: str | None = None) -> tuple[dict[str, str], bytes]:
    """Headers and body as MLflow's delivery code builds them."""
    entity, action = event.rsplit(".", 1)
    body = json.dumps({"entity": entity, "action": action, "timestamp": "2026-12-01T00:00:00+00:00", "data": data})
    delivery_id = delivery_id or str(uuid.uuid4())
    timestamp = str(int(time.time() if at is None else at))
    headers = {"Content-Type": "application/json", DELIVERY_HEADER: delivery_id, TIMESTAMP_HEADER: timestamp,
               SIGNATURE_HEADER: sign(secret, delivery_id, timestamp, body.encode())}
    return headers, body.encode()


def test_the_signature_is_mlflows() -> None:
    from mlflow.webhooks.delivery import _generate_hmac_signature

    payload = json.dumps({"entity": "model_version", "action": "created", "data": {"name": "fraud", "version": "3"}})
    assert sign(SECRET, "d-1", "1764547200", payload.encode()) == _generate_hmac_signature(
        SECRET, "d-1", "1764547200", payload)


def test_verify_accepts_a_signed_delivery_and_refuses_the_rest() -> None:
    headers, body = delivery("model_version.created", {"name": "fraud", "version": "1"})
    assert verify(SECRET, headers, body) == headers[DELIVERY_HEADER]
    assert verify(SECRET, {k.lower(): v for k, v in headers.items()}, body)  # header names are case-insensitive

    refusals = {
        "wrong secret": ("other-secret", headers, body),
        "changed body": (SECRET, headers, body.replace(b'"1"', b'"2"')),
        "no signature": (SECRET, {k: v for k, v in headers.items() if k != SIGNATURE_HEADER}, body),
        "no timestamp": (SECRET, {k: v for k, v in headers.items() if k != TIMESTAMP_HEADER}, body),
    }
    for what, (secret, hdrs, payload) in refusals.items():
        with pytest.raises(WebhookRefused) as refused:
            verify(secret, hdrs, payload)
        assert refused.value.status == 401, what
    stale_headers, stale_body = delivery("model_version.created", {"name": "fraud"}, at=time.time() - 3600)
    with pytest.raises(WebhookRefused, match="away from now"):
        verify(SECRET, stale_headers, stale_body)


def test_the_start_event_a_trigger_enters_by() -> None:
    signal_only = (DATA / "webhook_target.bpmn").read_text()
    assert start_event_id(signal_only, PROCESS) == "start"
    two = """<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL"><process id="p">
      <startEvent id="by_timer"><timerEventDefinition/></startEvent>
      <startEvent id="by_signal"><signalEventDefinition signalRef="s"/></startEvent>
      <startEvent id="plain"/></process></definitions>"""
    assert start_event_id(two, "p") == "plain"
    assert start_event_id(two.replace('<startEvent id="plain"/>', ""), "p") == "by_signal"
    with pytest.raises(WebhookRefused):
        start_event_id(two, "other-key")


def test_mlc_monitor_is_entered_by_its_mlc_monitor_signal_start() -> None:
    import xml.etree.ElementTree as ET

    xml = (DATA.parents[1] / "bpmn" / "monitor.bpmn").read_text()
    ns = {"b": "http://www.omg.org/spec/BPMN/20100524/MODEL"}
    root = ET.fromstring(xml)
    start = root.find(f".//b:startEvent[@id='{start_event_id(xml, 'mlc-monitor')}']", ns)
    signal_ref = start.find("b:signalEventDefinition", ns).get("signalRef")
    assert root.find(f"b:signal[@id='{signal_ref}']", ns).get("name") == "mlc.monitor"


@pytest.fixture
def client(engine, settings: Settings):
    with EngineClient(settings) as c:
        c.deploy_processes([DATA / "webhook_target.bpmn"], name="mlc-test-triggers")
        yield c


@pytest.fixture
def receiver(settings, client, registry) -> WebhookReceiver:
    return WebhookReceiver(settings, client, secret=SECRET, registry=registry)


def started(client: EngineClient, model: str) -> list[str]:
    return [i.id for i in client.instances(process_key=PROCESS, variables={"MODEL_ID": model})]


def test_a_signed_model_version_created_starts_the_process_the_tag_names(receiver, client, registry) -> None:
    name = f"fraud-{uuid.uuid4().hex[:8]}"
    registry.client.create_registered_model(name, tags={EVENT_TAGS["model_version.created"]: PROCESS})
    headers, body = delivery("model_version.created", {"name": name, "version": "4", "source": "models:/m-1",
                                                        "run_id": None, "tags": {}, "description": None})
    status, answer = receiver.handle(headers, body)
    assert status == 200, answer
    assert [s["process_key"] for s in answer["started"]] == [PROCESS]
    (instance_id,) = started(client, name)
    assert answer["started"][0]["instance_id"] == instance_id
    variables = client.variables(instance_id)
    assert variables["MODEL_VERSION"] == 4 and variables["MLC_EVENT"] == "model_version.created"
    assert variables["MLC_TRIGGER_ID"] == f"webhook:{headers[DELIVERY_HEADER]}:{PROCESS}"

    again_status, again = receiver.handle(headers, body)  # MLflow retries a delivery it thinks failed
    assert again_status == 200 and again["started"][0]["earlier_delivery"] is True
    assert started(client, name) == [instance_id]


def test_an_alias_change_starts_the_process_with_the_alias(receiver, client, registry) -> None:
    name = f"churn-{uuid.uuid4().hex[:8]}"
    registry.client.create_registered_model(name, tags={EVENT_TAGS["model_version_alias.created"]: PROCESS})
    status, answer = receiver.handle(*delivery("model_version_alias.created",
                                               {"name": name, "alias": "champion", "version": "2"}))
    assert status == 200, answer
    (instance_id,) = started(client, name)
    assert client.variables(instance_id)["MODEL_ALIAS"] == "champion"
    status, answer = receiver.handle(*delivery("model_version_alias.deleted", {"name": name, "alias": "champion"}))
    assert status == 200 and answer["started"] == [] and "no tag" in answer["ignored"]


def test_a_bad_signature_is_refused_and_starts_nothing(receiver, client, registry) -> None:
    name = f"fraud-{uuid.uuid4().hex[:8]}"
    registry.client.create_registered_model(name, tags={EVENT_TAGS["model_version.created"]: PROCESS})
    headers, body = delivery("model_version.created", {"name": name, "version": "1"}, secret="not-the-secret")
    status, answer = receiver.handle(headers, body)
    assert status == 401 and "signature" in answer["error"]
    assert started(client, name) == []


def test_what_the_receiver_does_not_act_on(receiver, client, registry) -> None:
    name = f"fraud-{uuid.uuid4().hex[:8]}"
    registry.client.create_registered_model(name, tags={EVENT_TAGS["model_version.created"]: "no-such-process"})
    status, answer = receiver.handle(*delivery("model_version.created", {"name": name, "version": "1"}))
    assert status == 422 and "no-such-process" in answer["errors"][0]
    status, answer = receiver.handle(*delivery("model_version.created", {"name": "example_model", "version": "1"}))
    assert status == 200 and "not in the registry" in answer["ignored"]  # MLflow's test delivery
    status, answer = receiver.handle(*delivery("model_version_tag.set", {"name": name, "version": "1"}))
    assert status == 200 and answer["ignored"]
    headers, _ = delivery("model_version.created", {"name": name})
    status, answer = receiver.handle({**headers, SIGNATURE_HEADER: sign(SECRET, headers[DELIVERY_HEADER],
                                                                        headers[TIMESTAMP_HEADER], b"[1]")}, b"[1]")
    assert status == 400 and "object" in answer["error"]


def test_two_receivers_given_the_same_delivery_start_it_once(settings, client, registry, monkeypatch) -> None:
    """Two receivers behind one URL (their own locks, one MLC store) get the same delivery at once. The
    first one's start is slowed so the second asks the engine before any instance exists: the claim in
    the store makes it wait for the first one's instance instead of starting its own."""
    import threading

    from modelops_mlc.monitoring import webhooks

    real_start = webhooks.start_process

    def slow_start(*args, **kwargs):
        time.sleep(1.0)
        return real_start(*args, **kwargs)

    monkeypatch.setattr(webhooks, "start_process", slow_start)
    name = f"fraud-{uuid.uuid4().hex[:8]}"
    registry.client.create_registered_model(name, tags={EVENT_TAGS["model_version.created"]: PROCESS})
    headers, body = delivery("model_version.created", {"name": name, "version": "1"})
    receivers = [WebhookReceiver(settings, client, secret=SECRET, registry=registry) for _ in range(2)]
    answers: list = [None, None]

    def deliver(i: int) -> None:
        answers[i] = receivers[i].handle(headers, body)

    threads = [threading.Thread(target=deliver, args=(i,)) for i in range(2)]
    threads[0].start()
    time.sleep(0.3)
    threads[1].start()
    [t.join(30) for t in threads]
    (instance_id,) = started(client, name)
    assert [status for status, _ in answers] == [200, 200], answers
    assert [a["started"][0]["instance_id"] for _, a in answers] == [instance_id, instance_id]
    assert [a["started"][0]["earlier_delivery"] for _, a in answers] == [False, True]


def test_a_claim_held_without_an_instance_is_503_until_it_goes_stale(settings, receiver, client, registry,
                                                                   monkeypatch) -> None:
    """A receiver that claimed a delivery and died before starting it: a retry gets 503 (MLflow retries)
    and starts nothing while the claim is fresh, then takes the stale claim over and starts it once."""
    import datetime as dt

    from modelops_mlc.monitoring import webhooks
    from modelops_mlc.monitoring.models import TriggerClaimRow
    from modelops_mlc.store import open_store, utcnow

    monkeypatch.setattr(webhooks, "CLAIM_WAIT_S", 0.5)
    name = f"fraud-{uuid.uuid4().hex[:8]}"
    registry.client.create_registered_model(name, tags={EVENT_TAGS["model_version.created"]: PROCESS})
    headers, body = delivery("model_version.created", {"name": name, "version": "1"})
    trigger_id = f"webhook:{headers[DELIVERY_HEADER]}:{PROCESS}"
    with open_store(settings).session() as s:
        s.add(TriggerClaimRow(trigger_id=trigger_id))

    status, answer = receiver.handle(headers, body)
    assert status == 503 and "another receiver is starting" in answer["error"]
    assert started(client, name) == []

    with open_store(settings).session() as s:  # the dead receiver's claim, a while later
        s.query(TriggerClaimRow).filter_by(trigger_id=trigger_id).update(
            {"claimed_at": utcnow() - dt.timedelta(seconds=webhooks.CLAIM_STALE_S + 5)})
    with open_store(settings).session() as s:  # a started claim of last month, past keeping
        s.add(TriggerClaimRow(trigger_id=f"old:{trigger_id}", instance_id="gone",
                              claimed_at=utcnow() - dt.timedelta(seconds=webhooks.CLAIM_KEEP_S + 60)))
    status, answer = receiver.handle(headers, body)
    assert status == 200 and answer["started"][0]["earlier_delivery"] is False
    (instance_id,) = started(client, name)
    with open_store(settings).session() as s:
        assert s.query(TriggerClaimRow).filter_by(trigger_id=trigger_id).one().instance_id == instance_id
        assert s.query(TriggerClaimRow).filter_by(trigger_id=f"old:{trigger_id}").count() == 0
