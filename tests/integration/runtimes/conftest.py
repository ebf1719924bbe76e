"""One throwaway installation per test module: an MLflow sqlite registry with two versions of a
scikit-learn classifier, an MLC store, and real `mlc runtime serve` processes on loopback ports.

Runtimes need no engine; the fixtures here are module-scoped because starting a model server
and registering models each cost seconds.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from modelops_mlc.config import Settings
from tests.conftest import ROOT, UNREACHABLE_ENGINE, mlc_command

ADMIN_TOKEN = "integration-admin-token"
HEARTBEAT = 0.5


@dataclass
class RuntimeProcess:
    name: str
    proc: subprocess.Popen
    endpoint: str
    log: Path

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()


@dataclass
class Stack:
    home: Path
    env: dict[str, str]
    settings: Settings
    X: Any
    estimators: dict[str, Any]
    processes: list[RuntimeProcess] = field(default_factory=list)

    @property
    def admin_token(self) -> str:
        return ADMIN_TOKEN

    def settings_without_token(self) -> Settings:
        return self.settings.model_copy(update={"runtime_admin_token": None})

    def mlc(self, *args: str, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        full = dict(self.env)
        full.update(env or {})
        return subprocess.run([*mlc_command(), *map(str, args)], env=full, capture_output=True, text=True,
                              timeout=timeout, cwd=self.home)

    def serve(self, name: str, *tags: str, timeout: float = 90, options: tuple[str, ...] = (),
              env: dict[str, str] | None = None) -> RuntimeProcess:
        """Start `mlc runtime serve NAME --port 0 --tag ... OPTIONS` (with ``env`` over the stack's) and wait
        until it is in the catalog and ready."""
        from modelops_mlc.runtimes import RuntimeCatalog

        log = self.home / f"runtime-{name}.log"
        args = [*mlc_command(), "runtime", "serve", name, "--port", "0", "--log-level", "info"]
        for tag in tags:
            args += ["--tag", tag]
        args += options
        with open(log, "wb") as fh:
            proc = subprocess.Popen(args, env={**self.env, **(env or {})}, stdout=fh, stderr=subprocess.STDOUT,
                                    cwd=self.home)
        catalog = RuntimeCatalog(self.settings)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise AssertionError(f"runtime {name} exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
            try:
                rt = catalog.get(name)
            except Exception:
                rt = None
            if rt is not None and rt.pid == proc.pid and rt.endpoints:
                try:
                    if httpx.get(f"{rt.endpoints[0]}/v2/health/ready", timeout=2).status_code == 200:
                        handle = RuntimeProcess(name, proc, rt.endpoints[0], log)
                        self.processes.append(handle)
                        return handle
                except httpx.HTTPError:
                    pass
            time.sleep(0.2)
        proc.kill()
        raise AssertionError(f"runtime {name} did not become ready:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression

    from modelops_mlc.registry import Registry

    home = tmp_path_factory.mktemp("runtimes-home")
    values = {
        "MLC_HOME": str(home),
        "MLC_STORE_URL": f"sqlite:///{home / 'mlc.db'}",
        "MLFLOW_TRACKING_URI": f"sqlite:///{home / 'mlflow.db'}",
        "MLC_ENGINE_URL": UNREACHABLE_ENGINE,
        "MLC_RUNTIME_ADMIN_TOKEN": ADMIN_TOKEN,
        "MLC_RUNTIME_HEARTBEAT_INTERVAL": str(HEARTBEAT),
        "MLC_RUNTIME_RECONCILE_INTERVAL": "0.5",
        "MLC_RUNTIME_MISSED_HEARTBEATS": "3",
        "MLC_RUNTIME_DEPLOY_TIMEOUT": "90",
        "COLUMNS": "200",
    }
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLC_")}
    env.update(values)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    settings = Settings(
        home=home, store_url=values["MLC_STORE_URL"], mlflow_tracking_uri=values["MLFLOW_TRACKING_URI"],
        engine_url=UNREACHABLE_ENGINE, runtime_admin_token=SecretStr(ADMIN_TOKEN), runtime_heartbeat_interval=HEARTBEAT,
        runtime_reconcile_interval=0.5, runtime_missed_heartbeats=3, runtime_deploy_timeout=90,
    )
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    X = X.iloc[:, :8]
    registry = Registry(settings)
    estimators = {}
    for version, c in (("1", 1.0), ("2", 0.0005)):
        model = LogisticRegression(C=c, max_iter=5000).fit(X, y)
        info = registry.register("bc", estimator=model, input_example=X.head(3), tags={"TAG": "credit"})
        assert str(info.version) == version
        estimators[version] = model
    s = Stack(home=home, env=env, settings=settings, X=X, estimators=estimators)
    try:
        yield s
    finally:
        for handle in s.processes:
            handle.stop()
