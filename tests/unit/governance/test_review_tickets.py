"""Reviews go where the model's tags say, whatever the default system: jira=true to Jira,
servicenow=true to ServiceNow (the local stand-in servers of tests/unit/tickets), and the ticket
carries the version, its metrics, the verdict and the run."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tickets"))

from fake_saas import FakeJira, FakeServiceNow  # noqa: E402

from modelops_mlc.config import Settings  # noqa: E402
from modelops_mlc.errors import TaskFailed  # noqa: E402
from workers.create_ticket import create_ticket  # noqa: E402
from workers.handlers import TaskContext  # noqa: E402

REVIEW = {"MODEL_ID": "churn", "MODEL_VERSION": 4, "TICKET_KIND": "review", "TICKET_REASON": "Review model churn",
          "TEST_METRICS": {"f1": 0.84, "roc_auc": 0.91}, "TEST_VERDICT": {"passed": True, "reason": "f1 0.840 >= 0.7"},
          "TEST_RUN_ID": "0123456789abcdef", "RISK_TIER": "HIGH", "GOVERNANCE_LEVEL": "production"}


@pytest.fixture
def systems(mlc_env, monkeypatch: pytest.MonkeyPatch):
    jira = FakeJira(user="bot@example.com", secret="jira-token-governance-1").start()
    servicenow = FakeServiceNow(user="mlc.bot", secret="sn-password-governance-1").start()
    for key, value in {"MLC_JIRA_URL": jira.url, "MLC_JIRA_PROJECT": "OPS", "MLC_JIRA_USER": "bot@example.com",
                       "MLC_JIRA_TOKEN": "jira-token-governance-1", "MLC_SERVICENOW_URL": servicenow.url,
                       "MLC_SERVICENOW_USER": "mlc.bot", "MLC_SERVICENOW_PASSWORD": "sn-password-governance-1",
                       "MLC_TICKET_SYSTEM": "local"}.items():
        monkeypatch.setenv(key, value)
    yield jira, servicenow
    jira.stop()
    servicenow.stop()


def run(n: int, **variables) -> dict:
    ctx = TaskContext(topic="create-ticket", task_id=f"t{n}", process_instance_id=f"pi{n}", activity_id="task_review_ticket",
                      activity_instance_id=f"task_review_ticket:{n}", variables=variables, settings=Settings(),
                      process_definition_key="mlc-deploy-with-test")
    return create_ticket(ctx)


def test_jira_tag_reviews_in_jira_though_the_default_is_local(systems) -> None:
    jira, servicenow = systems
    out = run(1, **REVIEW, JIRA=True, SERVICENOW=False)
    assert out["TICKET_KEY"] == "OPS-1"
    description = jira.issues["OPS-1"]["fields"]["description"]
    for fact in ("churn version 4", "f1: 0.84", "roc_auc: 0.91", "Test verdict: passed (f1 0.840 >= 0.7)",
                 "MLflow run: 0123456789abcdef", "risk_tier: HIGH", "Process instance: pi1"):
        assert fact in description
    assert not servicenow.records


def test_servicenow_tag_reviews_in_servicenow(systems) -> None:
    jira, servicenow = systems
    out = run(2, **REVIEW, JIRA=False, SERVICENOW=True)
    assert out["TICKET_KEY"].startswith("INC")
    [record] = servicenow.records.values()
    assert "Test verdict: passed" in record["description"] and "MLflow run: 0123456789abcdef" in record["description"]
    assert not jira.issues


def test_untagged_models_use_the_default_and_a_named_system_wins(systems) -> None:
    jira, servicenow = systems
    assert run(3, **REVIEW)["TICKET_KEY"].startswith("MLC-")
    assert run(4, **REVIEW, JIRA=True, TICKET_SYSTEM="servicenow")["TICKET_KEY"].startswith("INC")
    assert not jira.issues


def test_both_tags_are_a_modelling_error_not_a_guess(systems) -> None:
    with pytest.raises(TaskFailed, match="both jira=true and servicenow=true") as caught:
        run(5, **REVIEW, JIRA=True, SERVICENOW=True)
    assert caught.value.retryable is False
