"""The whole stack on one machine: engine, process deployment, worker, runtime and ticket watcher.

``mlc up`` starts what is not running yet, ``mlc down`` stops all of it, ``mlc status`` reports
each part. Each daemon is an ``mlc`` sub-command run in the background with its PID file under
``$MLC_HOME/run`` and its log under ``$MLC_HOME/logs``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from modelops_mlc.errors import LocalEngineError, UsageError

if TYPE_CHECKING:
    from modelops_mlc.config import Settings

__all__ = ["Daemon", "PartStatus", "Stack", "find_bpmn_dir"]

DEFAULT_RUNTIME_PORT = 8091


def find_bpmn_dir() -> Path | None:
    """``bpmn/`` of this project (a source checkout or editable install), if present."""
    candidate = Path(__file__).resolve().parents[1] / "bpmn"
    return candidate if candidate.is_dir() else None


@dataclass
class PartStatus:
    name: str
    running: bool
    healthy: bool
    pid: int | None = None
    detail: str = ""
    log: str | None = None


@dataclass
class Daemon:
    """One background ``mlc`` sub-command with a PID file and a log."""

    name: str
    args: list[str]
    home: Path
    health: Callable[[], tuple[bool, str]] | None = None
    env: dict[str, str] = field(default_factory=dict)

    @property
    def pid_file(self) -> Path:
        return self.home / "run" / f"{self.name}.pid"

    @property
    def log_file(self) -> Path:
        return self.home / "logs" / f"{self.name}.log"

    def pid(self) -> int | None:
        import psutil

        try:
            pid = int(self.pid_file.read_text().strip())
            proc = psutil.Process(pid)
            if proc.status() == psutil.STATUS_ZOMBIE or "mlc" not in " ".join(proc.cmdline()):
                return None
            return pid
        except (FileNotFoundError, ValueError, psutil.Error):
            return None

    def start(self) -> int:
        running = self.pid()
        if running:
            return running
        self.pid_file.parent.mkdir(parents=True, exist_ok=True)
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        with self.log_file.open("ab") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "modelops_mlc.cli.app", *self.args],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env={**os.environ, **self.env}, start_new_session=True,
            )
        self.pid_file.write_text(str(proc.pid))
        return proc.pid

    def stop(self, grace: float = 30.0) -> bool:
        import psutil

        pid = self.pid()
        self.pid_file.unlink(missing_ok=True)
        if pid is None:
            return False
        try:
            proc = psutil.Process(pid)
            proc.terminate()
            proc.wait(grace)
        except psutil.TimeoutExpired:
            proc.kill()
        except psutil.NoSuchProcess:
            pass
        return True

    def status(self) -> PartStatus:
        pid = self.pid()
        healthy, detail = (False, "not running")
        if pid is not None:
            healthy, detail = self.health() if self.health else (True, "running")
        return PartStatus(self.name, pid is not None, healthy, pid, detail, str(self.log_file))


class Stack:
    """The parts `mlc up` manages for one ``MLC_HOME``."""

    def __init__(self, settings: "Settings", *, runtime_port: int = DEFAULT_RUNTIME_PORT,
                 bpmn_dir: Path | None = None) -> None:
        from modelops_mlc.engine.local import LocalEngine

        self.settings = settings
        self.engine = LocalEngine(settings)
        self.runtime_port = runtime_port
        self.bpmn_dir = bpmn_dir or find_bpmn_dir()
        home = settings.home
        # The daemons read the same settings as this process, whatever flags produced them.
        env = {
            "MLC_HOME": str(home),
            "MLC_ENGINE_URL": settings.engine_url,
            "MLC_STORE_URL": settings.store_url,
            "MLFLOW_TRACKING_URI": settings.mlflow_tracking_uri,
        }
        self.daemons = [
            Daemon("worker", ["worker", "start", "--log-format", "json", "--grace-period", "20"], home,
                   self._worker_health, env),
            Daemon(
                "runtime",
                ["runtime", "serve", "local", "--port", str(runtime_port), "--tag", "stage=QA,PROD"],
                home, self._runtime_health, env,
            ),
            Daemon("ticket-watcher", ["ticket", "watch", "--log-format", "json"], home, self._watcher_health, env),
        ]

    # -- health checks --------------------------------------------------------------------------

    def _runtime_health(self) -> tuple[bool, str]:
        import httpx

        url = f"http://127.0.0.1:{self.runtime_port}"
        try:
            ok = httpx.get(f"{url}/v2/health/ready", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False, f"{url} does not answer"
        return ok, url

    def _worker_health(self) -> tuple[bool, str]:
        from modelops_mlc.daemon import running_workers

        live = running_workers(self.settings.home, prune=False)
        if not live:
            return False, "no worker status yet"
        in_flight = sum(len(w.get("in_flight") or []) for w in live)
        return True, f"{len(live)} worker(s) on {self.settings.engine_url}, {in_flight} task(s) in flight"

    def _watcher_health(self) -> tuple[bool, str]:
        from modelops_mlc.daemon import running

        live = running(self.settings.home, "watchers", prune=False)
        if not live:
            return True, "running, no round finished yet"
        w = live[0]
        problems = f", {len(w['errors'])} problem(s) last round" if w.get("errors") else ""
        return True, f"{w.get('rounds', 0)} round(s), {w.get('delivered', 0)} change(s) delivered{problems}"

    def _engine_is_local(self) -> bool:
        return self.settings.engine_url.rstrip("/") == self.engine.url

    # -- operations -----------------------------------------------------------------------------

    def up(self, on_step: Callable[[str], None] = lambda _m: None) -> list[PartStatus]:
        """Start every part that is not running; deploy bpmn/ (changed resources only)."""
        from modelops_mlc.engine import EngineClient

        if self._engine_is_local():
            if self.engine.running_pid() is None:
                on_step("starting the engine")
                self.engine.start(on_build_line=lambda _l: on_step("building the engine jar (first use)"))
        if self.bpmn_dir is not None:
            on_step(f"deploying {self.bpmn_dir}")
            with EngineClient(self.settings) as client:
                client.ping()
                client.deploy_processes([self.bpmn_dir], name="mlc-processes", changed_only=True)
        for daemon in self.daemons:
            on_step(f"starting {daemon.name}")
            daemon.start()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            parts = self.status()
            if all(p.healthy for p in parts):
                break
            dead = [p for p in parts[1:] if not p.running]
            if dead:
                raise LocalEngineError(
                    f"{dead[0].name} exited right after start", hint=f"see its log: {dead[0].log}")
            on_step("waiting for " + ", ".join(p.name for p in parts if not p.healthy))
            time.sleep(0.5)
        return self.status()

    def down(self) -> list[str]:
        stopped = [d.name for d in reversed(self.daemons) if d.stop()]
        if self._engine_is_local() and self.engine.running_pid() is not None:
            self.engine.stop()
            stopped.append("engine")
        return stopped

    def status(self) -> list[PartStatus]:
        eng = self.engine.status() if self._engine_is_local() else None
        if eng is not None:
            first = PartStatus("engine", eng.running, eng.answering, eng.pid,
                               f"{eng.url} (Camunda {eng.version})" if eng.answering
                               else (eng.note or ("not answering" if eng.running else "not running")),
                               eng.log)
        else:
            from modelops_mlc.engine import EngineClient
            from modelops_mlc.errors import EngineError

            try:
                with EngineClient(self.settings) as client:
                    client.ping()
                first = PartStatus("engine", True, True, None, f"{self.settings.engine_url} (external)")
            except EngineError as exc:
                first = PartStatus("engine", False, False, None, exc.message)
        return [first, *(d.status() for d in self.daemons)]


def check_bpmn_dir(path: Path | None) -> Path:
    if path is None or not path.is_dir():
        raise UsageError(f"no bpmn directory at {path}")
    return path
