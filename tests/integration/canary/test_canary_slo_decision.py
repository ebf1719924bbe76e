"""The canary decision mlc-canary-slo, evaluated by the real engine: every rule, the defaults and
the overrides, and what too few requests or missing feedback labels mean."""

from __future__ import annotations

import pytest

from tests.integration.canary.conftest import decide

pytestmark = pytest.mark.integration

HEALTHY = {"CANARY_REQUESTS": 400, "CANARY_ERROR_RATE": 0.0025, "CANARY_P99_MS": 12.5}


@pytest.mark.parametrize(
    ("inputs", "promote", "reason"),
    [
        (HEALTHY, True, "error rate 0.0025 within 0.01, latency p99 12.5 ms within 250 ms over 400 requests, "
                        "accuracy not yet known"),
        ({**HEALTHY, "CANARY_ACCURACY": 0.93}, True,
         "error rate 0.0025 within 0.01, latency p99 12.5 ms within 250 ms over 400 requests, accuracy 0.9300"),
        ({**HEALTHY, "CANARY_ERROR_RATE": 0.05}, False, "error rate 0.0500 above the SLO 0.01 over 400 requests"),
        ({**HEALTHY, "CANARY_ERROR_RATE": 0.05, "CANARY_MAX_ERROR_RATE": 0.1}, True,
         "error rate 0.0500 within 0.1, latency p99 12.5 ms within 250 ms over 400 requests, accuracy not yet known"),
        ({**HEALTHY, "CANARY_P99_MS": 251.0}, False, "latency p99 251.0 ms above the SLO 250 ms"),
        ({**HEALTHY, "CANARY_P99_MS": 251.0, "CANARY_MAX_P99_MS": 300.0}, True,
         "error rate 0.0025 within 0.01, latency p99 251.0 ms within 300.0 ms over 400 requests, accuracy not yet known"),
        # the first limit breached is the one named
        ({**HEALTHY, "CANARY_ERROR_RATE": 0.5, "CANARY_P99_MS": 900.0}, False,
         "error rate 0.5000 above the SLO 0.01 over 400 requests"),
        # accuracy counts only when a minimum is set and labels exist
        ({**HEALTHY, "CANARY_ACCURACY": 0.61, "CANARY_MIN_ACCURACY": 0.8}, False, "accuracy 0.6100 below the SLO 0.8"),
        ({**HEALTHY, "CANARY_MIN_ACCURACY": 0.8}, True,
         "error rate 0.0025 within 0.01, latency p99 12.5 ms within 250 ms over 400 requests, accuracy not yet known"),
        # too few requests: no evidence, no promotion
        ({"CANARY_REQUESTS": 49, "CANARY_ERROR_RATE": 0.0, "CANARY_P99_MS": 3.0}, False,
         "only 49 requests reached the canary in the window, at least 50 are needed to judge it"),
        ({"CANARY_REQUESTS": 0, "CANARY_ERROR_RATE": None, "CANARY_P99_MS": None}, False,
         "only 0 requests reached the canary in the window, at least 50 are needed to judge it"),
        ({"CANARY_REQUESTS": 0, "CANARY_ERROR_RATE": None, "CANARY_P99_MS": None, "CANARY_MIN_REQUESTS": 0}, True,
         "no requests, accuracy not yet known"),
        # errors among few requests still name the errors
        ({"CANARY_REQUESTS": 10, "CANARY_ERROR_RATE": 0.3, "CANARY_P99_MS": 3.0}, False,
         "error rate 0.3000 above the SLO 0.01 over 10 requests"),
    ],
)
def test_canary_slo(driver, inputs, promote, reason):
    assert decide(driver, inputs) == {"promote": promote, "reason": reason}


def test_decision_is_deployed(driver):
    definition = driver.http.get("/decision-definition/key/mlc-canary-slo").json()
    assert definition["historyTimeToLive"] == 30
    assert definition["resource"] == "mlc-canary-slo.dmn"
