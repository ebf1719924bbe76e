"""The model server behind ``mlc runtime serve``: an ASGI (Starlette) app run by uvicorn.

It hosts the online deployments the MLC store assigns to its runtime, reconciling on start,
every ``runtime_reconcile_interval`` seconds and on ``POST /admin/reconcile``; it heartbeats to
the store every ``runtime_heartbeat_interval`` seconds.

Endpoints: KServe V2 / Open Inference Protocol (``/v2/...``, with ``/versions/{v}`` forms),
MLflow scoring (``POST /invocations``, ``/ping``, ``/health``, ``/version``), Prometheus
``/metrics``, feedback labels (``POST /v2/models/{name}/feedback``) and token-protected
``/admin/...``. Requests to a model are split between its deployed versions by traffic weight,
sticky by the ``X-Request-Key`` header when one is sent.

Every prediction has a request id (the V2 request ``id``, else the ``X-Request-Id`` header, else a
new one), returned as ``X-Request-Id`` and as the V2 response ``id``, and goes to the prediction
log off the request path. A model's shadow versions get a copy of its live requests once they are
answered; their predictions are logged with role ``shadow`` and never returned.
"""

from __future__ import annotations

import asyncio
import bisect
import datetime as dt
import gc
import hashlib
import hmac
import itertools
import logging
import os
import random
import signal
import socket
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from modelops_mlc import __version__
from modelops_mlc.errors import MlcError, UsageError, first_line
from modelops_mlc.registry.imports import import_mlflow_stack
from modelops_mlc.runtimes.batching import MicroBatcher
from modelops_mlc.runtimes.client import SMOKE_HEADER
from modelops_mlc.runtimes.predictor import (
    Batch,
    InputError,
    Predictor,
    dumps,
    loads,
    outputs_v2,
    parse_invocations,
    parse_v2,
    predictions_json,
)
from modelops_mlc.runtimes.predlog import (
    MAX_REQUEST_ID,
    ROLE_PRIMARY,
    ROLE_SHADOW,
    LoggedPrediction,
    PredictionLog,
    new_request_id,
)
from modelops_mlc.runtimes.shadow import Mirrored, ShadowMirror

if TYPE_CHECKING:
    from modelops_mlc.config import Settings
    from modelops_mlc.runtimes.multiproc import Shared

__all__ = ["ModelServer", "TrafficRoute", "serve"]

log = logging.getLogger(__name__)

REQUEST_KEY_HEADER = "x-request-key"
REQUEST_ID_HEADER = "x-request-id"
MODEL_HEADER = "x-mlc-model"
GIL_SWITCH_INTERVAL_S = 0.0005
GC_THRESHOLDS = (10_000, 50, 100)  # Python's defaults are (700, 10, 10)
INLINE_ROWS = 512  # bigger batches are predicted in a worker thread so the loop keeps serving
RETRY_FAILED_LOAD = 30.0  # seconds before the reconcile loop tries a failed model load again


