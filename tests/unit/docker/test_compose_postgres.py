"""docker/compose.yaml's PostgreSQL profile and docker/postgres.env, the one switch onto it."""

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[3]
COMPOSE = ROOT / "docker" / "compose.yaml"
SWITCH = ROOT / "docker" / "postgres.env"


def _env_file() -> dict[str, str]:
    lines = [l.strip() for l in SWITCH.read_text().splitlines()]
    return dict(l.split("=", 1) for l in lines if l and not l.startswith("#"))


def test_the_postgres_profile_runs_a_database_the_others_wait_for_only_when_it_is_on() -> None:
    services = yaml.safe_load(COMPOSE.read_text())["services"]
    assert services["postgres"]["profiles"] == ["postgres"]
    assert "pg_isready" in " ".join(services["postgres"]["healthcheck"]["test"])
    for name in ("engine", "mlflow", "runtime"):
        dep = services[name]["depends_on"]["postgres"]
        assert dep == {"condition": "service_healthy", "required": False}, name
    assert all("profiles" not in s for n, s in services.items() if n not in ("postgres", "prometheus", "grafana"))


def test_the_runtime_and_the_ticket_watcher_run_beside_the_workers() -> None:
    services = yaml.safe_load(COMPOSE.read_text())["services"]
    assert services["runtime"]["command"][:3] == ["mlc", "runtime", "serve"]
    assert "0.0.0.0" in services["runtime"]["command"]
    assert services["ticket-watcher"]["command"][:3] == ["mlc", "ticket", "watch"]
    for name in ("workers", "runtime", "ticket-watcher"):
        assert services[name]["environment"]["MLC_ENGINE_URL"] == "http://engine:8080/engine-rest"
        assert services[name]["environment"]["MLFLOW_TRACKING_URI"] == "http://mlflow:5000"


def test_postgres_env_turns_the_profile_on_and_points_all_three_at_its_database() -> None:
    env = _env_file()
    assert env["COMPOSE_PROFILES"] == "postgres"
    db = f"postgres:5432/{env['MLC_POSTGRES_DB']}"
    assert env["MLC_ENGINE_JDBC_URL"] == f"jdbc:postgresql://{db}"
    assert env["MLC_STORE_URL"].startswith("postgresql+psycopg://") and env["MLC_STORE_URL"].endswith(db)
    assert env["MLFLOW_BACKEND_STORE_URI"] == env["MLC_STORE_URL"]
    used = set(re.findall(r"\$\{(\w+)", COMPOSE.read_text()))
    assert set(env) - {"COMPOSE_PROFILES"} <= used, "postgres.env sets a variable compose.yaml never reads"
