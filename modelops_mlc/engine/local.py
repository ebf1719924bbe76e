"""The local engine process: build the stock Camunda jar with Maven, start it, stop it, read its log.

State lives under ``$MLC_HOME/engine``: ``engine.pid``, ``engine.log`` and the H2 database
(``h2/``). The jar is built from ``engine/pom.xml`` of this project (or taken from
``MLC_ENGINE_JAR``).

A named node (``mlc engine start --node a --port 8081``) is one engine of a cluster: several
such processes share one PostgreSQL database (``MLC_POSTGRES_URL`` or ``MLC_ENGINE_JDBC_URL``),
each with its PID file and log under ``$MLC_HOME/engine/nodes/<name>``, and each runs the job
executor. The name is the engine's ``hostname``, which the history's job log records for every
job a node ran.

The engine binds ``MLC_ENGINE_HOST`` (``--host``; loopback by default). Beyond loopback it must
authenticate its REST API (``MLC_ENGINE_AUTH=basic`` with a password of your own) unless started
with ``insecure``; with basic auth Camunda's authorization is on too, and every start makes the
MLC groups and their grants (:mod:`.authorization`). See docs/security.md.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import httpx

from modelops_mlc.config import client_host, is_loopback, redact_url
from modelops_mlc.engine import gateway
from modelops_mlc.errors import LocalEngineError, MlcError, UsageError

if TYPE_CHECKING:
    from modelops_mlc.config import Settings

__all__ = ["EngineStatus", "LocalEngine", "find_engine_project"]

JAR_NAME = "mlc-engine.jar"
ID_PATTERN = "[a-zA-Z0-9][a-zA-Z0-9_.-]*"  # user and group ids the engine accepts when authorization is on


def find_engine_project() -> Path | None:
    """The ``engine/`` Maven project beside the package (a source checkout or editable install)."""
    candidates = [Path(os.environ["MLC_ENGINE_PROJECT"])] if os.environ.get("MLC_ENGINE_PROJECT") else []
    candidates.append(Path(__file__).resolve().parents[2] / "engine")
    for c in candidates:
        if (c / "pom.xml").is_file():
            return c
    return None


@dataclass
class EngineStatus:
    running: bool
    answering: bool
    pid: int | None
    url: str
    port: int
    log: str
    jar: str | None
    database: str
    node: str | None = None
    host: str | None = None
    authorization: bool = False
    version: str | None = None
    uptime_s: float | None = None
    note: str | None = None


def _port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("0.0.0.0", port))
        except OSError:
            return True
    return False


def tail(path: Path, lines: int = 20) -> list[str]:
    if not path.exists():
        return []
    with path.open("r", errors="replace") as fh:
        return [line.rstrip("\n") for line in deque(fh, maxlen=lines)]


def root_cause(log_file: Path) -> str:
    """The innermost 'Caused by' of the last start-up failure in the log, else its last ERROR line."""
    lines = tail(log_file, 400)
    causes = [l.split("Caused by: ", 1)[1] for l in lines if "Caused by: " in l]
    if causes:
        return causes[-1].strip()
    errors = [l for l in lines if " ERROR " in l]
    return errors[-1].split(" : ", 1)[-1].strip() if errors else "see the log"


_NODE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")


class LocalEngine:
    """Lifecycle of one engine process bound to ``port`` (default ``settings.engine_port``) with
    state in ``$MLC_HOME/engine``, or in ``$MLC_HOME/engine/nodes/<node>`` for a cluster node."""

    def __init__(
        self, settings: "Settings", *, node: str | None = None, port: int | None = None, host: str | None = None
    ) -> None:
        if node is not None and not _NODE_NAME.match(node):
            raise UsageError(f"invalid node name {node!r}: use letters, digits, '.', '_' or '-' (at most 63)")
        self.settings = settings
        self.node = node
        self.dir = settings.home / "engine" / "nodes" / node if node else settings.home / "engine"
        self.pid_file = self.dir / "engine.pid"
        self.log_file = self.dir / "engine.log"
        self.port = port or settings.engine_port
        self.host = host or settings.engine_host
        self.url = f"http://{client_host(self.host)}:{self.port}/engine-rest"
        self.project = find_engine_project()

    # -- the jar ------------------------------------------------------------------------------

    @property
    def jar(self) -> Path | None:
        override = os.environ.get("MLC_ENGINE_JAR")
        if override:
            return Path(override)
        if self.project is None:
            return None
        return self.project / "target" / JAR_NAME

    def jar_ready(self) -> bool:
        jar = self.jar
        return jar is not None and jar.is_file()

    def build(self, on_line: Callable[[str], None] | None = None) -> Path:
        """Build the jar with Maven: offline when the dependencies are already local, online otherwise."""
        if self.project is None:
            raise LocalEngineError(
                "cannot find the engine/ Maven project to build the engine jar",
                hint="run from a source checkout, or set MLC_ENGINE_JAR to a built mlc-engine.jar",
            )
        mvn = shutil.which("mvn")
        if mvn is None:
            raise LocalEngineError("Maven (mvn) not found on PATH: it is needed once to build the engine",
                                   hint="install Maven, or set MLC_ENGINE_JAR to a built jar")
        self._require_java()
        marker = self.project / "target" / ".deps-resolved"
        attempts = [["-o"], []] if marker.exists() else [[]]
        last: list[str] = []
        for extra in attempts:
            cmd = [mvn, "-B", "-DskipTests", *extra, "package"]
            proc = subprocess.Popen(cmd, cwd=self.project, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            buf: deque[str] = deque(maxlen=30)
            assert proc.stdout is not None
            for line in proc.stdout:
                line = line.rstrip()
                buf.append(line)
                if on_line:
                    on_line(line)
            if proc.wait() == 0 and self.jar_ready():
                marker.touch()
                return self.jar  # type: ignore[return-value]
            last = list(buf)
        errors = [l for l in last if "ERROR" in l] or last[-5:]
        raise LocalEngineError(f"engine build failed: {errors[0] if errors else 'mvn exited non-zero'}",
                               hint=f"run `mvn -B package` in {self.project} to see the whole output")

    @staticmethod
    def _require_java() -> str:
        java = shutil.which("java")
        if java is None:
            raise LocalEngineError("Java not found on PATH: the engine needs a JDK or JRE 17 or newer",
                                   hint="install OpenJDK 17 (e.g. apt-get install openjdk-17-jre-headless)")
        return java

    # -- the process --------------------------------------------------------------------------

    def _read_pid(self) -> int | None:
        try:
            return int(self.pid_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None

    @staticmethod
    def _is_engine_process(pid: int) -> bool:
        import psutil

        try:
            proc = psutil.Process(pid)
            if proc.status() == psutil.STATUS_ZOMBIE:
                return False
            return any(JAR_NAME in part or "MlcEngineApplication" in part for part in proc.cmdline())
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            return False

    def running_pid(self) -> int | None:
        """The PID of our engine when it runs; a PID file naming a dead process counts as not running."""
        pid = self._read_pid()
        return pid if pid is not None and self._is_engine_process(pid) else None

    def answering(self, timeout: float = 2.0) -> str | None:
        """The engine's version when ``/engine-rest/version`` answers, else None."""
        try:
            r = httpx.get(f"{self.url}/version", headers=gateway.headers(self.settings), timeout=timeout)
        except (httpx.HTTPError, UsageError):
            return None
        if r.status_code == 200:
            return str(r.json().get("version"))
        return None

    def _env(self) -> dict[str, str]:
        s = self.settings
        env = dict(os.environ)
        env.update({
            "MLC_HOME": str(s.home),
            "MLC_ENGINE_PORT": str(self.port),
            "MLC_ENGINE_AUTH": s.engine_auth,
            "MLC_ENGINE_USER": s.engine_user,
            "MLC_ENGINE_PASSWORD": s.engine_password.get_secret_value(),
        })
        if s.engine_jdbc_url:
            env["MLC_ENGINE_JDBC_URL"] = s.engine_jdbc_url
        if s.engine_jdbc_user:
            env["MLC_ENGINE_JDBC_USER"] = s.engine_jdbc_user
        if s.engine_jdbc_password:
            env["MLC_ENGINE_JDBC_PASSWORD"] = s.engine_jdbc_password.get_secret_value()
        return env

    @property
    def authorization_on(self) -> bool:
        """Camunda's authorization checks are on exactly when the REST API authenticates."""
        return self.settings.engine_auth == "basic"

    def check_exposure(self, *, insecure: bool = False) -> None:
        """Refuse to listen beyond loopback without REST authentication (unless ``insecure``)."""
        if insecure or is_loopback(self.host):
            return
        s = self.settings
        if s.engine_auth != "basic":
            raise UsageError(
                f"refusing to start the engine on {self.host} without authentication: set MLC_ENGINE_AUTH=basic "
                "with MLC_ENGINE_USER and MLC_ENGINE_PASSWORD (or pass --insecure)",
                hint="docs/security.md: running the engine off loopback")
        if s.engine_password.get_secret_value() == "demo":
            raise UsageError(
                f"refusing to start the engine on {self.host} with the default password: set MLC_ENGINE_PASSWORD "
                "(or pass --insecure)", hint="docs/security.md: running the engine off loopback")

    def command(self, java: str, jar: Path) -> list[str]:
        """The command line that runs the engine (secrets go by environment, never here)."""
        java_opts = os.environ.get("MLC_ENGINE_JAVA_OPTS", "-Xms256m -Xmx1g -XX:+UseSerialGC").split()
        if self.node:
            java_opts.append(f"-Dcamunda.bpm.generic-properties.properties.hostname={self.node}")
        args = [f"--server.address={self.host}"]
        if self.authorization_on:
            args.append("--camunda.bpm.authorization.enabled=true")
            # ids like mlc-reviewers or jane.doe (Camunda's default allows letters and digits only)
            for kind in ("user", "group"):
                args.append(f"--camunda.bpm.generic-properties.properties.{kind}-resource-whitelist-pattern={ID_PATTERN}")
        return [java, *java_opts, "-jar", str(jar), *args]

    def start(
        self,
        *,
        insecure: bool = False,
        timeout: float | None = None,
        on_build_line: Callable[[str], None] | None = None,
        on_wait: Callable[[float], None] | None = None,
    ) -> EngineStatus:
        """Start the engine in the background and return once its REST API answers (with
        authorization on, once the MLC groups exist too)."""
        self.check_exposure(insecure=insecure)
        java = self._require_java()
        pid = self.running_pid()
        if pid is not None:
            raise LocalEngineError(f"the engine is already running (pid {pid}) at {self.url}",
                                   hint="`mlc engine status` shows it; `mlc engine stop` stops it")
        if self.node and not self.settings.engine_jdbc_url:
            raise UsageError(f"engine node {self.node!r} needs a database the nodes share",
                             hint="set MLC_POSTGRES_URL (or MLC_ENGINE_JDBC_URL, _USER and _PASSWORD)")
        if self.pid_file.exists():
            self.pid_file.unlink()  # stale: its process is gone
        if _port_in_use(self.port):
            raise LocalEngineError(f"port {self.port} is already in use by another program",
                                   hint="stop that program or choose another port with MLC_ENGINE_PORT")
        if not self.jar_ready():
            self.build(on_build_line)
        jar = self.jar
        assert jar is not None
        self.dir.mkdir(parents=True, exist_ok=True)
        with self.log_file.open("ab") as log:
            node = f" node {self.node}" if self.node else ""
            log.write(f"\n--- mlc engine start {time.strftime('%Y-%m-%dT%H:%M:%S')} {self.host}:{self.port}{node} ---\n"
                      .encode())
            log.flush()
            proc = subprocess.Popen(
                self.command(java, jar),
                cwd=self.dir, env=self._env(), stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True,
            )
        self.pid_file.write_text(str(proc.pid))
        limit = timeout if timeout is not None else self.settings.engine_start_timeout
        started = time.monotonic()
        while True:
            waited = time.monotonic() - started
            if proc.poll() is not None:
                self.pid_file.unlink(missing_ok=True)
                raise LocalEngineError(
                    f"the engine exited during start-up (code {proc.returncode}): {root_cause(self.log_file)}",
                    hint=f"full log: {self.log_file} (or `mlc engine logs`)",
                )
            version = self.answering(timeout=1.0)
            if version:
                if self.authorization_on:
                    try:
                        self.ensure_groups()
                    except MlcError as exc:
                        self._terminate(proc.pid)
                        self.pid_file.unlink(missing_ok=True)
                        raise LocalEngineError(f"the engine started but its MLC groups could not be made: {exc.message}",
                                               hint=exc.hint or f"full log: {self.log_file}") from None
                return self.status()
            if waited > limit:
                self._terminate(proc.pid)
                self.pid_file.unlink(missing_ok=True)
                raise LocalEngineError(
                    f"the engine did not answer within {limit:.0f} s; last log lines:\n"
                    + "\n".join(tail(self.log_file, 15)),
                    hint=f"full log: {self.log_file}; raise MLC_ENGINE_START_TIMEOUT on a slow machine",
                )
            if on_wait:
                on_wait(waited)
            time.sleep(0.25)

    def ensure_groups(self) -> list[str]:
        """Create the MLC groups and their grants in this engine where missing (idempotent)."""
        from modelops_mlc.engine.authorization import ensure_groups
        from modelops_mlc.engine.client import EngineClient

        with EngineClient(self.settings.model_copy(update={"engine_url": self.url})) as client:
            return ensure_groups(client)

    @staticmethod
    def _terminate(pid: int, grace: float = 30.0) -> None:
        """SIGTERM (Spring shuts the engine down cleanly), SIGKILL after ``grace`` seconds."""
        import psutil

        try:
            proc = psutil.Process(pid)
            proc.terminate()
            proc.wait(grace)
        except psutil.NoSuchProcess:
            return
        except psutil.TimeoutExpired:
            proc.kill()
            proc.wait(10)

    def stop(self) -> str:
        """Stop the engine; says what it did (a missing or stale PID file is not an error)."""
        pid = self._read_pid()
        if pid is None:
            return "the engine is not running"
        if not self._is_engine_process(pid):
            self.pid_file.unlink(missing_ok=True)
            return f"the engine was not running; removed the stale PID file ({pid})"
        self._terminate(pid)
        self.pid_file.unlink(missing_ok=True)
        return f"stopped the engine (pid {pid})"

    def status(self) -> EngineStatus:
        pid = self.running_pid()
        version = self.answering() if pid else None
        uptime = None
        if pid:
            import psutil

            try:
                uptime = round(time.time() - psutil.Process(pid).create_time(), 1)
            except psutil.Error:
                uptime = None
        note = None
        if pid is None and self.pid_file.exists():
            note = "stale PID file (its process is gone); `mlc engine start` will replace it"
        jar = self.jar
        return EngineStatus(
            running=pid is not None,
            answering=version is not None,
            pid=pid,
            url=self.url,
            port=self.port,
            log=str(self.log_file),
            jar=str(jar) if jar and jar.exists() else None,
            database=redact_url(self.settings.engine_jdbc_url) if self.settings.engine_jdbc_url else f"H2 file {self.dir / 'h2'}",
            node=self.node,
            host=self.host,
            authorization=self.authorization_on,
            version=version,
            uptime_s=uptime,
            note=note,
        )

