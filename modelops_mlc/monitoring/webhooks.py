"""The receiver of MLflow registry webhooks behind ``mlc webhook serve``: registry events start the
MLC process that the model's tags name.

MLflow (3.3 and later) signs each delivery the Standard Webhooks way: header
``X-MLflow-Signature: v1,<base64 HMAC-SHA256 of "<delivery id>.<timestamp>.<body>">`` with the
webhook's secret, beside ``X-MLflow-Delivery-Id`` and ``X-MLflow-Timestamp`` (Unix seconds). A
delivery with a missing or wrong signature, or a timestamp more than :data:`TOLERANCE_S` away
from now, is refused with 401 and a JSON error, and starts nothing.

Which process starts is a registered-model tag per event (:data:`EVENT_TAGS`), e.g.
``mlc.on.model_version.created=mlc-monitor``; a comma-separated value starts each key named. The
process gets ``MODEL_ID`` (the model name), ``MODEL_VERSION`` and ``MODEL_ALIAS`` when the event
has them, ``MLC_EVENT`` (e.g. ``model_version.created``), ``MLC_TRIGGER_ID``
(``webhook:<delivery id>:<key>``) and, for ``mlc-monitor``, ``MONITOR_TRIGGER=webhook``. MLflow
retries a delivery on 5xx, so the receiver answers 503 while the engine is unreachable and
starts a retried delivery once: it asks the engine's history for the trigger id first, and claims
the trigger in the MLC store (a unique row) before it starts, so two receivers behind one URL that
get the same delivery start it once. A claim whose receiver died before starting is taken over
after ``CLAIM_STALE_S``; until then a retry gets 503, and MLflow retries again.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from modelops_mlc.engine import to_engine
from modelops_mlc.errors import (
    EngineAuthError,
    EngineError,
    EngineUnavailable,
    MlcError,
    ModelNotFoundError,
    RegistryError,
    UsageError,
    first_line,
)

if TYPE_CHECKING:
    from starlette.applications import Starlette

    from modelops_mlc.config import Settings
    from modelops_mlc.engine import EngineClient
    from modelops_mlc.registry import Registry

__all__ = [
    "DELIVERY_HEADER",
    "EVENT_TAGS",
    "PATH",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "TOLERANCE_S",
    "Outcome",
    "WebhookReceiver",
    "WebhookRefused",
    "build_app",
    "register",
    "serve",
    "sign",
    "start_process",
    "verify",
]

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-MLflow-Signature"
TIMESTAMP_HEADER = "X-MLflow-Timestamp"
DELIVERY_HEADER = "X-MLflow-Delivery-Id"
SIGNATURE_VERSION = "v1"
TOLERANCE_S = 300  # Standard Webhooks' replay window
MAX_BODY = 1 << 20
PATH = "/webhooks/mlflow"
TAG_PREFIX = "mlc.on."
#: The registry events that start processes, and the registered-model tag that names the process.
EVENT_TAGS = {
    event: TAG_PREFIX + event
    for event in ("model_version.created", "model_version_alias.created", "model_version_alias.deleted")
}
TRIGGER_VARIABLES = {"mlc-monitor": {"MONITOR_TRIGGER": "webhook"}}
CLAIM_WAIT_S = 5.0  # how long a receiver that lost the claim waits for the winner's instance
CLAIM_STALE_S = 60.0  # a claim with no instance after this long: its receiver died before starting
CLAIM_KEEP_S = 7 * 86400.0  # started claims are kept this long (MLflow retries a delivery for minutes)

_BPMN = "{http://www.omg.org/spec/BPMN/20100524/MODEL}"


class WebhookRefused(MlcError):
    """A delivery the receiver will not act on; ``status`` is the HTTP answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class NotNow(MlcError):
    """A delivery that cannot be acted on now (another receiver is starting it, or the MLC store
    failed): answered 503, which MLflow retries."""


