"""One retrain per model, and a worker killed with kill -9 during a training job: a second trigger
while the job runs is refused (recorded in history, with a notification); the job runs outside
the worker, the process keeps polling with its timer, and the next worker carries the retrain to
its end. One model, one training job, one new version."""

from __future__ import annotations

from pathlib import Path

from modelops_mlc.registry import Registry
from modelops_mlc.retraining.claims import holder_of
from modelops_mlc.store import open_store
from modelops_mlc.tickets.notifications import list_notifications
from rt_support import RetrainEnv, end_of, jobs_of, passed, register_champion, start_retrain
from tests.support.waiting import wait_for


def test_a_second_trigger_is_refused_and_killing_the_worker_loses_nothing(rt: RetrainEnv, worker,
                                                                           tmp_path: Path) -> None:
    first_worker = worker()
    name = register_champion(rt, tags={"entrypoint": "rt_entrypoints:fit_when_released"})
    params = {"started_file": str(tmp_path / "started"), "release_file": str(tmp_path / "release")}
    first = start_retrain(rt, name, TRAIN_PARAMS=params)
    wait_for(lambda: (tmp_path / "started").exists(), what="the training job to start")

    second = start_retrain(rt, name, TRAIN_PARAMS=params)  # the same model, while the first trains
    assert end_of(rt, second) == "end_refused"
    assert rt.client.variables(second)["RETRAIN_HOLDER"] == first
    assert not passed(rt, second, "task_validate")
    [note] = list_notifications(rt.settings, model_id=name)
    assert (note.level, note.process_instance_id) == ("warning", second)
    assert note.message == f"Retrain of {name} refused: retrain {first} is still running"

    first_worker.kill9()  # kill -9 of the real `mlc worker start`, mid-job
    [job] = jobs_of(rt, name)
    assert job.state == "running" and job.pid == int((tmp_path / "started").read_text())
    worker()  # a new worker takes over the polling
    (tmp_path / "release").write_text("go")
    assert end_of(rt, first) == "end_not_improved"  # same data, same model: no improvement

    [job] = jobs_of(rt, name)  # the one job finished; nobody started a second, nor a parallel retrain
    assert job.state == "succeeded" and job.result["version"] == 2 and job.process_instance_id == first
    assert sorted(v.version for v in Registry(rt.settings).list_versions(name)) == [1, 2]
    assert rt.client.variables(first)["CHALLENGER_VERSION"] == 2
    assert holder_of(open_store(rt.settings), name) is None
