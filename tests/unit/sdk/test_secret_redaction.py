"""Secret settings stay out of reprs, errors and status output: every secret of Settings is a
SecretStr, and database URLs lose their passwords wherever they are shown."""

from __future__ import annotations

import json

import pytest
from pydantic import SecretStr

from modelops_mlc.config import Settings, redact_url
from modelops_mlc.errors import ConfigError

SECRET = "pw-0e4c9a7b"
SECRET_FIELDS = ["engine_password", "engine_token", "engine_jdbc_password", "jira_token", "jira_bearer_token",
                 "servicenow_password", "servicenow_token", "runtime_admin_token", "webhook_secret"]


def test_every_secret_setting_is_masked_in_repr_and_dumps(tmp_path) -> None:
    settings = Settings(home=tmp_path, **{name: SECRET for name in SECRET_FIELDS})
    for name in SECRET_FIELDS:
        assert isinstance(getattr(settings, name), SecretStr), name
    assert SECRET not in repr(settings) and SECRET not in str(settings)
    assert SECRET not in settings.model_dump_json()


@pytest.mark.parametrize("url, shown", [
    (f"postgresql://mlc:{SECRET}@db:5432/mlc", "postgresql://mlc:***@db:5432/mlc"),
    (f"postgresql+psycopg://mlc:{SECRET}@db/mlc?sslmode=require", "postgresql+psycopg://mlc:***@db/mlc?sslmode=require"),
    (f"jdbc:postgresql://db:5432/mlc?user=mlc&password={SECRET}&ssl=true",
     "jdbc:postgresql://db:5432/mlc?user=mlc&password=***&ssl=true"),
    ("sqlite:////tmp/mlc.db", "sqlite:////tmp/mlc.db"),
    ("http://127.0.0.1:5000/a@b", "http://127.0.0.1:5000/a@b"),
])
def test_database_urls_lose_their_passwords(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_a_store_that_cannot_open_names_its_url_without_the_password(tmp_path) -> None:
    from modelops_mlc.store import open_store

    with pytest.raises(ConfigError) as info:
        open_store(Settings(home=tmp_path, store_url=f"nosuchdialect://mlc:{SECRET}@db/mlc"))
    assert "nosuchdialect://mlc:***@db/mlc" in info.value.message and SECRET not in info.value.message


def test_engine_status_hides_a_jdbc_password(run_mlc) -> None:
    r = run_mlc("engine", "status", "--json",
                env={"MLC_ENGINE_JDBC_URL": f"jdbc:postgresql://db:5432/mlc?password={SECRET}"})
    assert SECRET not in r.stdout + r.stderr
    assert json.loads(r.stdout)["database"] == "jdbc:postgresql://db:5432/mlc?password=***"