def sign(secret: str, delivery_id: str, timestamp: str, body: bytes) -> str:
    """MLflow's signature of a delivery: ``v1,`` and the base64 HMAC-SHA256 of ``id.timestamp.body``."""
    content = delivery_id.encode() + b"." + timestamp.encode() + b"." + body
    digest = hmac.new(secret.encode(), content, hashlib.sha256).digest()
    return f"{SIGNATURE_VERSION},{base64.b64encode(digest).decode()}"


def verify(secret: str, headers: Mapping[str, str], body: bytes, *, now: float | None = None,
           tolerance_s: float = TOLERANCE_S) -> str:
    """Check a delivery's signature and timestamp; returns its delivery id, raises WebhookRefused (401)."""
    lowered = {k.lower(): v for k, v in headers.items()}
    signature = lowered.get(SIGNATURE_HEADER.lower(), "").strip()
    timestamp = lowered.get(TIMESTAMP_HEADER.lower(), "").strip()
    delivery_id = lowered.get(DELIVERY_HEADER.lower(), "").strip()
    if not signature:
        raise WebhookRefused(401, f"missing {SIGNATURE_HEADER} header (is the webhook's secret set in MLflow?)")
    if not timestamp or not delivery_id:
        raise WebhookRefused(401, f"missing {TIMESTAMP_HEADER} or {DELIVERY_HEADER} header")
    try:
        sent = int(timestamp)
    except ValueError:
        raise WebhookRefused(401, f"{TIMESTAMP_HEADER} is not a Unix timestamp") from None
    current = time.time() if now is None else now
    if abs(current - sent) > tolerance_s:
        raise WebhookRefused(401, f"{TIMESTAMP_HEADER} is {abs(current - sent):.0f} s away from now "
                                  f"(tolerance {tolerance_s:.0f} s)")
    expected = sign(secret, delivery_id, timestamp, body)
    # Standard Webhooks allows several space-separated signatures (secret rotation).
    if not any(hmac.compare_digest(expected, given) for given in signature.split()):
        raise WebhookRefused(401, "signature does not match (wrong secret, or the body was changed)")
    return delivery_id


@dataclass
class Outcome:
    """What one delivery did: processes started (or found started by an earlier try), and why not."""

    event: str
    model: str | None = None
    started: list[dict[str, Any]] = field(default_factory=list)
    ignored: str | None = None
    errors: list[str] = field(default_factory=list)


def start_process(client: "EngineClient", key: str, variables: Mapping[str, Any]) -> str:
    """Start the latest version of process ``key`` at its start event, whatever kind it is; returns
    the instance id.

    Camunda starts a definition by key only from a default start event (a none start event, or a
    single start event), and most MLC processes start on a signal, some with more than one start
    event. Throwing the process's start signal instead would start every process subscribed to it,
    not the one the tag names, and give back no instance. So the receiver starts an instance with a
    start instruction *before* the process's start event: exactly one instance of exactly that
    definition, with the start event's listeners and async flags honoured as on a normal start.
    """
    try:
        xml = client.request("GET", f"/process-definition/key/{key}/xml")["bpmn20Xml"]
    except EngineError as exc:
        if exc.status == 404:
            raise WebhookRefused(422, f"no process definition with key {key!r} is deployed") from None
        raise
    instance = client.request("POST", f"/process-definition/key/{key}/start", json={
        "variables": to_engine(variables),
        "startInstructions": [{"type": "startBeforeActivity", "activityId": start_event_id(xml, key)}],
    })
    return str(instance["id"])


def start_event_id(bpmn_xml: str, key: str) -> str:
    """The start event a trigger enters ``key`` by: its none start event, else its (first) signal
    start event, else its first start event."""
    root = ET.fromstring(bpmn_xml)
    process = next((p for p in root.iter(f"{_BPMN}process") if p.get("id") == key), None)
    starts = process.findall(f"{_BPMN}startEvent") if process is not None else []
    if not starts:
        raise WebhookRefused(422, f"process {key!r} has no top-level start event")

    def definitions(start: ET.Element) -> set[str]:
        return {child.tag.removeprefix(_BPMN) for child in start if child.tag.endswith("EventDefinition")}

    for wanted in (set(), {"signalEventDefinition"}):
        for start in starts:
            if definitions(start) == wanted:
                return str(start.get("id"))
    return str(starts[0].get("id"))


