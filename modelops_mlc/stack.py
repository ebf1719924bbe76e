"""The whole stack on one machine: engine, process deployment, worker, runtime and ticket watcher;
on request new-data folder watchers and an ``mlflow server`` with the webhook receiver.

``mlc up`` starts what is not running yet, ``mlc down`` stops all of it, ``mlc status`` reports
each part. Each daemon is an ``mlc`` sub-command (or ``mlflow server``) run in the background with
its PID file under ``$MLC_HOME/run`` and its log under ``$MLC_HOME/logs``. The optional parts
asked for (``--watch``, ``--mlflow-server``) are recorded in ``$MLC_HOME/run/stack.json``, so
``mlc status`` and ``mlc down`` know them without the flags.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from modelops_mlc.config import url_without_password
from modelops_mlc.errors import LocalEngineError, UsageError

if TYPE_CHECKING:
    from modelops_mlc.config import Settings

__all__ = ["Daemon", "Extras", "PartStatus", "Stack", "find_bpmn_dir"]

DEFAULT_RUNTIME_PORT = 8091
# MLflow refuses http:// and loopback webhook URLs by default (SSRF protection); the local stack's
# receiver is both, so its server allows them unless the environment says otherwise.
MLFLOW_LOCAL_DELIVERY = {"MLFLOW_WEBHOOK_ALLOWED_SCHEMES": "http,https", "MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS": "true"}


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
    command: list[str] | None = None  # a program other than `mlc` (``mlflow server``)
    marker: str = "mlc"  # in the command line of the live daemon (a reused pid is not ours)
    stop_group: bool = False  # stop its whole process group (``mlflow server`` runs uvicorn under it)

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
            if proc.status() == psutil.STATUS_ZOMBIE or self.marker not in " ".join(proc.cmdline()):
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
                self.command or [sys.executable, "-m", "modelops_mlc.cli.app", *self.args],
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
            if self.stop_group:
                os.killpg(pid, signal.SIGTERM)
            else:
                proc.terminate()
            proc.wait(grace)
        except psutil.TimeoutExpired:
            if self.stop_group:
                os.killpg(pid, signal.SIGKILL)
            else:
                proc.kill()
        except (psutil.NoSuchProcess, ProcessLookupError):
            pass
        return True

    def status(self) -> PartStatus:
        pid = self.pid()
        healthy, detail = (False, "not running")
        if pid is not None:
            healthy, detail = self.health() if self.health else (True, "running")
        return PartStatus(self.name, pid is not None, healthy, pid, detail, str(self.log_file))


@dataclass
class Extras:
    """The optional parts of a stack: folder watchers (folder, model) and an ``mlflow server`` over
    ``mlflow_backend`` on ``mlflow_port``; recorded in ``run/stack.json`` by `mlc up`."""

    watches: list[tuple[str, str]] = field(default_factory=list)
    mlflow_server: bool = False
    mlflow_backend: str | None = None
    mlflow_port: int | None = None

    @staticmethod
    def path(home: Path) -> Path:
        return Path(home) / "run" / "stack.json"

    @classmethod
    def load(cls, home: Path) -> "Extras":
        try:
            data = json.loads(cls.path(home).read_text())
        except (OSError, ValueError):
            return cls()
        return cls(watches=[(str(f), str(m)) for f, m in data.get("watches") or []],
                   mlflow_server=bool(data.get("mlflow_server")), mlflow_backend=data.get("mlflow_backend"),
                   mlflow_port=data.get("mlflow_port"))

    def save(self, home: Path) -> None:
        from modelops_mlc.daemon.status import write_status

        # No password on disk: `backend` takes it back from the settings of the `mlc up` that runs it.
        saved = asdict(self)
        if self.mlflow_backend:
            saved["mlflow_backend"] = url_without_password(self.mlflow_backend)
        write_status(self.path(home), saved)

    def backend(self, settings: "Settings") -> str:
        """The recorded registry database, with the settings' password when it is the same database."""
        recorded = str(self.mlflow_backend)
        current = settings.mlflow_tracking_uri
        return current if url_without_password(current) == url_without_password(recorded) else recorded

    @property
    def mlflow_url(self) -> str:
        return f"http://127.0.0.1:{self.mlflow_port}"


