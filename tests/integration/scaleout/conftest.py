"""Fixtures of the scale-out tests: a two-node engine cluster over one PostgreSQL database of the
session's cluster (tests/support/postgres.py), and a worker environment pointing at both nodes.

The nodes get their database the way a user gives it, as ``MLC_POSTGRES_URL``
(``Settings.postgres_url``), and the engine creates its schema there.

Both nodes are started as a user starts them, ``mlc engine start --node NAME --port P`` with
``MLC_POSTGRES_URL`` set, one after the other (the first creates the schema); the tests read and
kill them through LocalEngine. Locks are short so that a killed node's work comes back
within seconds: job locks via ``camunda.bpm.job-execution.lock-time-in-millis``, external task
locks via the worker's ``--lock-duration``. Each node writes a Tomcat access log, so a test can
see which node a worker's fetches went to.
"""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from modelops_mlc.config import Settings
from modelops_mlc.engine.local import LocalEngine
from tests.conftest import free_port, mlc_command
from tests.support.markers import skip_unless_selected
from tests.support.postgres import PostgresCluster

JOB_LOCK_MS = 10_000
NODE_NAMES = ("a", "b")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The long runs (marker ``cluster``) only when asked for with ``-m cluster`` (make test-cluster)."""
    skip_unless_selected(config, items, "cluster", "long cluster run: `make test-cluster`")


@dataclass
class Cluster:
    settings: Settings  # MLC_ENGINE_URL names both nodes; postgres_url the database
    nodes: dict[str, LocalEngine]
    access_logs: dict[str, Path]

    @property
    def url(self) -> str:
        return self.settings.engine_url

    def start(self, name: str) -> None:
        node = self.nodes[name]
        java_opts = " ".join([
            "-Xms128m -Xmx512m -XX:+UseSerialGC -XX:TieredStopAtLevel=1",
            f"-Dcamunda.bpm.job-execution.lock-time-in-millis={JOB_LOCK_MS}",
            "-Dserver.tomcat.accesslog.enabled=true -Dserver.tomcat.accesslog.buffered=false",
            f"-Dserver.tomcat.accesslog.directory={self.access_logs[name].parent}",
            f"-Dserver.tomcat.accesslog.prefix={self.access_logs[name].stem}",
            "-Dserver.tomcat.accesslog.suffix=.log -Dserver.tomcat.accesslog.file-date-format=",
        ])
        env = {**os.environ, "MLC_HOME": str(self.settings.home), "MLC_POSTGRES_URL": str(self.settings.postgres_url),
               "MLC_ENGINE_JAVA_OPTS": java_opts, "MLC_ENGINE_START_TIMEOUT": "240"}
        env = {k: v for k, v in env.items() if not k.startswith(("MLC_ENGINE_JDBC", "MLC_ENGINE_URL", "MLC_ENGINE_PORT"))}
        done = subprocess.run([*mlc_command(), "engine", "start", "--node", name, "--port", str(node.port), "--json"],
                              env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["database"] == self.settings.engine_jdbc_url

    def ensure_up(self) -> None:
        """Restart any node an earlier test killed."""
        for name in NODE_NAMES:
            if self.nodes[name].answering() is None:
                self.start(name)

    def fetches(self, name: str) -> int:
        """fetchAndLock requests the node has answered so far (its access log)."""
        path = self.access_logs[name]
        return path.read_text().count("/external-task/fetchAndLock") if path.exists() else 0


@pytest.fixture(scope="session")
def cluster(postgres: PostgresCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    home = tmp_path_factory.mktemp("cluster-home")
    db = postgres.database(f"mlc_{uuid.uuid4().hex[:8]}")
    ports = {name: free_port() for name in NODE_NAMES}
    base = Settings(home=home, postgres_url=db.url, engine_auth="none",
                    engine_url=",".join(f"http://127.0.0.1:{p}/engine-rest" for p in ports.values()))
    nodes = {name: LocalEngine(base, node=name, port=port) for name, port in ports.items()}
    found = Cluster(base, nodes, {name: home / "access" / f"node-{name}.log" for name in NODE_NAMES})
    try:
        for name in NODE_NAMES:  # one after the other: the first node creates the schema
            found.start(name)
        yield found
    finally:
        for node in nodes.values():
            node.stop()


@pytest.fixture
def store_db(postgres: PostgresCluster):
    """A fresh PostgreSQL database for one test's MLC store."""
    return postgres.database(f"store_{uuid.uuid4().hex[:8]}")


@pytest.fixture
def cluster_env(cluster: Cluster, store_db, tmp_path: Path) -> dict[str, str]:
    """Environment of a worker (or the CLI) on the cluster, with its MLC store on PostgreSQL."""
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLC_", "MLFLOW_"))}
    env.update({
        "MLC_HOME": str(home),
        "MLC_ENGINE_URL": cluster.url,
        "MLC_ENGINE_AUTH": "none",
        "MLC_STORE_URL": store_db.url,
        "MLFLOW_TRACKING_URI": f"sqlite:///{home / 'mlflow.db'}",
        "COLUMNS": "200",
    })
    return env