class WebhookReceiver:
    """Verifies and acts on MLflow deliveries; ``handle()`` is one delivery (any thread)."""

    def __init__(self, settings: "Settings", engine_client: "EngineClient", *, secret: str,
                 registry: "Registry | None" = None, clock: Callable[[], float] = time.time) -> None:
        if not secret:
            raise UsageError("no webhook secret: set MLC_WEBHOOK_SECRET")
        if registry is None:
            from modelops_mlc.registry import Registry

            registry = Registry(settings)
        self.settings = settings
        self.engine = engine_client
        self.registry = registry
        self._secret = secret
        self._clock = clock
        self._start_lock = threading.Lock()  # a retried delivery checks history and starts atomically

    def handle(self, headers: Mapping[str, str], body: bytes) -> tuple[int, dict[str, Any]]:
        """(HTTP status, JSON answer) for one delivery."""
        try:
            if len(body) > MAX_BODY:
                raise WebhookRefused(413, f"body larger than {MAX_BODY} bytes")
            delivery_id = verify(self._secret, headers, body, now=self._clock())
            outcome = self._act(delivery_id, _payload(body))
        except WebhookRefused as exc:
            log.warning("webhook refused (%d): %s", exc.status, exc.message)
            return exc.status, {"error": exc.message}
        except (EngineUnavailable, EngineAuthError, RegistryError, NotNow) as exc:  # MLflow retries a 503
            log.warning("webhook not acted on: %s", exc.message)
            return 503, {"error": exc.message}
        status = 422 if outcome.errors else 200
        return status, asdict(outcome)

    def _act(self, delivery_id: str, payload: dict[str, Any]) -> Outcome:
        event = f"{payload.get('entity')}.{payload.get('action')}"
        data = payload.get("data")
        outcome = Outcome(event=event)
        if event not in EVENT_TAGS:
            outcome.ignored = f"MLC starts nothing on {event}"
            return outcome
        if not isinstance(data, dict) or not isinstance(data.get("name"), str):
            raise WebhookRefused(400, f"{event} payload without a model name")
        name = outcome.model = data["name"]
        try:
            tags = self.registry.get_model(name).tags
        except ModelNotFoundError:
            outcome.ignored = f"model {name!r} is not in the registry at {self.registry.tracking_uri}"
            return outcome
        tag = EVENT_TAGS[event]
        keys = [k.strip() for k in tags.get(tag, "").split(",") if k.strip()]
        if not keys:
            outcome.ignored = f"model {name!r} has no tag {tag}"
            return outcome
        variables: dict[str, Any] = {"MODEL_ID": name, "MLC_EVENT": event}
        if data.get("version") is not None:
            if not str(data["version"]).isdigit():
                raise WebhookRefused(400, f"{event} payload with version {data['version']!r}")
            variables["MODEL_VERSION"] = int(data["version"])
        if data.get("alias"):
            variables["MODEL_ALIAS"] = str(data["alias"])
        for key in keys:
            trigger_id = f"webhook:{delivery_id}:{key}"
            try:
                instance_id, earlier = self._start_once(key, {
                    **variables, **TRIGGER_VARIABLES.get(key, {}), "MLC_TRIGGER_ID": trigger_id,
                })
            except WebhookRefused as exc:
                outcome.errors.append(exc.message)
                continue
            except (EngineUnavailable, EngineAuthError, NotNow):
                raise
            except EngineError as exc:
                outcome.errors.append(f"{key}: {exc.message}")
                continue
            outcome.started.append({"process_key": key, "instance_id": instance_id, "earlier_delivery": earlier})
            log.info("%s of %s started %s (%s)", event, name, key, instance_id,
                     extra={"event": "webhook.started", "fields": {"model_id": name, "process_key": key,
                                                                   "process_instance_id": instance_id,
                                                                   "delivery_id": delivery_id}})
        return outcome

    def _started(self, key: str, trigger_id: str) -> str | None:
        found = self.engine.instances(process_key=key, variables={"MLC_TRIGGER_ID": trigger_id}, limit=1)
        return found[0].id if found else None

    def _start_once(self, key: str, variables: dict[str, Any]) -> tuple[str, bool]:
        trigger_id = variables["MLC_TRIGGER_ID"]
        with self._start_lock:
            earlier = self._started(key, trigger_id)
            if earlier:
                return earlier, True
            if not self._claim(trigger_id):  # another receiver is starting it: wait for its instance
                deadline = time.monotonic() + CLAIM_WAIT_S
                while time.monotonic() < deadline:
                    time.sleep(0.2)
                    earlier = self._started(key, trigger_id)
                    if earlier:
                        return earlier, True
                if not self._take_over(trigger_id):
                    raise NotNow(f"{key}: another receiver is starting {trigger_id}; retry")
            try:
                instance_id = start_process(self.engine, key, variables)
            except BaseException:
                self._release(trigger_id)  # nothing started: a retry may claim it at once
                raise
            self._claimed(trigger_id, instance_id)
            return instance_id, False

    def _claims(self, change: Callable[[Any, Any], Any]) -> Any:
        """Run ``change(session, TriggerClaimRow)`` in one MLC store transaction; returns what it returns."""
        from modelops_mlc.monitoring.models import TriggerClaimRow
        from modelops_mlc.store import open_store

        with open_store(self.settings).session() as s:
            return change(s, TriggerClaimRow)

    def _claim(self, trigger_id: str) -> bool:
        """Insert the trigger's claim; False when a receiver (this or another) holds it already."""
        from sqlalchemy.exc import IntegrityError

        try:
            self._claims(lambda s, row: s.add(row(trigger_id=trigger_id)))
        except MlcError as exc:  # the store wraps the driver's error
            if isinstance(exc.__cause__, IntegrityError):
                return False
            raise NotNow(exc.message) from exc
        return True

    def _take_over(self, trigger_id: str) -> bool:
        """Take a stale claim (no instance, claimed over ``CLAIM_STALE_S`` ago): True for exactly one taker."""
        import datetime as dt

        from sqlalchemy import update

        from modelops_mlc.store import utcnow

        now = utcnow()
        try:
            done = self._claims(lambda s, row: s.execute(update(row).where(
                row.trigger_id == trigger_id, row.instance_id.is_(None),
                row.claimed_at < now - dt.timedelta(seconds=CLAIM_STALE_S)).values(claimed_at=now)).rowcount)
        except MlcError as exc:
            raise NotNow(exc.message) from exc
        return (done or 0) == 1

    def _claimed(self, trigger_id: str, instance_id: str) -> None:
        """Record the instance with its claim, and drop started claims older than ``CLAIM_KEEP_S``. If that
        fails, a retry still finds the instance in the engine's history, which is asked first, so the
        failure is only logged."""
        import datetime as dt

        from sqlalchemy import delete, update

        from modelops_mlc.store import utcnow

        def change(s: Any, row: Any) -> None:
            s.execute(update(row).where(row.trigger_id == trigger_id).values(instance_id=instance_id))
            s.execute(delete(row).where(row.instance_id.is_not(None),
                                        row.claimed_at < utcnow() - dt.timedelta(seconds=CLAIM_KEEP_S)))

        try:
            self._claims(change)
        except MlcError as exc:
            log.warning("webhook: claim of %s not updated with instance %s: %s", trigger_id, instance_id, exc.message)

    def _release(self, trigger_id: str) -> None:
        from sqlalchemy import delete

        try:
            self._claims(lambda s, row: s.execute(delete(row).where(row.trigger_id == trigger_id,
                                                                    row.instance_id.is_(None))))
        except MlcError as exc:  # the claim goes stale instead, and is taken over after CLAIM_STALE_S
            log.warning("webhook: claim of %s not released: %s", trigger_id, exc.message)


