"""Monitor schedules on the real engine: a schedule is a waiting timer that starts mlc-monitor each
time it fires; scheduling again replaces it, unscheduling removes it; bad input is one line."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from typing import Any

import pytest

from tests.support.waiting import wait_for


@pytest.fixture
def scheduled_model(installation: Any, model: str) -> str:
    """The registered model, with whatever schedule a test gives it removed afterwards."""
    yield model
    installation.mlc("monitor", "unschedule", model)


def schedules_of(installation: Any, model: str) -> list[dict[str, Any]]:
    r = installation.mlc("monitor", "list", "--json")
    assert r.returncode == 0, r.stderr
    return [s for s in json.loads(r.stdout) if s["model"] == model]


def monitors_of(installation: Any, model: str) -> list[Any]:
    return installation.client.instances(process_key="mlc-monitor", model_id=model)


def test_a_schedule_is_a_timer_that_starts_the_monitor_each_time_it_fires(installation, scheduled_model, data) -> None:
    current = data["paths"]["current"]
    r = installation.mlc("monitor", "schedule", scheduled_model, "--every", "2s", "--data", current)
    assert r.returncode == 0, r.stderr
    assert "R/PT2S" in r.stderr
    (schedule,) = schedules_of(installation, scheduled_model)
    assert schedule["timer"] == "R/PT2S" and schedule["spec"] == "every 2s" and schedule["next_due"]
    (timer,) = installation.client.jobs(process_instance_id=schedule["instance_id"], timers=True)
    assert timer.due_date

    fired = wait_for(lambda: len(monitors_of(installation, scheduled_model)) >= 2 and monitors_of(installation, scheduled_model),
                     what="the timer to fire twice")
    for instance in fired[:2]:
        variables = installation.client.variables(instance.id)
        assert variables["MONITOR_TRIGGER"] == "schedule"
        assert variables["CURRENT_DATA"] == str(current.resolve())
    history = installation.client.history_activities(schedule["instance_id"])
    assert [a.activity_id for a in history].count("end_fired") >= 2
    assert installation.client.history_instance(schedule["instance_id"]).state == "ACTIVE"  # still scheduled
    assert len(installation.client.jobs(process_instance_id=schedule["instance_id"], timers=True)) == 1


def test_rescheduling_replaces_the_schedule_and_unscheduling_removes_it(installation, scheduled_model, data) -> None:
    current = data["paths"]["current"]
    assert installation.mlc("monitor", "schedule", scheduled_model, "--every", "1h", "--data", current).returncode == 0
    (first,) = schedules_of(installation, scheduled_model)

    r = installation.mlc("monitor", "schedule", scheduled_model, "--cron", "0 2 * * 0", "--data", current)
    assert r.returncode == 0, r.stderr
    (second,) = schedules_of(installation, scheduled_model)  # never two
    assert second["instance_id"] != first["instance_id"] and second["timer"] == "0 0 2 * * 0"
    assert installation.client.jobs(process_instance_id=first["instance_id"], timers=True) == []
    ends = [a.activity_id for a in installation.client.history_activities(first["instance_id"])]
    assert ends[-1] == "end_unscheduled"
    (timer,) = installation.client.jobs(process_instance_id=second["instance_id"], timers=True)
    due = dt.datetime.strptime(timer.due_date, "%Y-%m-%dT%H:%M:%S.%f%z")
    assert (due.weekday(), due.hour, due.minute) == (6, 2, 0)  # Sunday 02:00, as crontab reads "0 2 * * 0"

    r = installation.mlc("monitor", "unschedule", scheduled_model)
    assert r.returncode == 0, r.stderr
    assert schedules_of(installation, scheduled_model) == []
    assert installation.client.jobs(process_instance_id=second["instance_id"], timers=True) == []
    r = installation.mlc("monitor", "unschedule", scheduled_model)
    assert r.returncode == 4 and "has no monitor schedule" in r.stderr


@pytest.mark.parametrize("args, code, message", [
    (["--every", "5q"], 2, "is not an interval"),
    (["--cron", "0 2 * *"], 2, "is not a cron expression"),
    (["--cron", "0 2 1 * 1"], 2, "restricts both the day of month and the day of week"),
    (["--cron", "0 99 * * *"], 2, "the engine refused the schedule '0 0 99 * * *'"),
    (["--every", "1h", "--cron", "0 2 * * 0"], 2, "exactly one of --every and --cron"),
])
def test_bad_schedules_are_refused_in_one_line(installation, model, data, args, code, message) -> None:
    r = installation.mlc("monitor", "schedule", model, *args, "--data", data["paths"]["current"])
    assert r.returncode == code and message in r.stderr, r.stderr
    assert "Traceback" not in r.stderr
    assert installation.client.instances(process_key="mlc-monitor-schedule", active_only=True, business_key=model) == []


def test_an_unknown_model_is_not_scheduled_nor_run_and_data_is_required(installation, model, data) -> None:
    name = f"nobody-{uuid.uuid4().hex[:6]}"
    for command in ("schedule", "run"):
        r = installation.mlc("monitor", command, name, *(["--every", "1h"] if command == "schedule" else []),
                             "--data", data["paths"]["current"])
        assert r.returncode == 4 and "not found" in r.stderr, r.stderr
        r = installation.mlc("monitor", command, model, *(["--every", "1h"] if command == "schedule" else []))
        assert r.returncode == 2 and "--data is required" in r.stderr, r.stderr
    assert schedules_of(installation, name) == schedules_of(installation, model) == []


def test_a_retrain_schedule_fires_mlc_retrain_and_lists_beside_the_monitor_schedules(installation, model, data) -> None:
    training = data["paths"]["current"]
    r = installation.mlc("retrain", model, "--every", "2s", "--data", training, "--margin", "0.05", "--var", "X=1")
    assert r.returncode == 2 and "--var is not kept by a schedule" in r.stderr
    r = installation.mlc("retrain", f"{model}/1", "--every", "2s", "--data", training, "--margin", "0.05")
    assert r.returncode == 0, r.stderr
    (schedule,) = [s for s in schedules_of(installation, model) if s["kind"] == "retrain"]
    assert schedule["timer"] == "R/PT2S" and schedule["training_data"] == str(training.resolve())
    assert schedule["version"] == "1" and schedule["improvement_margin"] == 0.05

    started = wait_for(lambda: installation.client.instances(process_key="mlc-retrain", model_id=model) or None,
                       what="the retrain timer to fire")
    variables = installation.client.variables(started[0].id)
    assert variables["RETRAIN_TRIGGER"] == "schedule" and variables["TRAINING_DATA"] == str(training.resolve())
    assert variables["MODEL_VERSION"] == "1" and variables["IMPROVEMENT_MARGIN"] == 0.05

    r = installation.mlc("retrain", model, "--unschedule")
    assert r.returncode == 0, r.stderr
    assert [s for s in schedules_of(installation, model) if s["kind"] == "retrain"] == []
    assert installation.client.jobs(process_instance_id=schedule["instance_id"], timers=True) == []
    r = installation.mlc("retrain", model, "--unschedule")
    assert r.returncode == 4 and "has no retrain schedule" in r.stderr
