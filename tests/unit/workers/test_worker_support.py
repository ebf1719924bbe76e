"""Model ids, SDK errors as BPMN outcomes, outcome mapping and the log formats."""

from __future__ import annotations

import json
import logging

import pytest

from modelops_mlc.errors import (
    BpmnError,
    JobError,
    MissingDataError,
    ModelNotFoundError,
    RegistryError,
    TaskFailed,
    UsageError,
)
from modelops_mlc.daemon import JsonFormatter, TextFormatter
from workers.handlers import TaskContext
from workers.daemon import Outcome
from workers.support import job_errors, model_spec, version_spec


def ctx(settings, **variables) -> TaskContext:  # noqa: ANN001
    return TaskContext(topic="t", task_id="task", process_instance_id="pi", activity_id="Act",
                       activity_instance_id="Act:1", variables=variables, settings=settings)


@pytest.mark.parametrize(("version", "spec"), [(3, "m/3"), ("3", "m/3"), (3.0, "m/3"), ("champion", "m@champion"),
                                               ("@challenger", "m@challenger")])
def test_version_spec(version: object, spec: str) -> None:
    assert version_spec("m", version) == spec


def test_model_spec_prefers_an_explicit_id_then_model_version(settings) -> None:  # noqa: ANN001
    assert model_spec(ctx(settings, MODEL_ID="churn")) == "churn"
    assert model_spec(ctx(settings, MODEL_ID="churn", MODEL_VERSION=4)) == "churn/4"
    assert model_spec(ctx(settings, MODEL_ID="churn/2", MODEL_VERSION=4)) == "churn/2"
    assert model_spec(ctx(settings, MODEL_ID="churn@champion", MODEL_VERSION=4)) == "churn@champion"
    with pytest.raises(TaskFailed, match="needs process variable MODEL_ID") as failed:
        model_spec(ctx(settings))
    assert failed.value.retryable is False


def test_dedupe_key_is_instance_and_activity_instance(settings) -> None:  # noqa: ANN001
    assert ctx(settings).dedupe_key == "pi:Act:1"


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (ModelNotFoundError("no model"), "MLC_MODEL_NOT_FOUND"),
        (MissingDataError("no data"), "MLC_MISSING_TEST_DATA"),
        (JobError("bad data"), "MLC_JOB_FAILED"),
        (UsageError("bad path"), "MLC_JOB_FAILED"),
    ],
)
def test_job_errors_become_bpmn_errors(error: Exception, code: str) -> None:
    with pytest.raises(BpmnError) as raised, job_errors():
        raise error
    assert raised.value.code == code and raised.value.message == error.args[0]


def test_registry_trouble_is_a_retryable_failure() -> None:
    with pytest.raises(TaskFailed) as raised, job_errors():
        raise RegistryError("sqlite is locked")
    assert raised.value.retryable


def test_outcomes_from_results_and_exceptions() -> None:
    assert Outcome.from_result(None).kind == "complete"
    assert Outcome.from_result({"A": 1}).variables == {"A": 1}
    wrong = Outcome.from_result([1, 2])
    assert wrong.kind == "failure" and not wrong.retryable
    bpmn = Outcome.from_exception(BpmnError("MLC_NO_RUNTIME", "none", variables={"X": 1}))
    assert (bpmn.kind, bpmn.error_code, bpmn.message, bpmn.variables) == ("bpmn_error", "MLC_NO_RUNTIME", "none", {"X": 1})
    later = Outcome.from_exception(TaskFailed("busy", retry_in=2.5))
    assert (later.kind, later.retryable, later.retry_in) == ("failure", True, 2.5)
    try:
        raise ValueError("boom")
    except ValueError as exc:
        boom = Outcome.from_exception(exc)
    assert boom.message == "ValueError: boom" and "Traceback" in (boom.details or "")


def _record(**fields: object) -> logging.LogRecord:
    record = logging.LogRecord("workers.daemon", logging.INFO, __file__, 1, "task completed", None, None)
    record.event = "task.completed"
    record.fields = fields
    return record


def test_json_log_line_carries_the_task_fields() -> None:
    line = JsonFormatter().format(_record(topic="score", task_id="t1", process_instance_id="p1", model_id="churn",
                                          duration_ms=12.5, retries_left=None))
    data = json.loads(line)
    assert data["event"] == "task.completed" and data["level"] == "info"
    assert (data["topic"], data["task_id"], data["process_instance_id"], data["model_id"], data["duration_ms"]) == (
        "score", "t1", "p1", "churn", 12.5)
    assert "retries_left" not in data and "\n" not in line


def test_text_log_line_puts_the_task_fields_first() -> None:
    line = TextFormatter().format(_record(worker_id="w", topic="score", task_id="t1", process_instance_id="p1",
                                          model_id="my model", duration_ms=3))
    assert "task.completed task completed topic=score task_id=t1 process_instance_id=p1" in line
    assert 'model_id="my model" duration_ms=3 worker_id=w' in line