def _payload(body: bytes) -> dict[str, Any]:
    try:
        payload = json.loads(body)
    except ValueError:
        raise WebhookRefused(400, "body is not JSON") from None
    if not isinstance(payload, dict):
        raise WebhookRefused(400, "body is not a JSON object")
    return payload


def build_app(receiver: WebhookReceiver) -> "Starlette":
    """The ASGI app: ``POST /webhooks/mlflow`` for deliveries, ``GET /health``."""
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def deliver(request: Request) -> JSONResponse:
        body = await request.body()
        status, answer = await run_in_threadpool(receiver.handle, dict(request.headers), body)
        return JSONResponse(answer, status_code=status)

    async def health(_: Request) -> JSONResponse:
        return JSONResponse({"status": "ok", "events": sorted(EVENT_TAGS)})

    return Starlette(routes=[Route(PATH, deliver, methods=["POST"]), Route("/health", health, methods=["GET"])])


def serve(settings: "Settings", engine_client: "EngineClient", *, host: str = "127.0.0.1", port: int,
          on_ready: Callable[[str], None] | None = None, log_level: str = "warning") -> None:
    """Serve the receiver until interrupted (blocks); the secret comes from ``MLC_WEBHOOK_SECRET``."""
    import uvicorn

    from modelops_mlc.runtimes.server import bind_socket

    secret = settings.webhook_secret.get_secret_value() if settings.webhook_secret else ""
    receiver = WebhookReceiver(settings, engine_client, secret=secret)
    receiver.registry.client  # open the registry now, not on the first delivery
    sock = bind_socket(host, port)
    url_host = f"[{host}]" if ":" in host else ("127.0.0.1" if host in ("0.0.0.0", "") else host)
    config = uvicorn.Config(build_app(receiver), log_level=log_level, access_log=False, lifespan="off",
                            timeout_graceful_shutdown=5)
    if on_ready:
        on_ready(f"http://{url_host}:{sock.getsockname()[1]}{PATH}")
    try:
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        sock.close()


