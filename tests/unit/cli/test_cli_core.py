import os
import subprocess
import sys
from pathlib import Path

import pytest

from modelops_mlc.cli._common import parse_pairs
from modelops_mlc.cli.commands.process import signal_name
from modelops_mlc.config import Settings, load_settings
from modelops_mlc.errors import ConfigError, UsageError


def test_short_signal_names_are_namespaced() -> None:
    assert signal_name("run-back-test") == "mlc.run-back-test"
    assert signal_name("mlc.model-submitted") == "mlc.model-submitted"
    assert signal_name("acme.custom") == "acme.custom"


def test_key_value_pairs_are_typed() -> None:
    assert parse_pairs(["a=1", "b=true", "c=hello", "d=1.5", 'e={"x": 1}', "f="]) == {
        "a": 1, "b": True, "c": "hello", "d": 1.5, "e": {"x": 1}, "f": "",
    }
    with pytest.raises(UsageError):
        parse_pairs(["novalue"])
    with pytest.raises(UsageError):
        parse_pairs(["=x"])


def test_settings_defaults_follow_home_and_port(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for key in list(os.environ):
        if key.startswith("MLC_") or key == "MLFLOW_TRACKING_URI":
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLC_HOME", str(tmp_path / "h"))
    monkeypatch.setenv("MLC_ENGINE_PORT", "9123")
    s = Settings()
    assert s.engine_url == "http://127.0.0.1:9123/engine-rest"
    assert s.store_url == f"sqlite:///{tmp_path / 'h' / 'mlc.db'}"
    assert s.mlflow_tracking_uri == f"sqlite:///{tmp_path / 'h' / 'mlflow.db'}"
    monkeypatch.setenv("MLC_ENGINE_URL", "http://engine:8080/engine-rest/")
    assert Settings().engine_url == "http://engine:8080/engine-rest"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow:5000")
    assert Settings().mlflow_tracking_uri == "http://mlflow:5000"


def test_yaml_file_is_below_env_and_flags(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for key in list(os.environ):
        if key.startswith("MLC_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mlc.yaml").write_text("engine_port: 9000\nticket_system: jira\n")
    assert Settings().engine_port == 9000 and Settings().ticket_system == "jira"
    monkeypatch.setenv("MLC_ENGINE_PORT", "9001")
    assert Settings().engine_port == 9001
    assert load_settings(engine_port=9002).engine_port == 9002
    monkeypatch.setenv("MLC_ENGINE_AUTH", "kerberos")
    with pytest.raises(ConfigError, match="engine_auth"):
        load_settings()


def _imported_modules(*args: str) -> set[str]:
    code = (
        "import sys\n"
        "from modelops_mlc.cli.app import main\n"
        f"sys.argv = ['mlc', *{list(args)!r}]\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "print('\\n'.join(sys.modules))\n"
    )
    env = {**os.environ, "MLC_ENGINE_URL": "http://127.0.0.1:9/engine-rest", "COLUMNS": "120"}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    return set(r.stdout.split())


@pytest.mark.parametrize("args", [["--help"], ["signal", "run-back-test", "--model-id", "m"]])
def test_cli_start_up_does_not_import_heavy_modules(args: list[str]) -> None:
    modules = _imported_modules(*args)
    assert "typer" in modules
    heavy = {m for m in modules if m.split(".")[0] in {"mlflow", "pandas", "sklearn", "scipy", "numpy", "pyarrow"}}
    assert heavy == set()


def test_bad_config_is_one_line(tmp_path: Path) -> None:
    env = {**os.environ, "MLC_ENGINE_AUTH": "kerberos"}
    script = Path(sys.executable).parent / "mlc"
    cmd = [str(script)] if script.exists() else [sys.executable, "-m", "modelops_mlc.cli.app"]
    r = subprocess.run([*cmd, "processes"], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60)
    assert r.returncode == 2
    assert "invalid setting engine_auth" in r.stderr and "Traceback" not in r.stderr
