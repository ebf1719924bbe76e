"""Fixtures of the ticket tests: local Jira and ServiceNow stand-ins and settings pointing at them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from fake_saas import FakeJira, FakeServiceNow

JIRA_USER = "reviewer@example.com"
JIRA_TOKEN = "jira-api-token-5f1c9e2b7a"
JIRA_PAT = "jira-dc-pat-0d4b8c6e1f"
SN_USER = "mlc.integration"
SN_PASSWORD = "sn-password-9a7c3e5b1d"
SN_TOKEN = "sn-oauth-token-2e6f0a8c4b"


@pytest.fixture
def fake_jira() -> Iterator[FakeJira]:
    server = FakeJira(user=JIRA_USER, secret=JIRA_TOKEN, bearer=JIRA_PAT).start()
    yield server
    server.stop()


@pytest.fixture
def fake_servicenow() -> Iterator[FakeServiceNow]:
    server = FakeServiceNow(user=SN_USER, secret=SN_PASSWORD, bearer=SN_TOKEN).start()
    yield server
    server.stop()


@pytest.fixture
def jira_env(mlc_env: dict[str, str], fake_jira: FakeJira, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    values = {"MLC_JIRA_URL": fake_jira.url, "MLC_JIRA_PROJECT": "OPS", "MLC_JIRA_USER": JIRA_USER,
              "MLC_JIRA_TOKEN": JIRA_TOKEN}
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    return {**mlc_env, **values}


@pytest.fixture
def servicenow_env(mlc_env: dict[str, str], fake_servicenow: FakeServiceNow,
                   monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    values = {"MLC_SERVICENOW_URL": fake_servicenow.url, "MLC_SERVICENOW_USER": SN_USER,
              "MLC_SERVICENOW_PASSWORD": SN_PASSWORD}
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    return {**mlc_env, **values}