LOCAL_DELIVERY_HINT = ("a server that delivers to this machine needs MLFLOW_WEBHOOK_ALLOWED_SCHEMES=http,https and "
                       "MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS=true in its environment (`mlc up --mlflow-server` sets both)")


def register(settings: "Settings", *, secret: str, url: str | None = None, name: str = "mlc",
             tracking_uri: str | None = None) -> dict[str, Any]:
    """Create the webhook ``name`` on the MLflow tracking server for :data:`EVENT_TAGS`' events,
    or update the one of that name (URL, events, secret, ACTIVE); returns it without its secret."""
    import httpx

    uri = (tracking_uri or settings.mlflow_tracking_uri).rstrip("/")
    if not uri.startswith(("http://", "https://")):
        raise UsageError(f"MLflow delivers webhooks from a tracking server, and {uri} is not one",
                         hint="point MLFLOW_TRACKING_URI (or --tracking-uri) at the server; "
                              "`mlc up --mlflow-server` starts one")
    if not secret:
        raise UsageError("no webhook secret: set MLC_WEBHOOK_SECRET")
    target = url or f"http://127.0.0.1:{settings.webhook_port}{PATH}"
    try:  # MLflow's own client retries an unreachable server for minutes
        httpx.get(f"{uri}/health", timeout=5).raise_for_status()
    except httpx.HTTPError as exc:
        raise RegistryError(f"cannot reach the MLflow server at {uri}: {first_line(exc)}") from None
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    events = sorted(EVENT_TAGS)
    try:
        existing = None
        token = None
        while existing is None:
            page = client.list_webhooks(max_results=100, page_token=token)
            existing = next((w for w in page if w.name == name), None)
            token = page.token
            if not token:
                break
        if existing is not None:
            hook = client.update_webhook(existing.webhook_id, url=target, events=events, secret=secret, status="ACTIVE")
        else:
            hook = client.create_webhook(name, target, events, secret=secret,
                                         description="modelops-mlc: registry events start MLC processes")
    except MlflowException as exc:
        raise RegistryError(f"MLflow refused the webhook: {first_line(exc)}", hint=LOCAL_DELIVERY_HINT) from None
    return {"id": hook.webhook_id, "name": hook.name, "url": hook.url, "events": [str(e) for e in hook.events],
            "status": str(getattr(hook.status, "value", hook.status)), "tracking_uri": uri}