class Stack:
    """The parts `mlc up` manages for one ``MLC_HOME``: the defaults, the extras recorded by an
    earlier `mlc up`, and those asked for now (``watches``: (folder, model) pairs; ``mlflow_server``)."""

    def __init__(self, settings: "Settings", *, runtime_port: int = DEFAULT_RUNTIME_PORT,
                 bpmn_dir: Path | None = None, watches: Sequence[tuple[Path | str, str]] = (),
                 mlflow_server: bool = False) -> None:
        from modelops_mlc.engine.local import LocalEngine

        self.settings = settings
        self.engine = LocalEngine(settings)
        self.runtime_port = runtime_port
        self.bpmn_dir = bpmn_dir or find_bpmn_dir()
        home = settings.home
        self.extras = self._extras(watches, mlflow_server)
        # The daemons read the same settings as this process, whatever flags produced them; with
        # an MLflow server they write to the registry through it, so that it delivers webhooks.
        env = {
            "MLC_HOME": str(home),
            "MLC_ENGINE_URL": settings.engine_url,
            "MLC_STORE_URL": settings.store_url,
            "MLFLOW_TRACKING_URI": self.extras.mlflow_url if self.extras.mlflow_server else settings.mlflow_tracking_uri,
        }
        self.daemons = [
            Daemon("worker", ["worker", "start", "--log-format", "json", "--grace-period", "20"], home,
                   self._worker_health, env),
            Daemon(
                "runtime",
                ["runtime", "serve", "local", "--port", str(runtime_port), "--tag", "stage=QA,PROD"],
                home, self._runtime_health, env,
            ),
            Daemon("ticket-watcher", ["ticket", "watch", "--log-format", "json"], home,
                   lambda: self._watcher_health("ticket-watcher"), env),
        ]
        self.daemons += [self._folder_watcher(folder, model, env) for folder, model in self.extras.watches]
        if self.extras.mlflow_server:
            self.daemons += self._mlflow_daemons(env)

    # -- the extras -----------------------------------------------------------------------------

    def _extras(self, watches: Sequence[tuple[Path | str, str]], mlflow_server: bool) -> Extras:
        extras = Extras.load(self.settings.home)
        for folder, model in watches:
            path = Path(folder).expanduser()
            if not path.is_dir():
                raise UsageError(f"--watch: {folder} is not a directory")
            pair = (str(path.resolve()), model)
            if pair not in extras.watches:
                extras.watches.append(pair)
        if mlflow_server and not extras.mlflow_server:
            backend = self.settings.mlflow_tracking_uri
            if backend.startswith(("http://", "https://")):
                raise UsageError(f"--mlflow-server serves the registry database, but MLFLOW_TRACKING_URI is already "
                                 f"a server ({backend})", hint="unset MLFLOW_TRACKING_URI or point it at a database")
            extras.mlflow_server, extras.mlflow_backend, extras.mlflow_port = True, backend, self.settings.mlflow_port
        return extras

    def _folder_watcher(self, folder: str, model: str, env: dict[str, str]) -> Daemon:
        from modelops_mlc.monitoring.watch import watcher_name

        name = watcher_name(folder, model)
        return Daemon(name, ["monitor", "watch", folder, "--model", model, "--log-format", "json"], self.settings.home,
                      lambda: self._watcher_health(name), env)

    def _mlflow_daemons(self, env: dict[str, str]) -> list[Daemon]:
        """``mlflow server`` over the stack's registry database (artifacts under $MLC_HOME, written
        by the clients directly, as the embedded registry does) and the webhook receiver."""
        backend = self.extras.backend(self.settings)
        self.settings.artifacts_dir.mkdir(parents=True, exist_ok=True)
        # the database URL (with its password) goes by environment, not on the command line
        server_env = {**env, "MLFLOW_TRACKING_URI": backend, "MLFLOW_BACKEND_STORE_URI": backend,
                      **{k: os.environ.get(k, v) for k, v in MLFLOW_LOCAL_DELIVERY.items()}}
        command = [sys.executable, "-m", "mlflow", "server",
                   "--default-artifact-root", self.settings.artifacts_dir.resolve().as_uri(), "--no-serve-artifacts",
                   "--host", "127.0.0.1", "--port", str(self.extras.mlflow_port), "--workers", "1"]
        return [
            Daemon("mlflow-server", [], self.settings.home, self._mlflow_health, server_env, command=command,
                   marker="mlflow", stop_group=True),
            # The receiver only reads model tags: straight from the database, like the server.
            Daemon("webhook-receiver", ["webhook", "serve", "--port", str(self.settings.webhook_port),
                                        "--log-format", "json"], self.settings.home, self._receiver_health,
                   {**env, "MLFLOW_TRACKING_URI": backend}),
        ]

    def _webhook_encryption_key(self) -> str:
        """MLflow encrypts webhook secrets with this key; a key of its own per start would leave the
        stored secret unreadable after a restart, so the stack keeps one under $MLC_HOME (made by
        the first `mlc up --mlflow-server`)."""
        given = os.environ.get("MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY")
        if given:
            return given
        path = self.settings.home / "run" / "mlflow-webhook.key"
        if not path.exists():
            from cryptography.fernet import Fernet

            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(Fernet.generate_key().decode())
        return path.read_text().strip()

    def _register_webhook(self) -> str:
        from modelops_mlc.monitoring.webhooks import register

        secret = self.settings.webhook_secret
        hook = register(self.settings, secret=secret.get_secret_value() if secret else "",
                        tracking_uri=self.extras.mlflow_url)
        return str(hook["url"])

    # -- health checks --------------------------------------------------------------------------

    def _runtime_health(self) -> tuple[bool, str]:
        return _answers(f"http://127.0.0.1:{self.runtime_port}/v2/health/ready")

    def _worker_health(self) -> tuple[bool, str]:
        from modelops_mlc.daemon import running_workers

        live = running_workers(self.settings.home, prune=False)
        if not live:
            return False, "no worker status yet"
        in_flight = sum(len(w.get("in_flight") or []) for w in live)
        return True, f"{len(live)} worker(s) on {self.settings.engine_url}, {in_flight} task(s) in flight"

    def _watcher_health(self, name: str) -> tuple[bool, str]:
        from modelops_mlc.daemon import running

        w = next((s for s in running(self.settings.home, "watchers", prune=False) if s.get("name") == name), None)
        if w is None:
            return True, "running, no round finished yet"
        problems = f", {len(w['errors'])} problem(s) last round" if w.get("errors") else ""
        if "folder" in w:
            return True, (f"{w['folder']} for {w.get('model_id')}: {w.get('fired', 0)} file(s) fired, "
                          f"{len(w.get('waiting') or [])} waiting{problems}")
        return True, f"{w.get('rounds', 0)} round(s), {w.get('delivered', 0)} change(s) delivered{problems}"

    def _mlflow_health(self) -> tuple[bool, str]:
        return _answers(f"{self.extras.mlflow_url}/health")

    def _receiver_health(self) -> tuple[bool, str]:
        from modelops_mlc.monitoring.webhooks import PATH

        ok, detail = _answers(f"http://127.0.0.1:{self.settings.webhook_port}/health")
        return ok, (f"http://127.0.0.1:{self.settings.webhook_port}{PATH}" if ok else detail)

    def _engine_is_local(self) -> bool:
        return self.settings.engine_url.rstrip("/") == self.engine.url

    # -- operations -----------------------------------------------------------------------------

    def up(self, on_step: Callable[[str], None] = lambda _m: None, *,
           parts: Collection[str] | None = None) -> list[PartStatus]:
        """Start every part that is not running (or only the daemons named in ``parts``); deploy
        bpmn/ (changed resources only)."""
        from modelops_mlc.engine import EngineClient

        if self.extras.mlflow_server and not (self.settings.webhook_secret and
                                              self.settings.webhook_secret.get_secret_value()):
            raise UsageError("--mlflow-server starts the webhook receiver, which needs MLC_WEBHOOK_SECRET",
                             hint="export MLC_WEBHOOK_SECRET=$(openssl rand -hex 32)")
        if self._engine_is_local():
            if self.engine.running_pid() is None:
                on_step("starting the engine")
                self.engine.start(on_build_line=lambda _l: on_step("building the engine jar (first use)"))
        backend = self.extras.backend(self.settings) if self.extras.mlflow_server else self.settings.mlflow_tracking_uri
        if self.extras.mlflow_server or str(backend).startswith(("postgresql", "mysql", "mssql")):
            # MLflow migrates a fresh database on first open; the daemons and `mlflow server` would
            # do it at once and collide (sqlite's lock file binds only our openers, not the server),
            # so one opener does it first.
            on_step("creating MLflow's tables")
            import mlflow  # noqa: F401  (configures its loggers on import; quieten them afterwards)

            from modelops_mlc.registry import Registry
            from modelops_mlc.registry.quiet import quiet_mlflow

            with quiet_mlflow():
                Registry(self.settings.model_copy(update={"mlflow_tracking_uri": backend})).client
        if self.bpmn_dir is not None:
            on_step(f"deploying {self.bpmn_dir}")
            with EngineClient(self.settings) as client:
                client.ping()
                client.deploy_processes([self.bpmn_dir], name="mlc-processes", changed_only=True)
        self.extras.save(self.settings.home)  # before any start: `mlc down` must know all it may have started
        chosen = [d for d in self.daemons if parts is None or d.name in parts]
        for daemon in chosen:
            if daemon.name == "mlflow-server":
                daemon.env["MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY"] = self._webhook_encryption_key()
            on_step(f"starting {daemon.name}")
            daemon.start()
        deadline = time.monotonic() + 120  # `mlflow server` alone takes a minute on a loaded machine
        while time.monotonic() < deadline:
            states = [self._engine_status(), *(d.status() for d in chosen)]
            if all(p.healthy for p in states):
                break
            dead = [p for p in states[1:] if not p.running]
            if dead:
                raise LocalEngineError(
                    f"{dead[0].name} exited right after start", hint=f"see its log: {dead[0].log}")
            on_step("waiting for " + ", ".join(p.name for p in states if not p.healthy))
            time.sleep(0.5)
        if any(d.name == "mlflow-server" for d in chosen) and all(p.healthy for p in states):
            on_step("registering the webhook on the MLflow server")
            self._register_webhook()
        return self.status()

    def down(self) -> list[str]:
        stopped = [d.name for d in reversed(self.daemons) if d.stop()]
        Extras.path(self.settings.home).unlink(missing_ok=True)
        if self._engine_is_local() and self.engine.running_pid() is not None:
            self.engine.stop()
            stopped.append("engine")
        return stopped

    def status(self) -> list[PartStatus]:
        return [self._engine_status(), *(d.status() for d in self.daemons)]

    def _engine_status(self) -> PartStatus:
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
        return first


def _answers(url: str) -> tuple[bool, str]:
    """(healthy, detail) of an HTTP health endpoint: 200 within two seconds."""
    import httpx

    base = url.split("/", 3)
    try:
        ok = httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False, f"{'/'.join(base[:3])} does not answer"
    return ok, "/".join(base[:3])


def check_bpmn_dir(path: Path | None) -> Path:
    if path is None or not path.is_dir():
        raise UsageError(f"no bpmn directory at {path}")
    return path
