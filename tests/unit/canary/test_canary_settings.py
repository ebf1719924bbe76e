"""canary-baseline refuses a rollout it cannot judge before it reads anything: a window the engine
cannot time and SLO limits the decision cannot compare with are incidents to fix, not a verdict."""

from __future__ import annotations

import pytest

from modelops_mlc.errors import BpmnError, TaskFailed
from workers.canary import canary_baseline
from workers.handlers import TaskContext


def baseline(settings, **variables):  # noqa: ANN001, ANN201
    return canary_baseline(TaskContext(topic="canary-baseline", task_id="t", process_instance_id="pi",
                                       activity_id="task_baseline", activity_instance_id="task_baseline:1",
                                       variables={"DEPLOYMENT_ID": 404, **variables}, settings=settings))


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
        baseline(settings, **variables)
    assert failed.value.retryable is False


@pytest.mark.parametrize("window", [None, "PT5S", "pt10m", "P1DT2H", "PT0.5S"])
def test_good_settings_reach_the_deployment(settings, window):
    with pytest.raises(BpmnError) as error:  # the throwaway store has no deployment 404
        baseline(settings, CANARY_WINDOW=window, CANARY_MAX_ERROR_RATE="0.05", CANARY_MIN_REQUESTS=10)
    assert error.value.code == "MLC_DEPLOY_FAILED" and "404" in error.value.message
