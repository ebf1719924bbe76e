"""mlc-retrain on the real engine, run by a real `mlc worker start` (one for the module;
test_retrain_worker_restart.py kills one), with MLflow and the local ticket system: broken data,
a worse challenger and a crashed training job. Each test checks what a user
would: the end event, the ticket or notification and its text, the registry's versions and
aliases, the training job records. The three retrains run side by side (different models), as a
worker serves them in production."""

from __future__ import annotations

import pytest

from modelops_mlc.registry import Registry
from modelops_mlc.retraining.claims import holder_of
from modelops_mlc.store import open_store
from modelops_mlc.tickets import get_ticket_system
from modelops_mlc.tickets.notifications import list_notifications
from rt_support import RetrainEnv, end_of, jobs_of, passed, register_champion, start_retrain


def tickets_of(rt: RetrainEnv, name: str) -> list:
    with get_ticket_system(rt.settings) as system:
        return system.search(model_id=name)


def versions_of(rt: RetrainEnv, name: str) -> list[int]:
    return sorted(v.version for v in Registry(rt.settings).list_versions(name))


@pytest.fixture(scope="module")
def runs(rt: RetrainEnv, shared_worker) -> dict[str, tuple[str, str]]:
    """{case: (model, instance)} for the three retrains, started together and ended."""
    cases = {
        "broken": ({}, {"TRAINING_DATA": str(rt.data["broken"])}),
        "worse": ({}, {"TRAINING_DATA": str(rt.data["flipped"])}),  # valid data, wrong labels
        "crash": ({"entrypoint": "rt_entrypoints:die"}, {}),
    }
    names = {case: register_champion(rt, tags=tags) for case, (tags, _) in cases.items()}
    started = {case: (names[case], start_retrain(rt, names[case], **variables))
               for case, (_, variables) in cases.items()}
    for _, inst in started.values():
        end_of(rt, inst)
    return started


def test_broken_data_opens_a_ticket_and_stops(rt: RetrainEnv, runs) -> None:
    name, inst = runs["broken"]
    assert end_of(rt, inst) == "end_invalid_data"

    [ticket] = tickets_of(rt, name)
    assert "missing columns: mean_area" in ticket.title
    assert "mean_radius" in ticket.description  # the range problem is quoted too
    assert not passed(rt, inst, "task_submit") and jobs_of(rt, name) == []
    assert versions_of(rt, name) == [1]
    assert holder_of(open_store(rt.settings), name) is None  # released


def test_a_worse_challenger_is_not_deployed(rt: RetrainEnv, runs) -> None:
    name, inst = runs["worse"]
    assert end_of(rt, inst) == "end_not_improved"

    variables = rt.client.variables(inst)
    assert variables["RETRAIN_DECISION"]["deploy"] is False
    assert variables["COMPARE_WINNER"] == "champion" and variables["COMPARE_IMPROVEMENT"] < 0
    registry = Registry(rt.settings)
    assert registry.get_version(f"{name}@champion").version == 1  # the champion stays
    assert registry.get_version(f"{name}@challenger").version == 2  # the trained challenger, registered
    [note] = list_notifications(rt.settings, model_id=name)
    assert note.message.startswith(f"challenger version 2 of {name} not deployed: the challenger loses on guard metric")
    assert not passed(rt, inst, "task_review") and not passed(rt, inst, "call_canary")
    assert holder_of(open_store(rt.settings), name) is None


def test_a_crashed_training_job_ends_in_an_error_ticket(rt: RetrainEnv, runs) -> None:
    name, inst = runs["crash"]
    assert end_of(rt, inst) == "end_failed"

    [job] = jobs_of(rt, name)
    assert job.state == "crashed" and "exited without a result" in job.error
    [ticket] = tickets_of(rt, name)
    assert ticket.title.startswith(f"Model {name} v1: life cycle step failed: Retrain of {name} failed with MLC_JOB_FAILED")
    assert f"training job {job.id} crashed" in ticket.title + ticket.description
    assert versions_of(rt, name) == [1]
    assert holder_of(open_store(rt.settings), name) is None


