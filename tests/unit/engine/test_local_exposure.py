"""`mlc engine start` off loopback: refused without REST authentication (or with the default
password) unless --insecure; the launch command binds the host and, with basic auth, switches
Camunda's authorization on, with no secret on the command line."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelops_mlc.config import Settings
from modelops_mlc.engine.local import LocalEngine
from modelops_mlc.errors import UsageError

PASSWORD = "unit-engine-pw-91c2"


def engine(tmp_path: Path, **kw: object) -> LocalEngine:
    return LocalEngine(Settings(home=tmp_path, engine_port=18080, **kw))


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1", "127.0.0.2"])
def test_loopback_needs_no_auth(tmp_path: Path, host: str) -> None:
    local = engine(tmp_path, engine_host=host)
    local.check_exposure()
    assert local.url == "http://127.0.0.1:18080/engine-rest"
    assert "--camunda.bpm.authorization.enabled=true" not in local.command("java", Path("e.jar"))


@pytest.mark.parametrize("auth", ["none", "bearer"])
def test_all_interfaces_without_basic_auth_is_refused(tmp_path: Path, auth: str) -> None:
    with pytest.raises(UsageError, match="without authentication: set MLC_ENGINE_AUTH=basic"):
        engine(tmp_path, engine_host="0.0.0.0", engine_auth=auth).check_exposure()


def test_default_password_off_loopback_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="default password: set MLC_ENGINE_PASSWORD"):
        engine(tmp_path, engine_host="0.0.0.0", engine_auth="basic").check_exposure()


def test_insecure_binds_all_interfaces_without_authorization(tmp_path: Path) -> None:
    local = engine(tmp_path, engine_host="0.0.0.0")
    local.check_exposure(insecure=True)
    command = local.command("java", Path("e.jar"))
    assert command[-1] == "--server.address=0.0.0.0"
    assert not any("authorization" in part for part in command)
    assert local.url == "http://127.0.0.1:18080/engine-rest"  # reached over loopback


def test_basic_auth_switches_authorization_on_and_keeps_the_password_off_the_command(tmp_path: Path) -> None:
    local = engine(tmp_path, engine_host="10.1.2.3", engine_auth="basic", engine_password=PASSWORD)
    local.check_exposure()
    command = local.command("java", Path("e.jar"))
    assert "--server.address=10.1.2.3" in command
    assert "--camunda.bpm.authorization.enabled=true" in command
    assert local.authorization_on and local.url == "http://10.1.2.3:18080/engine-rest"
    assert PASSWORD not in " ".join(command)
    assert local._env()["MLC_ENGINE_PASSWORD"] == PASSWORD  # secrets go by environment


def test_cli_refuses_before_looking_for_java(run_mlc, tmp_path: Path) -> None:
    no_java = {"PATH": str(tmp_path), "MLC_ENGINE_PORT": "18080", "MLC_ENGINE_URL": ""}
    r = run_mlc("engine", "start", "--host", "0.0.0.0", env=no_java)
    assert r.returncode == 2, r.stderr
    assert "refusing to start the engine on 0.0.0.0 without authentication" in r.stderr
    assert "MLC_ENGINE_AUTH=basic" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "mlc-home" / "engine" / "engine.pid").exists()

    # --insecure passes the check: the start goes on and stops at the missing Java
    r = run_mlc("engine", "start", "--host", "0.0.0.0", "--insecure", env=no_java)
    assert r.returncode == 5 and "Java not found" in r.stderr, r.stderr
    # MLC_ENGINE_HOST is the same setting
    r = run_mlc("engine", "start", env={**no_java, "MLC_ENGINE_HOST": "0.0.0.0"})
    assert r.returncode == 2 and "without authentication" in r.stderr


@pytest.mark.parametrize(("host", "url"), [
    ("10.0.0.5", "http://10.0.0.5:18080/engine-rest"),
    ("fd00::5", "http://[fd00::5]:18080/engine-rest"),
    ("0.0.0.0", "http://127.0.0.1:18080/engine-rest"),
    ("localhost", "http://127.0.0.1:18080/engine-rest"),
])
def test_clients_default_to_the_address_the_engine_binds(tmp_path: Path, monkeypatch, host: str, url: str) -> None:
    monkeypatch.delenv("MLC_ENGINE_URL", raising=False)
    monkeypatch.setenv("MLC_ENGINE_HOST", host)
    settings = Settings(home=tmp_path, engine_port=18080)
    assert settings.engine_url == url == LocalEngine(settings).url  # `mlc process start` reaches `mlc engine start`
    assert Settings(home=tmp_path, engine_port=18080, engine_url="http://e:1/engine-rest").engine_url == "http://e:1/engine-rest"
