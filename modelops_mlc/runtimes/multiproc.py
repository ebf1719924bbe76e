"""One runtime served by several processes on one port: ``mlc runtime serve --workers N``.

The parent binds the socket, enters the runtime in the catalog, heartbeats for it (one heartbeat
per runtime) and supervises N uvicorn worker processes (uvicorn's ``Multiprocess``: a worker that
dies is replaced). Each worker is a whole :class:`~modelops_mlc.runtimes.server.ModelServer` with
its own predictors and prediction log writer, and the processes stay consistent through what they
share under ``$MLC_HOME/runtimes/<name>/`` (wiped at every start):

* **Desired state.** The MLC store is the source of truth and every worker reconciles against it
  on its own interval. A change made through ``/admin/...`` reaches one worker only, so that worker
  also writes a new token to the ``changed`` stamp; every worker reads it every
  :data:`WATCH_INTERVAL` seconds and reconciles when it changed. A canary weight or a shadow set
  through one worker is thus routed by all of them within ``WATCH_INTERVAL`` plus one store read
  (plus the model load when a new version appears).
* **Readiness.** After each reconcile a worker writes what it routes and has loaded to
  ``routes/<pid>.json``; a model (or version) is ready on any worker only once every live worker
  that has written its file routes it (loaded it), so a deploy that waits for readiness returns
  when all of them answer.
* **Metrics.** prometheus_client's multiprocess mode (``PROMETHEUS_MULTIPROC_DIR`` = the
  ``prometheus`` folder): every worker writes its counters to files there and ``/metrics`` on any
  worker sums all of them, workers that died included, so no count is lost.

A worker whose parent is gone shuts itself down, so a killed supervisor leaves no orphans serving.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import shutil
import socket
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelops_mlc.errors import MlcError, NotFoundError

if TYPE_CHECKING:
    from modelops_mlc.config import Settings

__all__ = ["WATCH_INTERVAL", "Shared", "WorkerApp", "mark_stopped", "serve_workers"]

log = logging.getLogger(__name__)

_announced = itertools.count()
WATCH_INTERVAL = 0.1  # seconds between a worker's looks at the change stamp
METRICS_ENV = "PROMETHEUS_MULTIPROC_DIR"
# a worker that does not answer the supervisor's ping for this long is replaced; uvicorn's 5 s
# replaced workers still importing their stack on a busy machine, again and again
HEALTHCHECK_TIMEOUT = 60


class Shared:
    """The folder the processes of one runtime share: the Prometheus files and the change stamp."""

    def __init__(self, root: Path, supervisor: int | None = None) -> None:
        self.root = root
        self.supervisor = supervisor  # pid of the supervising process, in a worker
        self.metrics_dir = root / "prometheus"
        self.stamp = root / "changed"
        self.routes_dir = root / "routes"

    @classmethod
    def of(cls, settings: "Settings", runtime: str) -> "Shared":
        return cls(Path(settings.home) / "runtimes" / runtime)

    def reset(self) -> None:
        """Start clean: the counters of a previous run must not be summed into this one."""
        for folder in (self.metrics_dir, self.routes_dir):
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir(parents=True, exist_ok=True)
        self.announce()

    def announce(self) -> None:
        """Tell every worker the desired state changed (a new token, replaced atomically)."""
        tmp = self.root / f".changed.{os.getpid()}.{threading.get_ident()}"
        tmp.write_text(f"{time.time_ns()} {os.getpid()} {next(_announced)}")
        os.replace(tmp, self.stamp)

    def publish(self, routed: Iterable[str], loaded: Iterable[tuple[str, str]]) -> None:
        """Write what this worker routes (model names) and has loaded (name, version)."""
        path = self.routes_dir / f"{os.getpid()}.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"routed": sorted(routed), "loaded": sorted(f"{n}/{v}" for n, v in loaded)}))
        os.replace(tmp, path)

    def lagging(self, name: str, version: str | None = None) -> list[int]:
        """The live workers that do not route ``name`` (or have not loaded ``name``/``version``) yet."""
        behind = []
        for path in self.routes_dir.glob("*.json"):
            pid = int(path.stem)
            if not _alive(pid):
                continue
            try:
                state = json.loads(path.read_text())
            except (OSError, ValueError):
                behind.append(pid)
                continue
            if (name not in state["routed"]) if version is None else (f"{name}/{version}" not in state["loaded"]):
                behind.append(pid)
        return behind

    def seen(self) -> str | None:
        """The stamp's token now; a different one means a change was announced."""
        try:
            return self.stamp.read_text()
        except FileNotFoundError:
            return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass(frozen=True)
class WorkerApp:
    """The app factory uvicorn calls in each worker process (pickled to it: settings travel along)."""

    settings: "Settings"
    runtime: str
    shared_root: str
    log_level: str
    supervisor: int

    def __call__(self) -> Any:
        from modelops_mlc.runtimes.server import ModelServer

        if not logging.getLogger().handlers:  # a spawned worker is an entry point of its own
            logging.basicConfig(level=getattr(logging, self.log_level.upper(), logging.WARNING),
                                format="%(asctime)s %(levelname)s %(name)s[%(process)d]: %(message)s")
        return ModelServer(self.settings, self.runtime, heartbeat=False, shared=Shared(Path(self.shared_root), self.supervisor)).app


def beat(settings: "Settings", runtime: str) -> None:
    """One heartbeat of ``runtime`` into the catalog."""
    from modelops_mlc.runtimes.catalog import RuntimeCatalog

    try:
        RuntimeCatalog(settings).heartbeat(runtime)
    except NotFoundError:
        log.warning("runtime %s was removed from the runtime catalog; heartbeats are ignored", runtime)


def mark_stopped(settings: "Settings", runtime: str) -> None:
    """On shutdown, tell the runtime catalog at once instead of waiting for missed heartbeats."""
    from modelops_mlc.runtimes.catalog import RuntimeCatalog

    try:
        RuntimeCatalog(settings).mark(runtime, "unhealthy", "stopped")
    except MlcError as exc:
        log.warning("cannot mark runtime %s stopped: %s", runtime, exc)


def _heartbeats(settings: "Settings", runtime: str, stop: threading.Event) -> None:
    while not stop.wait(max(0.05, settings.runtime_heartbeat_interval)):
        try:
            beat(settings, runtime)
        except Exception as exc:  # the store may be briefly locked or away: try again next time
            log.warning("runtime %s: heartbeat failed: %s", runtime, exc)


def serve_workers(settings: "Settings", runtime: str, sock: socket.socket, workers: int, *,
                  log_level: str = "warning") -> None:
    """Serve ``runtime`` on the bound ``sock`` with ``workers`` processes until interrupted (blocks)."""
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    shared = Shared.of(settings, runtime)
    shared.root.mkdir(parents=True, exist_ok=True)
    shared.reset()
    os.environ[METRICS_ENV] = str(shared.metrics_dir)  # read by prometheus_client when a worker imports it
    config = uvicorn.Config(WorkerApp(settings, runtime, str(shared.root), log_level, os.getpid()), factory=True, workers=workers,
                            log_level=log_level, access_log=False, lifespan="on", timeout_graceful_shutdown=5,
                            timeout_worker_healthcheck=HEALTHCHECK_TIMEOUT)
    stop = threading.Event()
    heart = threading.Thread(target=_heartbeats, args=(settings, runtime, stop), name="mlc-heartbeat", daemon=True)
    heart.start()
    try:
        Multiprocess(config, sockets=[sock]).run()
    finally:
        stop.set()
        heart.join(5)
        mark_stopped(settings, runtime)
