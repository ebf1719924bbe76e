"""One engine of its own for the security tests: REST authentication (basic) and Camunda's
authorization on, as `mlc engine start` runs it with MLC_ENGINE_AUTH=basic, with its own
MLC_HOME and port. Users are made with the real `mlc engine users add`.

While developing, ``MLC_TEST_SECURE_ENGINE_URL`` reuses such an engine started with the admin
user and password below.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from modelops_mlc.config import Settings
from modelops_mlc.engine import EngineClient
from modelops_mlc.engine.authorization import ensure_groups
from tests.conftest import mlc_command, start_local_engine
from tests.support.markers import skip_unless_selected

ADMIN, ADMIN_PASSWORD = "mlcadmin", "s3cret-engine-pw-4d1f"
# user -> groups; every password is "pw-<user>"
USERS = {"bob": ["mlc-reviewers"], "dora": ["mlc-deployers"], "otto": ["mlc-operators"], "eve": [],
         "wendy": ["mlc-workers"]}


def admin_settings(url: str) -> Settings:
    return Settings(engine_url=url, engine_auth="basic", engine_user=ADMIN, engine_password=ADMIN_PASSWORD)


@pytest.fixture
def admin(secure_engine: "SecureEngine") -> Iterator[EngineClient]:
    """An engine client logged in as the admin user."""
    with EngineClient(admin_settings(secure_engine.url)) as client:
        yield client


@dataclass
class SecureEngine:
    url: str
    home: Path
    log_file: Path | None

    def env(self, user: str = ADMIN, password: str | None = None) -> dict[str, str]:
        """Environment of a CLI or daemon that logs in to this engine as ``user``."""
        return {"MLC_ENGINE_URL": self.url, "MLC_ENGINE_AUTH": "basic", "MLC_ENGINE_USER": user,
                "MLC_ENGINE_PASSWORD": password or (ADMIN_PASSWORD if user == ADMIN else f"pw-{user}")}

    def mlc(self, *args: str, user: str = ADMIN, env: dict[str, str] | None = None,
            timeout: float = 120) -> subprocess.CompletedProcess[str]:
        full = {**os.environ, "MLC_HOME": str(self.home), "COLUMNS": "200", **self.env(user), **(env or {})}
        return subprocess.run([*mlc_command(), *args], env=full, capture_output=True, text=True, timeout=timeout)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The full form (marker ``security``) only when asked for with ``-m security`` (make test-security)."""
    skip_unless_selected(config, items, "security", "full secret-leak life cycle: `make test-security`")


@pytest.fixture(scope="package")
def secure_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureEngine]:
    home = tmp_path_factory.mktemp("secure-engine")
    reuse = os.environ.get("MLC_TEST_SECURE_ENGINE_URL")
    if reuse:
        handle = SecureEngine(url=reuse, home=home, log_file=None)
        with EngineClient(admin_settings(reuse)) as client:
            ensure_groups(client)  # what a start of this code would have made
        _add_users(handle)
        yield handle
        return
    started, local = start_local_engine(home, engine_auth="basic", engine_user=ADMIN, engine_password=ADMIN_PASSWORD)
    handle = SecureEngine(url=started.url, home=home, log_file=local.log_file)  # type: ignore[attr-defined]
    try:
        _add_users(handle)
        yield handle
    finally:
        local.stop()  # type: ignore[attr-defined]


def _add_users(engine: SecureEngine) -> None:
    for user, groups in USERS.items():
        args = [a for g in groups for a in ("--group", g)]
        r = engine.mlc("engine", "users", "add", user, *args, env={"MLC_NEW_USER_PASSWORD": f"pw-{user}"})
        assert r.returncode == 0, r.stderr
