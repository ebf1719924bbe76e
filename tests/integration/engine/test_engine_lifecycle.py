"""`mlc engine start|status|logs|stop` on the local jar, its one-line errors, and basic auth."""

from __future__ import annotations

import json
import os
import shutil
import socket
from pathlib import Path

import httpx
import pytest

from tests.conftest import free_port

pytestmark = pytest.mark.skipif(shutil.which("java") is None, reason="needs a JDK to run the local engine")


@pytest.fixture
def engine_env(mlc_home: Path) -> dict[str, str]:
    return {
        "MLC_ENGINE_PORT": str(free_port()),
        "MLC_ENGINE_URL": "",
        "MLC_ENGINE_AUTH": "basic",
        "MLC_ENGINE_USER": "mlcadmin",
        "MLC_ENGINE_PASSWORD": "s3cret-pw",
    }


def test_lifecycle_with_basic_auth(run_mlc, mlc_home: Path, engine_env: dict[str, str]) -> None:
    port = int(engine_env["MLC_ENGINE_PORT"])
    base = f"http://127.0.0.1:{port}/engine-rest"
    pid_file = mlc_home / "engine" / "engine.pid"

    # a stale PID file (its process is gone) is reported, then replaced by start
    pid_file.parent.mkdir(parents=True)
    pid_file.write_text("999999")
    r = run_mlc("engine", "status", "--json", env=engine_env)
    assert json.loads(r.stdout)["running"] is False
    assert "stale" in json.loads(r.stdout)["note"]

    r = run_mlc("engine", "start", env=engine_env, timeout=300)
    try:
        assert r.returncode == 0, r.stderr
        assert "running" in r.stderr
        pid = int(pid_file.read_text())
        assert pid != 999999

        status = json.loads(run_mlc("engine", "status", "--json", env=engine_env).stdout)
        assert status["running"] and status["answering"] and status["version"] == "7.24.0"
        assert status["pid"] == pid and status["port"] == port

        # the H2 database lives under MLC_HOME/engine
        assert any((mlc_home / "engine" / "h2").glob("process-engine*"))

        # auth: refused without credentials, accepted with them (Camunda's filter leaves only the
        # engine-name listing /engine open)
        url = f"{base}/process-definition"
        assert httpx.get(url, timeout=10).status_code == 401
        assert httpx.get(url, auth=("mlcadmin", "s3cret-pw"), timeout=10).status_code == 200
        r = run_mlc("processes", env={**engine_env, "MLC_ENGINE_AUTH": "none"})
        assert r.returncode == 6 and "refused the credentials" in r.stderr and "Traceback" not in r.stderr
        r = run_mlc("processes", "--json", env=engine_env)
        assert r.returncode == 0, r.stderr

        # already running
        r = run_mlc("engine", "start", env=engine_env)
        assert r.returncode == 5 and "already running" in r.stderr

        # another installation on the same port
        other_home = mlc_home.parent / "other-home"
        r = run_mlc("engine", "start", env={**engine_env, "MLC_HOME": str(other_home)})
        assert r.returncode == 5 and f"port {port} is already in use" in r.stderr

        r = run_mlc("engine", "logs", "-n", "200", env=engine_env)
        assert r.returncode == 0 and "Started MlcEngineApplication" in r.stdout
        # a wrong password is refused (last: Camunda then locks the user for a few seconds)
        assert httpx.get(url, auth=("mlcadmin", "wrong"), timeout=10).status_code == 401
        # the password never reaches the log
        assert "s3cret-pw" not in (mlc_home / "engine" / "engine.log").read_text()
    finally:
        r = run_mlc("engine", "stop", env=engine_env)
    assert r.returncode == 0 and "stopped" in r.stderr
    assert not pid_file.exists()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    r = run_mlc("engine", "status", env=engine_env)
    assert r.returncode == 3
    r = run_mlc("engine", "stop", env=engine_env)
    assert r.returncode == 0 and "not running" in r.stderr


def test_start_errors_are_one_line(run_mlc, mlc_home: Path, tmp_path: Path) -> None:
    env = {"MLC_ENGINE_PORT": str(free_port()), "MLC_ENGINE_URL": ""}

    # Java missing: a PATH without java
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    r = run_mlc("engine", "start", env={**env, "PATH": str(bin_dir)})
    assert r.returncode == 5 and "Java not found" in r.stderr and "Traceback" not in r.stderr

    # port taken by someone else
    with socket.socket() as s:
        s.bind(("0.0.0.0", 0))
        s.listen()
        busy = s.getsockname()[1]
        r = run_mlc("engine", "start", env={**env, "MLC_ENGINE_PORT": str(busy)})
    assert r.returncode == 5 and "already in use" in r.stderr

    # start timed out: the last log lines are shown and nothing is left running
    r = run_mlc("engine", "start", "--timeout", "1", env=env)
    assert r.returncode == 5 and "did not answer within 1 s" in r.stderr
    assert "mlc engine start" in r.stderr  # a log line was shown
    assert not (mlc_home / "engine" / "engine.pid").exists()

    r = run_mlc("engine", "logs", env={"MLC_HOME": str(tmp_path / "nowhere")})
    assert r.returncode == 4 and "no engine log" in r.stderr
