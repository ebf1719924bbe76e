"""Every path of mlc-canary-rollout on the real engine: the window timer, the SLO decision and
the end events, with the external tasks completed by hand."""

from __future__ import annotations

import pytest

from tests.integration.canary.conftest import start

pytestmark = pytest.mark.integration

HEALTHY = {"CANARY_REQUESTS": 400, "CANARY_ERROR_RATE": 0.0, "CANARY_P99_MS": 12.5, "CANARY_ACCURACY": None}


def through_the_window(driver, token: str, figures: dict, **start) -> dict:
    """get-model, the settings, the canary deploy, the baseline and the window; returns the deploy task."""
    driver.run("get-model", token, {"MODEL_ID": "credit", "MODEL_VERSION": 7})
    driver.run("canary-prepare", token, {"CANARY_WINDOW": "PT1S", "MODEL_STAGE": "PROD"})
    deploy = driver.run("deploy", token, {"DEPLOYMENT_ID": 41, "RUNTIME_NAME": "prod-1"})
    assert deploy["vars"]["MODEL_STAGE"] == "PROD"
    driver.run("canary-baseline", token, {"CANARY_BASELINE": {"endpoints": {}}})
    driver.run("canary-figures", token, {"CANARY_FIGURES": {"summary": "the figures"}, **figures})
    return deploy


def test_within_the_slo_promotes(driver):
    token = start(driver, {"MODEL_ID": "credit@challenger"})
    deploy = through_the_window(driver, token, HEALTHY)
    assert deploy["vars"]["TRAFFIC_WEIGHT"] == 10  # CANARY_WEIGHT's default
    promote = driver.fetch("canary-promote", token)
    assert promote["vars"]["CANARY_VERDICT"]["promote"] is True
    driver.complete(promote, {"CANARY_OUTCOME": "promoted", "RETIRED_VERSION": 6})
    notify = driver.run("notify", token)
    assert notify["vars"]["NOTIFY_MESSAGE"] == (
        "Canary of credit version 7 promoted to champion: error rate 0.0000 within 0.01, latency p99 12.5 ms "
        "within 250 ms over 400 requests, accuracy not yet known; version 6 retired")
    assert driver.ended_at(token) == "end_promoted"
    assert driver.business_key(token) == "credit:7"
    variables = driver.variables(token)
    assert variables["CANARY_OUTCOME"] == "promoted"
    assert "DECISION_RESULT" not in variables
    assert driver.activities(token).index("timer_window") < driver.activities(token).index("task_figures")


def test_a_breach_rolls_back_with_a_ticket(driver):
    """Each rule of the decision is in test_canary_slo_decision.py; here one breach takes the rollback path."""
    reason = "error rate 0.2000 above the SLO 0.01 over 400 requests"
    token = start(driver, {"MODEL_ID": "credit", "MODEL_VERSION": 7, "CANARY_WEIGHT": 25})
    deploy = through_the_window(driver, token, {**HEALTHY, "CANARY_ERROR_RATE": 0.2})
    assert deploy["vars"]["TRAFFIC_WEIGHT"] == 25
    rollback = driver.fetch("canary-rollback", token)
    assert rollback["vars"]["CANARY_VERDICT"] == {"promote": False, "reason": reason}
    driver.complete(rollback, {"CANARY_OUTCOME": "rolled-back", "CANARY_REASON": f"rolled back: {reason}"})
    ticket = driver.run("create-ticket", token, {"TICKET_KEY": "LOCAL-1"})
    assert (ticket["vars"]["TICKET_KIND"], ticket["vars"]["TICKET_REASON"]) == ("rollback", f"rolled back: {reason}")
    assert driver.ended_at(token) == "end_rolled_back"
    assert driver.variables(token)["CANARY_OUTCOME"] == "rolled-back"


def test_a_failed_canary_deploy_ends_in_an_error_ticket(driver):
    token = start(driver, {"MODEL_ID": "credit", "MODEL_VERSION": 7})
    driver.run("get-model", token, {"MODEL_ID": "credit", "MODEL_VERSION": 7})
    driver.run("canary-prepare", token)
    driver.fail("deploy", token, "MLC_DEPLOY_FAILED", "smoke request failed (500)")
    ticket = driver.run("create-ticket", token)
    assert ticket["vars"]["TICKET_KIND"] == "error"
    assert ticket["vars"]["TICKET_REASON"] == ("Canary rollout of credit version 7 failed with MLC_DEPLOY_FAILED: "
                                               "smoke request failed (500)")
    assert driver.ended_at(token) == "end_failed"
    assert driver.variables(token)["CANARY_OUTCOME"] == "failed"