class HttpError(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class Served:
    """A deployment the server routes to."""

    deployment_id: int | None
    name: str
    version: str
    weight: int
    state: str
    predictor: Predictor


class TrafficRoute:
    """Weighted choice between the deployed versions of one model; a request key makes it sticky."""

    def __init__(self, entries: list[Served]) -> None:
        self.entries = entries
        weights = [max(0, e.weight) for e in entries]
        if sum(weights) == 0:
            weights = [1] * len(entries)
        self.cumulative = list(itertools.accumulate(weights))
        self.total = self.cumulative[-1]

    def pick(self, key: str | None) -> Served:
        if len(self.entries) == 1:
            return self.entries[0]
        if key:
            digest = hashlib.blake2b(key.encode(), digest_size=8).digest()
            point = int.from_bytes(digest, "big") % self.total
        else:
            point = random.randrange(self.total)
        return self.entries[bisect.bisect_right(self.cumulative, point)]


class _Metrics:
    """Prometheus metrics of one server (its own registry, so several servers can share a process).

    With ``multiprocess_dir`` (a worker of ``--workers N``) the values live in prometheus_client's
    multiprocess files and :meth:`render` sums every worker's; the figures read from the prediction
    log and the shadow mirror are copied into them by :meth:`refresh`, on every watch tick.
    """

    def __init__(self, multiprocess_dir: str | None = None) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics

        disable_created_metrics()
        self.registry = CollectorRegistry()
        self._polled: list[tuple[Any, Callable[[], float]]] = []
        self._output = self.registry
        if multiprocess_dir is not None:
            from prometheus_client.multiprocess import MultiProcessCollector

            self._output = CollectorRegistry()
            MultiProcessCollector(self._output, path=multiprocess_dir)
        self.requests = Counter(
            "mlc_inference_requests", "Inference requests", ["model", "version", "protocol"], registry=self.registry
        )
        self.errors = Counter(
            "mlc_inference_errors", "Inference requests that failed", ["model", "version", "protocol", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "mlc_inference_latency_seconds", "Inference latency", ["model", "version"], registry=self.registry,
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
        )
        self.loaded = Gauge("mlc_runtime_models_loaded", "Model versions loaded", registry=self.registry,
                            multiprocess_mode="mostrecent")
        self._multiprocess = multiprocess_dir is not None
        self._children: dict[tuple[str, str, str], tuple[Any, Any]] = {}

    def observe(self, model: str, version: str, protocol: str, seconds: float, status: int) -> None:
        key = (model, version, protocol)
        pair = self._children.get(key)
        if pair is None:
            pair = (self.requests.labels(model, version, protocol), self.latency.labels(model, version))
            self._children[key] = pair
        pair[0].inc()
        pair[1].observe(seconds)
        if status >= 400:
            self.errors.labels(model, version, protocol, str(status)).inc()

    def _gauge(self, name: str, doc: str, fn: Callable[[], float]) -> None:
        from prometheus_client import Gauge

        if self._multiprocess:  # a function gauge is not in the files: copied there by refresh()
            self._polled.append((Gauge(name, doc, registry=self.registry, multiprocess_mode="sum"), fn))
        else:
            Gauge(name, doc, registry=self.registry).set_function(fn)

    def refresh(self) -> None:
        for gauge, fn in self._polled:
            gauge.set(fn())

    def track(self, predlog: PredictionLog, mirror: ShadowMirror) -> None:
        """Expose the prediction log's and the shadow mirror's counters."""
        self._gauge("mlc_prediction_log_rows_written", "Prediction rows written to the MLC store",
                    lambda: predlog.rows_written)
        self._gauge("mlc_prediction_log_dropped", "Predictions not logged (queue full or store error)",
                    lambda: predlog.dropped)
        self._gauge("mlc_shadow_predictions", "Requests predicted by shadow versions", lambda: mirror.predicted)
        self._gauge("mlc_shadow_failures", "Shadow predictions that failed", lambda: mirror.failed)
        self._gauge("mlc_shadow_skipped", "Requests not mirrored (shadow queue full)", lambda: mirror.dropped)

    def track_drift(self, settings: "Settings", models: Callable[[], list[str]]) -> None:
        """Expose the latest monitor run of each of ``models()`` (mlc_drift_psi, ...): a custom collector
        in the rendered registry only, so with --workers N it is reported once, never summed."""
        from modelops_mlc.runtimes.drift_metrics import DriftCollector

        self._output.register(DriftCollector(settings, models))

    def render(self) -> bytes:
        from prometheus_client import generate_latest

        self.refresh()
        return generate_latest(self._output)


def _json(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(dumps(payload), status_code=status, media_type="application/json", headers=headers)


class ModelServer:
    """Desired state from the store, loaded predictors, traffic routes and the ASGI app."""

    def __init__(self, settings: "Settings", runtime_name: str, *, heartbeat: bool = True,
                 shared: "Shared | None" = None) -> None:
        self.settings = settings
        self.runtime = runtime_name
        self.heartbeat_enabled = heartbeat
        self.shared = shared  # set in a worker of --workers N: the state the runtime's processes share
        self._stamp = shared.seen() if shared is not None else None
        self.predictors: dict[tuple[str, str], Predictor] = {}
        self.load_errors: dict[tuple[str, str], str] = {}
        self.routes: dict[str, TrafficRoute] = {}
        self.shadows: dict[str, list[Served]] = {}  # model -> its shadow versions (mirrored, never answer)
        self.active: dict[int, tuple[str, str, str, int]] = {}  # id -> (name, version, state, weight)
        self.shadow_ids: set[int] = set()
        self.ready = False
        self.metrics = _Metrics(str(shared.metrics_dir) if shared is not None else None)
        self.predlog = PredictionLog(settings)
        self.mirror = ShadowMirror(self.predlog)
        self.batcher = MicroBatcher()
        self.metrics.track(self.predlog, self.mirror)
        self.metrics.track_drift(settings, lambda: list(self.routes))
        self._feedback: Any = None
        self._snapshot: list[tuple[Any, ...]] | None = None
        self._failed_at: dict[tuple[str, str], float] = {}
        self._frozen: set[tuple[str, str]] = set()  # models loaded when the GC last froze
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        token = settings.runtime_admin_token
        self._token = token.get_secret_value().encode() if token is not None and token.get_secret_value() else None
        self.app = self._build_app()

    # -- desired state ------------------------------------------------------------------------
    def _desired(self) -> list[tuple[int, str, str, str, int, bool]]:
        from sqlalchemy import select

        from modelops_mlc.runtimes.models import DeploymentRow, DeploymentShadowRow
        from modelops_mlc.store import open_store

        store = open_store(self.settings)
        with store.session() as s:
            rows = s.execute(
                select(
                    DeploymentRow.id, DeploymentRow.model_name, DeploymentRow.model_version,
                    DeploymentRow.state, DeploymentRow.traffic_weight, DeploymentShadowRow.deployment_id,
                )
                .outerjoin(DeploymentShadowRow, DeploymentShadowRow.deployment_id == DeploymentRow.id)
                .where(
                    DeploymentRow.runtime == self.runtime,
                    DeploymentRow.mode == "online",
                    DeploymentRow.state.in_(("deploying", "deployed")),
                )
                .order_by(DeploymentRow.id)
            ).all()
        return [(int(r[0]), str(r[1]), str(r[2]), str(r[3]), int(r[4]), r[5] is not None) for r in rows]

    def reconcile(self, *, force: bool = False) -> dict[str, Any]:
        """Load what the store wants here, drop what it no longer wants, rebuild the routes."""
        with self._lock:
            rows = self._desired()
            now = time.monotonic()
            retry_due = any(now - at >= RETRY_FAILED_LOAD for at in self._failed_at.values())
            if rows == self._snapshot and not force and not retry_due:
                return self.status()
            wanted = {(name, version) for _, name, version, _, _, _ in rows}
            predictors = {k: p for k, p in self.predictors.items() if k in wanted}
            errors = {k: e for k, e in self.load_errors.items() if k in wanted}
            for key in sorted(wanted - predictors.keys()):
                if key in errors and not force and now - self._failed_at.get(key, now) < RETRY_FAILED_LOAD:
                    continue
                started = time.perf_counter()
                try:
                    predictors[key] = Predictor.load(self.settings, *key)
                    errors.pop(key, None)
                    self._failed_at.pop(key, None)
                    log.info("runtime %s loaded %s/%s in %.2fs (fast path: %s)", self.runtime, *key,
                             time.perf_counter() - started, predictors[key].fast)
                except Exception as exc:  # any load failure is reported, never fatal to the server
                    errors[key] = first_line(exc, typed=True)
                    self._failed_at[key] = time.monotonic()
                    log.warning("runtime %s cannot load %s/%s: %s", self.runtime, *key, errors[key])
            groups: dict[str, list[Served]] = {}
            shadows: dict[str, list[Served]] = {}
            for dep_id, name, version, state, weight, shadow in rows:
                pred = predictors.get((name, version))
                if state == "deployed" and pred is not None:
                    (shadows if shadow else groups).setdefault(name, []).append(
                        Served(dep_id, name, version, weight, state, pred))
            self.predictors = predictors
            self.load_errors = errors
            self._failed_at = {k: at for k, at in self._failed_at.items() if k in errors}
            self.routes = {name: TrafficRoute(entries) for name, entries in groups.items()}
            self.shadows = shadows
            self.active = {row[0]: row[1:5] for row in rows}
            self.shadow_ids = {row[0] for row in rows if row[5]}
            self._snapshot = rows
            self.ready = True
            self.metrics.loaded.set(len(predictors))
            if self.shared is not None:
                self.shared.publish(self.routes, predictors)
            if predictors.keys() != self._frozen:
                # The imported stack and the models live as long as the server: keep them out of the
                # cyclic GC, whose full passes over them (~360k objects) stalled requests for 0.1-1 s.
                if self._frozen - predictors.keys():
                    # frozen objects are never collected: let an unloaded version's go first (one
                    # full pass per change of the served set, not per request)
                    gc.unfreeze()
                    gc.collect()
                gc.freeze()
                self._frozen = set(predictors)
            return self.status()

    def status(self) -> dict[str, Any]:
        return {
            "runtime": self.runtime,
            "process": os.getpid(),
            "ready": self.ready,
            "deployments": [
                {"id": dep_id, "model": name, "version": version, "state": state, "traffic_weight": weight,
                 "shadow": dep_id in self.shadow_ids, "loaded": (name, version) in self.predictors}
                for dep_id, (name, version, state, weight) in sorted(self.active.items())
            ],
            "errors": {f"{n}/{v}": e for (n, v), e in self.load_errors.items()},
            "prediction_log": {"rows_written": self.predlog.rows_written, "dropped": self.predlog.dropped,
                               "shadow_predicted": self.mirror.predicted, "shadow_failed": self.mirror.failed,
                               "shadow_skipped": self.mirror.dropped,
                               "retention": self.settings.prediction_retention, "pruned": self.predlog.pruned},
            "batching": {"enabled": self.settings.runtime_microbatch, "requests": self.batcher.requests,
                         "model_calls": self.batcher.calls},
        }

    # -- background work ----------------------------------------------------------------------
    def start_background(self) -> None:
        # A serving process's tail latency, tuned for it (bench/RESULTS.md, serving, has the effect):
        # - the background threads (prediction log, shadows, reconcile) hold the GIL in bursts and the
        #   event loop waits up to the switch interval for it (5 ms by default);
        # - the collector's young generations ran every few requests under load; with the loaded
        #   models frozen out of it (reconcile), rarer young collections cost less in all.
        sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)
        gc.set_threshold(*GC_THRESHOLDS)
        self._stop.clear()
        self.predlog.start()
        self.mirror.start()
        # the first deployment should not wait for the model stack to import
        threading.Thread(target=import_mlflow_stack, name="mlc-warm-imports", daemon=True).start()
        loops = [("reconcile", self.settings.runtime_reconcile_interval, self._reconcile_tick)]
        if self.heartbeat_enabled:
            loops.append(("heartbeat", self.settings.runtime_heartbeat_interval, self._heartbeat_tick))
        if self.shared is not None:
            from modelops_mlc.runtimes.multiproc import WATCH_INTERVAL

            loops.append(("watch", WATCH_INTERVAL, self._watch_tick))
        for what, interval, tick in loops:
            t = threading.Thread(target=self._loop, args=(interval, tick), name=f"mlc-{what}", daemon=True)
            t.start()
            self._threads.append(t)

    def stop_background(self, timeout: float = 5.0) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout)
        self._threads.clear()
        self.mirror.stop(timeout)
        self.predlog.stop(timeout)  # what was predicted is written before the server exits

    def _loop(self, interval: float, tick: Callable[[], None]) -> None:
        while not self._stop.is_set():
            try:
                tick()
            except Exception as exc:  # the store may be briefly locked or away: try again next time
                log.warning("runtime %s: %s failed: %s", self.runtime, tick.__name__, exc)
            self._stop.wait(max(0.05, interval))

    def _reconcile_tick(self) -> None:
        self.reconcile()

    def _mark_stopped(self) -> None:
        from modelops_mlc.runtimes.multiproc import mark_stopped

        mark_stopped(self.settings, self.runtime)

    def _heartbeat_tick(self) -> None:
        from modelops_mlc.runtimes.multiproc import beat

        beat(self.settings, self.runtime)

    def _watch_tick(self) -> None:
        """A worker of --workers N: reconcile when another worker announced a change; end with the parent."""
        assert self.shared is not None
        if os.getppid() != self.shared.supervisor:
            if not self._stop.is_set():
                log.warning("runtime %s: the supervising process is gone; worker %d stops", self.runtime, os.getpid())
                self._stop.set()
                os.kill(os.getpid(), signal.SIGTERM)
            return
        stamp = self.shared.seen()
        if stamp != self._stamp:
            self.reconcile()  # when it raises, the next tick tries again
            self._stamp = stamp
        self.metrics.refresh()

    def _reconcile_everywhere(self) -> dict[str, Any]:
        """An admin call: the other workers reconcile at the same time as this one."""
        if self.shared is not None:
            self.shared.announce()
        return self.reconcile(force=True)

    # -- request helpers ----------------------------------------------------------------------
    def _served(self, name: str, version: str | None, key: str | None) -> Served:
        if version is not None:
            pred = self.predictors.get((name, version))
            if pred is None:
                raise self._missing(name, version)
            dep_id = next((i for i, (n, v, _, _) in self.active.items() if n == name and v == version), None)
            state = self.active.get(dep_id, ("", "", "deploying", 0))[2] if dep_id is not None else "deploying"
            return Served(dep_id, name, version, 0, state, pred)
        route = self.routes.get(name)
        if route is None:
            raise self._missing(name, None)
        return route.pick(key)

    def _missing(self, name: str, version: str | None) -> HttpError:
        label = f"{name}/{version}" if version else name
        for (n, v), err in self.load_errors.items():
            if n == name and (version is None or v == version):
                return HttpError(503, f"model {label} failed to load on runtime {self.runtime}: {err}")
        if any(n == name and (version is None or v == version) for n, v, _, _ in self.active.values()):
            return HttpError(503, f"model {label} is not ready on runtime {self.runtime}")
        return HttpError(404, f"model {label} is not deployed on runtime {self.runtime}")

    async def _predict(self, predictor: Predictor, batch: Batch) -> Any:
        if len(batch) > INLINE_ROWS:
            return await asyncio.to_thread(predictor.predict, batch)
        if predictor.batchable and self.settings.runtime_microbatch:
            return await self.batcher.predict(predictor, batch)
        return predictor.predict(batch)

    def _check_admin(self, request: Request) -> None:
        if self._token is None:
            raise HttpError(403, "admin API disabled: start the runtime with MLC_RUNTIME_ADMIN_TOKEN set")
        auth = request.headers.get("authorization", "")
        given = auth[7:].strip() if auth.lower().startswith("bearer ") else request.headers.get("x-mlc-admin-token", "")
        if not given or not hmac.compare_digest(given.encode(), self._token):
            raise HttpError(401, "admin API needs a valid token (Authorization: Bearer <MLC_RUNTIME_ADMIN_TOKEN>)")

    # -- inference endpoints ------------------------------------------------------------------
    async def _infer(self, request: Request, protocol: str, name: str | None, version: str | None) -> Response:
        started = time.perf_counter()
        model_label, version_label, status = "_unknown", "", 200
        request_id = request.headers.get(REQUEST_ID_HEADER) or None
        try:
            if name is None:
                name = self._default_model(request)
            served = self._served(name, version, request.headers.get(REQUEST_KEY_HEADER))
            model_label, version_label = served.name, served.version
            body = await request.body()
            predictor = served.predictor
            decode: Callable[[list[str] | None], Batch]
            if protocol == "v2":
                payload = loads(body)
                if isinstance(payload, dict) and payload.get("id") is not None:
                    request_id = str(payload["id"])
                request_id = _checked_request_id(request_id)
                batch = parse_v2(payload, predictor.columns)
                pred = await self._predict(predictor, batch)
                out: dict[str, Any] = {"model_name": served.name, "model_version": served.version, "id": request_id,
                                       "outputs": outputs_v2(pred)}
                response = _json(out, headers=_answer_headers(served, request_id))
                decode = lambda columns: parse_v2(payload, columns)  # noqa: E731
            else:
                request_id = _checked_request_id(request_id)
                ctype = request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
                if ctype == "text/csv":
                    batch = _csv_batch(body)
                    decode = lambda _columns: _csv_batch(body)  # noqa: E731
                elif ctype in ("application/json", ""):
                    batch = parse_invocations(loads(body), predictor.columns)
                    decode = lambda columns: parse_invocations(loads(body), columns)  # noqa: E731
                else:
                    raise HttpError(415, f"unsupported content type {ctype!r}: use application/json or text/csv")
                pred = await self._predict(predictor, batch)
                response = _json({"predictions": predictions_json(pred)}, headers=_answer_headers(served, request_id))
            if SMOKE_HEADER not in request.headers:
                self._log(request_id, served, pred, decode, routed=version is None)
            return response
        except InputError as exc:
            status = exc.status
            return _json({"error": exc.reason}, status, headers=_id_header(request_id))
        except HttpError as exc:
            status = exc.status
            return _json({"error": exc.reason}, status, headers=_id_header(request_id))
        except Exception as exc:  # a model that raises: a 500 the metrics count, the connection kept alive
            status = 500
            reason = f"model {model_label}/{version_label} failed: {first_line(exc, 300, typed=True)}"
            log.warning("runtime %s: %s", self.runtime, reason)
            return _json({"error": reason}, status, headers=_id_header(request_id))
        finally:
            self.metrics.observe(model_label, version_label, protocol, time.perf_counter() - started, status)

    def _log(self, request_id: str, served: Served, pred: Any, decode: Callable[[list[str] | None], Batch],
             *, routed: bool) -> None:
        """Queue the answer for the prediction log and, for routed traffic, the request for the shadows."""
        at = dt.datetime.now(dt.timezone.utc)
        role = ROLE_SHADOW if served.deployment_id in self.shadow_ids else ROLE_PRIMARY
        self.predlog.put(LoggedPrediction(request_id, served.deployment_id, served.name, served.version, role, pred, at))
        if routed:
            targets = self.shadows.get(served.name)
            if targets:
                self.mirror.offer(Mirrored(request_id, at, targets, decode))

    def _record_feedback(self, name: str, rows: list[tuple[Any, Any, Any]], source: str) -> dict[str, Any]:
        """Write the queued predictions first, so labels for requests just answered join them."""
        from modelops_mlc.runtimes.feedback import FeedbackStore

        self.predlog.flush()
        if self._feedback is None:
            self._feedback = FeedbackStore(self.settings)
        return self._feedback.record(name, rows, source=source).report(name)

    def _default_model(self, request: Request) -> str:
        name = request.query_params.get("model") or request.headers.get(MODEL_HEADER)
        if name:
            return name
        if len(self.routes) == 1:
            return next(iter(self.routes))
        if not self.routes:
            raise HttpError(404, f"no model is deployed on runtime {self.runtime}")
        raise HttpError(
            400, f"runtime {self.runtime} serves {len(self.routes)} models: name one with ?model=NAME or X-MLC-Model"
        )

    # -- the app ------------------------------------------------------------------------------
    def _build_app(self) -> Starlette:
        def guard(fn: Callable[[Request], Awaitable[Response]]) -> Callable[[Request], Awaitable[Response]]:
            async def wrapped(request: Request) -> Response:
                try:
                    return await fn(request)
                except HttpError as exc:
                    return _json({"error": exc.reason}, exc.status)
                except InputError as exc:
                    return _json({"error": exc.reason}, exc.status)

            return wrapped

        async def v2_infer(request: Request) -> Response:
            p = request.path_params
            return await self._infer(request, "v2", p["name"], p.get("version"))

        async def invocations(request: Request) -> Response:
            return await self._infer(request, "mlflow", request.path_params.get("name"), None)

        async def live(_: Request) -> Response:
            return _json({"live": True})

        async def ready(_: Request) -> Response:
            return _json({"ready": self.ready}, 200 if self.ready else 503)

        async def ping(_: Request) -> Response:
            return Response("\n", status_code=200 if self.ready else 503, media_type="application/json")

        async def server_meta(_: Request) -> Response:
            return _json({"name": "modelops-mlc-runtime", "version": __version__, "extensions": ["mlflow_invocations"],
                          "runtime": self.runtime})

        async def version_text(_: Request) -> Response:
            return Response(__version__, media_type="application/json")

        async def model_meta(request: Request) -> Response:
            name, version = request.path_params["name"], request.path_params.get("version")
            if version is not None:
                pred = self.predictors.get((name, version))
                if pred is None:
                    raise self._missing(name, version)
                versions, traffic = [version], None
            else:
                route = self.routes.get(name)
                if route is None:
                    raise self._missing(name, None)
                pred = route.entries[-1].predictor
                versions = [e.version for e in route.entries]
                traffic = {e.version: e.weight for e in route.entries}
            meta: dict[str, Any] = {"name": name, "versions": versions, "platform": "mlflow",
                                    "inputs": pred.v2_inputs(), "outputs": [{"name": "predict", "datatype": "BYTES",
                                                                             "shape": [-1]}]}
            if traffic is not None:
                meta["parameters"] = {"traffic_weights": traffic}
            return _json(meta)

        async def model_ready(request: Request) -> Response:
            name, version = request.path_params["name"], request.path_params.get("version")
            if version is not None and (name, version) in self.predictors or version is None and name in self.routes:
                lagging = self.shared.lagging(name, version) if self.shared is not None else []
                if not lagging:
                    return _json({"name": name, "ready": True})
                label = f"{name}/{version}" if version else name
                return _json({"name": name, "ready": False, "error": f"model {label} is not ready in every process of "
                              f"runtime {self.runtime} yet (not in {len(lagging)})"}, 503)
            err = self._missing(name, version)
            return _json({"name": name, "ready": False, "error": err.reason}, err.status)

        async def feedback(request: Request) -> Response:
            name = request.path_params["name"]
            if name not in self.routes and all(n != name for n, _, _, _ in self.active.values()):
                raise self._missing(name, None)
            payload = loads(await request.body())
            items = payload.get("feedback") if isinstance(payload, dict) else None
            if not isinstance(items, list) or not items:
                raise InputError('feedback body must be {"feedback": [{"request_id": ..., "row": 0, "label": ...}]}')
            rows = []
            for i, item in enumerate(items):
                if not isinstance(item, dict) or "request_id" not in item or "label" not in item:
                    raise InputError(f"feedback[{i}] must be an object with request_id, label and optional row")
                rows.append((item["request_id"], item.get("row", 0), item["label"]))
            source = str(payload.get("source") or f"runtime {self.runtime}")
            try:
                return _json(await asyncio.to_thread(self._record_feedback, name, rows, source))
            except UsageError as exc:
                raise InputError(exc.message) from None
            except MlcError as exc:
                raise HttpError(503, exc.message) from None

        async def metrics(_: Request) -> Response:
            body = await asyncio.to_thread(self.metrics.render)  # the drift figures may read the store
            return Response(body, media_type="text/plain; version=0.0.4; charset=utf-8")

        async def admin_status(request: Request) -> Response:
            self._check_admin(request)
            return _json(self.status())

        async def admin_reconcile(request: Request) -> Response:
            self._check_admin(request)
            return _json(await asyncio.to_thread(self._reconcile_everywhere))

        async def admin_load(request: Request) -> Response:
            self._check_admin(request)
            try:
                dep_id = int(request.path_params["id"])
            except ValueError:
                raise HttpError(400, "deployment id must be a number") from None
            await asyncio.to_thread(self._reconcile_everywhere)
            entry = self.active.get(dep_id)
            if entry is None:
                raise HttpError(404, f"deployment {dep_id} is not active on runtime {self.runtime}")
            name, version = entry[0], entry[1]
            if (name, version) in self.predictors:
                pred = self.predictors[(name, version)]
                return _json({"deployment_id": dep_id, "model": name, "version": version, "loaded": True,
                              "fast_path": pred.fast})
            return _json({"deployment_id": dep_id, "model": name, "version": version, "loaded": False,
                          "error": self.load_errors.get((name, version), "not loaded")}, 422)

        routes = [
            Route("/v2/models/{name}/infer", guard(v2_infer), methods=["POST"]),
            Route("/v2/models/{name}/versions/{version}/infer", guard(v2_infer), methods=["POST"]),
            Route("/invocations", guard(invocations), methods=["POST"]),
            Route("/models/{name}/invocations", guard(invocations), methods=["POST"]),
            Route("/v2/health/live", live, methods=["GET"]),
            Route("/v2/health/ready", ready, methods=["GET"]),
            Route("/v2", server_meta, methods=["GET"]),
            Route("/v2/models/{name}", guard(model_meta), methods=["GET"]),
            Route("/v2/models/{name}/versions/{version}", guard(model_meta), methods=["GET"]),
            Route("/v2/models/{name}/ready", guard(model_ready), methods=["GET"]),
            Route("/v2/models/{name}/feedback", guard(feedback), methods=["POST"]),
            Route("/v2/models/{name}/versions/{version}/ready", guard(model_ready), methods=["GET"]),
            Route("/ping", ping, methods=["GET"]),
            Route("/health", ping, methods=["GET"]),
            Route("/version", version_text, methods=["GET"]),
            Route("/metrics", metrics, methods=["GET"]),
            Route("/admin/status", guard(admin_status), methods=["GET"]),
            Route("/admin/reconcile", guard(admin_reconcile), methods=["POST"]),
            Route("/admin/deployments/{id}/load", guard(admin_load), methods=["POST"]),
        ]

        from contextlib import asynccontextmanager

        @asynccontextmanager
        async def lifespan(_: Starlette):  # type: ignore[no-untyped-def]
            self.start_background()
            try:
                yield
            finally:
                await asyncio.to_thread(self.stop_background)
                if self.heartbeat_enabled:
                    await asyncio.to_thread(self._mark_stopped)

        return Starlette(routes=routes, lifespan=lifespan)


def _checked_request_id(request_id: str | None) -> str:
    if request_id is None or request_id == "":
        return new_request_id()
    if len(request_id) > MAX_REQUEST_ID:
        raise InputError(f"request id is longer than {MAX_REQUEST_ID} characters")
    if not _header_safe(request_id):
        raise InputError("request id must be printable ASCII (it is sent back in the X-Request-Id header)")
    return request_id


def _header_safe(value: str) -> bool:
    return value.isascii() and value.isprintable()


def _answer_headers(served: Served, request_id: str) -> dict[str, str]:
    headers = {"x-model-name": served.name, "x-model-version": served.version, REQUEST_ID_HEADER: request_id}
    if served.deployment_id is not None:
        headers["x-deployment-id"] = str(served.deployment_id)
    return headers


def _id_header(request_id: str | None) -> dict[str, str] | None:
    ok = request_id and len(request_id) <= MAX_REQUEST_ID and _header_safe(request_id)
    return {REQUEST_ID_HEADER: request_id} if ok else None


def _csv_batch(body: bytes) -> Batch:
    import io

    import pandas as pd

    try:
        frame = pd.read_csv(io.BytesIO(body))
    except Exception as exc:  # pandas raises many kinds for bad CSV
        raise InputError(f"cannot read the CSV body: {first_line(exc)}") from None
    return Batch(cols={str(c): frame[c].tolist() for c in frame.columns})


def bind_socket(host: str, port: int) -> socket.socket:
    """Bind the listening socket first, so ``--port 0`` works and the endpoint is known up front."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)  # proto matters: asyncio sets TCP_NODELAY only then
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise MlcError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    sock.set_inheritable(True)
    return sock


def serve(
    settings: "Settings",
    name: str,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    tags: dict[str, str] | None = None,
    flavors: list[str] | None = None,
    advertise: str | None = None,
    on_ready: Callable[[str], None] | None = None,
    log_level: str = "warning",
    workers: int = 1,
) -> None:
    """Enter runtime ``name`` with its endpoint in the catalog and serve until interrupted (blocks).

    ``workers`` above 1 serves with that many processes on the one port (see ``multiproc``).
    """
    import uvicorn

    from modelops_mlc.runtimes.catalog import RuntimeCatalog

    sock = bind_socket(host, port)
    actual = sock.getsockname()[1]
    url_host = "127.0.0.1" if host in ("0.0.0.0", "") else (f"[{host}]" if ":" in host and host != "::" else host)
    if host == "::":
        url_host = "[::1]"
    endpoint = (advertise or f"http://{url_host}:{actual}").rstrip("/")
    RuntimeCatalog(settings).register(
        name, tags or {}, flavors, [endpoint], heartbeat_interval=settings.runtime_heartbeat_interval, pid=os.getpid()
    )
    if on_ready:
        on_ready(endpoint)
    try:
        if workers > 1:
            from modelops_mlc.runtimes.multiproc import serve_workers

            serve_workers(settings, name, sock, workers, log_level=log_level)
        else:
            server = ModelServer(settings, name)
            config = uvicorn.Config(server.app, log_level=log_level, access_log=False, lifespan="on",
                                    timeout_graceful_shutdown=5)
            uvicorn.Server(config).run(sockets=[sock])  # the app's lifespan marks the runtime stopped on shutdown
    finally:
        sock.close()
