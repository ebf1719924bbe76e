"""MLC_POSTGRES_URL: one database URL for the engine, the MLC store and MLflow."""

import os
import subprocess

import pytest

from modelops_mlc.config import Settings
from modelops_mlc.errors import ConfigError
from tests.conftest import mlc_command


def test_one_url_sets_the_engine_the_store_and_mlflow() -> None:
    s = Settings(postgres_url="postgresql://mlc:p%40ss@db.internal:5433/mlc?sslmode=require")
    assert s.engine_jdbc_url == "jdbc:postgresql://db.internal:5433/mlc?sslmode=require"
    assert (s.engine_jdbc_user, s.engine_jdbc_password.get_secret_value()) == ("mlc", "p@ss")
    assert s.store_url == s.mlflow_tracking_uri == "postgresql+psycopg://mlc:p%40ss@db.internal:5433/mlc?sslmode=require"


def test_a_setting_of_its_own_wins_over_the_url() -> None:
    s = Settings(postgres_url="postgresql://mlc@db/mlc", store_url="sqlite:///mine.db",
                 mlflow_tracking_uri="http://mlflow:5000")
    assert s.engine_jdbc_url == "jdbc:postgresql://db:5432/mlc"
    assert (s.store_url, s.mlflow_tracking_uri) == ("sqlite:///mine.db", "http://mlflow:5000")


@pytest.mark.parametrize("url", ["mysql://db/mlc", "postgresql://db", "postgresql://db:99999/mlc"])
def test_a_url_that_is_not_one_postgresql_database_is_refused(url: str) -> None:
    with pytest.raises(ConfigError):
        Settings(postgres_url=url)


def test_the_cli_says_so_in_one_line() -> None:
    env = {**os.environ, "MLC_POSTGRES_URL": "mysql://db/mlc", "MLC_ENGINE_URL": "http://127.0.0.1:9/engine-rest"}
    done = subprocess.run([*mlc_command(), "instances"], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "MLC_POSTGRES_URL must start with postgresql://" in done.stderr and "Traceback" not in done.stderr
