"""A throwaway PostgreSQL cluster on loopback, from Debian's ``postgresql`` binaries.

``initdb`` into a temporary directory and ``pg_ctl start`` on a free port, as the current user;
PostgreSQL refuses to run as root, so under root the cluster belongs to the ``postgres`` OS
user (created with ``useradd`` when missing). Nothing is assumed to be there: without the
binaries the ``postgres`` fixture skips and says why (``.ci/run`` installs them).
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

__all__ = ["PostgresCluster", "find_pg_bin", "postgres"]

OS_USER = "postgres"
DB_USER = "mlc"


def find_pg_bin() -> Path | None:
    """The directory of ``initdb`` and ``pg_ctl``: ``MLC_TEST_PG_BIN``, PATH, or Debian's newest
    ``/usr/lib/postgresql/<version>/bin``."""
    if os.environ.get("MLC_TEST_PG_BIN"):
        return Path(os.environ["MLC_TEST_PG_BIN"])
    on_path = shutil.which("initdb")
    if on_path:  # Debian links a few tools into PATH; the rest stay beside the real one
        return Path(on_path).resolve().parent
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    return Path(found[-1]).parent if found else None


@dataclass
class PostgresCluster:
    """One running cluster; ``database(name)`` creates a database and returns its URLs."""

    bin: Path
    data: Path
    port: int
    os_user: str | None  # the OS user postgres runs as when we are root

    @classmethod
    def start(cls, bin_dir: Path) -> "PostgresCluster":
        os_user = None
        if os.geteuid() == 0:
            os_user = OS_USER
            try:
                pwd.getpwnam(os_user)
            except KeyError:
                subprocess.run(["useradd", "--system", "--no-create-home", os_user], check=True)
        root = Path(tempfile.mkdtemp(prefix="mlc-pg-"))
        os.chmod(root, 0o755)
        data = root / "data"
        data.mkdir(mode=0o700)
        if os_user:
            shutil.chown(root, os_user)
            shutil.chown(data, os_user)
        from tests.conftest import free_port  # here, not at the top: tests/conftest.py imports this module

        cluster = cls(bin_dir, data, free_port(), os_user)
        cluster._run("initdb", "-D", str(data), "-U", DB_USER, "--auth=trust", "--encoding=UTF8", "--no-sync")
        options = f"-h 127.0.0.1 -p {cluster.port} -k {root} -c fsync=off -c max_connections=200"
        cluster._run("pg_ctl", "-D", str(data), "-l", str(root / "postgres.log"), "-o", options, "-w", "start")
        return cluster

    def _run(self, tool: str, *args: str) -> None:
        cmd = [str(self.bin / tool), *args]
        if self.os_user:
            cmd = ["runuser", "-u", self.os_user, "--", *cmd]
        done = subprocess.run(cmd, capture_output=True, text=True, cwd="/")
        if done.returncode != 0:
            raise RuntimeError(f"{tool} failed ({done.returncode}): {done.stderr.strip() or done.stdout.strip()}")

    def database(self, name: str) -> "PostgresDatabase":
        self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", DB_USER, name)
        return PostgresDatabase(self.port, name)

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "stop")
        shutil.rmtree(self.data.parent, ignore_errors=True)


@dataclass(frozen=True)
class PostgresDatabase:
    port: int
    name: str
    user: str = DB_USER

    @property
    def url(self) -> str:
        """The SQLAlchemy URL (psycopg 3), as ``MLC_STORE_URL`` and MLflow take it."""
        return f"postgresql+psycopg://{self.user}@127.0.0.1:{self.port}/{self.name}"

    @property
    def jdbc_url(self) -> str:
        return f"jdbc:postgresql://127.0.0.1:{self.port}/{self.name}"


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresCluster]:
    """A PostgreSQL cluster for the test session; tests create their own databases in it."""
    bin_dir = find_pg_bin()
    if bin_dir is None or not (bin_dir / "pg_ctl").exists():
        pytest.skip("PostgreSQL binaries not found (apt-get install postgresql, as .ci/run does)")
    cluster = PostgresCluster.start(bin_dir)
    try:
        yield cluster
    finally:
        cluster.stop()
