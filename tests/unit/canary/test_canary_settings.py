"""canary-prepare refuses a rollout it could not judge before anything is deployed: a window the
engine cannot time and SLO limits the decision cannot compare with are incidents to fix, not a
verdict. Good settings come back as the values the timer and the decision read."""

from __future__ import annotations

import pytest

from modelops_mlc.errors import TaskFailed
from workers.canary import canary_prepare
from workers.handlers import TaskContext


def prepare(settings, **variables):  # noqa: ANN001, ANN201
    return canary_prepare(TaskContext(topic="canary-prepare", task_id="t", process_instance_id="pi",
                                      activity_id="task_prepare", activity_instance_id="task_prepare:1",
                                      variables={"MODEL_ID": "credit", **variables}, settings=settings))


@pytest.mark.parametrize(("variables", "message"), [
    ({"CANARY_WINDOW": "10 minutes"}, "CANARY_WINDOW must be an ISO-8601 duration"),
    ({"CANARY_WINDOW": "PT"}, "CANARY_WINDOW must be an ISO-8601 duration"),
    ({"CANARY_MAX_ERROR_RATE": "one percent"}, "CANARY_MAX_ERROR_RATE must be a number from 0 to 1"),
    ({"CANARY_MAX_ERROR_RATE": 5}, "CANARY_MAX_ERROR_RATE must be a number from 0 to 1"),
    ({"CANARY_MAX_P99_MS": -1}, "CANARY_MAX_P99_MS must be a number of at least 0"),
    ({"CANARY_MIN_ACCURACY": True}, "CANARY_MIN_ACCURACY must be a number from 0 to 1"),
])
def test_bad_settings_are_refused_for_good(settings, variables, message):
    with pytest.raises(TaskFailed, match=message) as failed:
        prepare(settings, **variables)
    assert failed.value.retryable is False


def test_defaults_and_overrides_as_the_engine_needs_them(settings):
    assert prepare(settings) == {"CANARY_WINDOW": "PT10M"}  # no deployment yet: the deploy topic's stage applies
    assert prepare(settings, CANARY_WINDOW="pt5s", CANARY_MAX_ERROR_RATE="0.05", CANARY_MIN_REQUESTS="10",
                   CANARY_MAX_P99_MS=None, MODEL_STAGE="PROD") == {
        "CANARY_WINDOW": "PT5S", "CANARY_MAX_ERROR_RATE": 0.05, "CANARY_MIN_REQUESTS": 10, "MODEL_STAGE": "PROD"}


@pytest.mark.parametrize("window", ["P1DT2H", "PT0.5S", "P2W"])
def test_iso_durations_the_engine_takes(settings, window):
    assert prepare(settings, CANARY_WINDOW=window)["CANARY_WINDOW"] == window
