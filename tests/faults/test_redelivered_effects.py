"""A task the engine delivers again after its worker died: the handler finds what the first
delivery left (a run still RUNNING, a run already FINISHED, an alias already moved) and has its
effect once. The kill of the first delivery is real where it can be timed from outside (train:
the training entrypoint kills its own process); the later ones call the handler a second time
with the same task, as the runner does when the kill came after the handler but before the
engine heard of it (the runner's replay record bypassed)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from modelops_mlc.config import Settings
from tests.faults.lifecycle import Home, make_home
from workers.handlers import TaskContext

ROOT = Path(__file__).resolve().parents[2]
DIES = "MLC_TEST_TRAIN_DIES"  # the training entrypoint of these tests kills its process when this file exists


def dying_fit(data, *, target):  # noqa: ANN001, ANN201 (a training entrypoint)
    """A scaled logistic regression, but SIGKILL of its own process while the marker file exists."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if os.environ.get(DIES) and Path(os.environ[DIES]).exists():
        os.kill(os.getpid(), signal.SIGKILL)
    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(data.drop(columns=[target]),
                                                                                  data[target])


DYING_MODEL = f'''
import os
import signal

import mlflow
from mlflow.pyfunc import PythonModel


class DiesWhileMarked(PythonModel):
    """Predicts like the wrapped classifier, but SIGKILL of its process while the marker file exists."""

    def load_context(self, context):
        self.model = mlflow.sklearn.load_model(context.artifacts["classifier"])

    def predict(self, context, model_input, params=None):
        if os.path.exists(os.environ.get("{DIES}", "/nonexistent")):
            os.kill(os.getpid(), signal.SIGKILL)
        return self.model.predict(model_input)


mlflow.models.set_model(DiesWhileMarked())
'''


def _killed_first(home: Home, marker: Path, call: str) -> None:
    """Run ``call`` (a handler call on ``ctx``) in a child process that dies of SIGKILL mid-job."""
    marker.touch()
    first = subprocess.run([sys.executable, "-c", (
        "from tests.faults.test_redelivered_effects import _ctx; from tests.support.home import home_settings; "
        f"import os; {call}")], env={**home.env, DIES: str(marker), "PYTHONPATH": str(ROOT)}, cwd=ROOT,
        capture_output=True, text=True, timeout=300)
    assert first.returncode == -signal.SIGKILL, first.stderr[-2000:]
    marker.unlink()


def _ctx(settings: Settings, topic: str, variables: dict, activity: str = "task_x") -> TaskContext:
    return TaskContext(topic=topic, task_id="t1", process_instance_id="pi-redelivered", activity_id=activity,
                       activity_instance_id=f"{activity}:1", variables=variables, settings=settings, worker_id="w")


def _runs(settings: Settings, kind: str) -> list[str]:
    from modelops_mlc.registry import Registry

    registry = Registry(settings)
    return sorted(r.info.status for r in registry.client.search_runs(
        [registry.experiment_id], f"tags.`mlc.kind` = '{kind}'"))


def test_a_train_killed_mid_fit_leaves_no_running_run(tmp_path: Path) -> None:
    from modelops_mlc.registry import Registry
    from workers.train import train

    home = make_home(tmp_path / "home", "http://127.0.0.1:9/engine-rest", rows=200, deploy=False,
                     tags={"entrypoint": f"{__name__}:dying_fit"}, training_data=True)
    variables = {"MODEL_ID": home.model, "MODEL_VERSION": 1}
    _killed_first(home, tmp_path / "die", "from workers.train import train; "
                  f"train(_ctx(home_settings(dict(os.environ)), 'train', {variables!r}))")
    assert _runs(home.settings, "train") == ["RUNNING"]

    out = train(_ctx(home.settings, "train", variables))
    assert out["MODEL_VERSION"] == 2
    assert _runs(home.settings, "train") == ["FINISHED", "KILLED"]  # the dead delivery's run no longer RUNNING
    assert [v.version for v in Registry(home.settings).list_versions(home.model)] == [2, 1]


def test_a_compare_killed_mid_evaluation_leaves_no_running_run(tmp_path: Path) -> None:
    """The challenger's predict kills the worker's process during the first delivery's comparison."""
    import mlflow.pyfunc
    import mlflow.sklearn

    from modelops_mlc.registry import Registry
    from workers.compare import compare

    home = make_home(tmp_path / "home", "http://127.0.0.1:9/engine-rest", rows=200, deploy=False)
    registry = Registry(home.settings)
    classifier, code, saved = tmp_path / "classifier", tmp_path / "dies.py", tmp_path / "challenger"
    mlflow.sklearn.save_model(registry.load_sklearn(registry.get_version(f"{home.model}/1").ref), str(classifier))
    code.write_text(DYING_MODEL)
    mlflow.pyfunc.save_model(str(saved), python_model=str(code), artifacts={"classifier": str(classifier)})
    registry.register(home.model, path=saved, tags={"target": "target"})
    variables = {"MODEL_ID": home.model, "CHAMPION_VERSION": 1, "CHALLENGER_VERSION": 2}
    _killed_first(home, tmp_path / "die", "from workers.compare import compare; "
                  f"compare(_ctx(home_settings(dict(os.environ)), 'compare', {variables!r}))")
    assert "RUNNING" in _runs(home.settings, "compare")

    out = compare(_ctx(home.settings, "compare", variables))
    assert out["COMPARE_WINNER"] in ("champion", "challenger")
    assert _runs(home.settings, "compare") == ["FINISHED", "KILLED"]
    assert "RUNNING" not in _runs(home.settings, "test"), "an evaluation run of the killed comparison still runs"


def test_a_redelivered_score_logs_one_score_run(tmp_path: Path) -> None:
    """The second delivery finds the first one's run and its output unchanged; once the output is
    gone (or changed) it scores again."""
    import pandas as pd

    from workers.score import score

    home = make_home(tmp_path / "home", "http://127.0.0.1:9/engine-rest", rows=50, deploy=False)
    features, out = tmp_path / "features.csv", tmp_path / "scored.csv"
    pd.read_csv(home.good).drop(columns=["target"]).to_csv(features, index=False)
    ctx = _ctx(home.settings, "score", {"MODEL_ID": home.model, "MODEL_VERSION": 1, "INPUT_FILE": str(features),
                                         "OUTPUT_FILE": str(out)})
    first = score(ctx)
    assert score(ctx) == first and first["ROWS_SCORED"] == 50
    assert _runs(home.settings, "score") == ["FINISHED"]
    out.unlink()
    assert score(ctx) == first and len(pd.read_csv(out)) == 50
    assert _runs(home.settings, "score") == ["FINISHED", "FINISHED"]


def test_a_redelivered_scan_logs_one_scan_run(tmp_path: Path) -> None:
    from workers.scan import scan

    home = make_home(tmp_path / "home", "http://127.0.0.1:9/engine-rest", rows=50, deploy=False)
    ctx = _ctx(home.settings, "scan", {"MODEL_ID": home.model, "MODEL_VERSION": 1})
    first = scan(ctx)
    again = scan(ctx)
    assert again == first
    assert _runs(home.settings, "scan") == ["FINISHED"]


def test_a_monitor_record_killed_mid_log_is_logged_again_finished(tmp_path: Path) -> None:
    """The killed delivery's run (tags set, figures not yet logged) stays RUNNING and empty unless
    the redelivery ends it and logs a complete one; a third delivery reuses that one."""
    from modelops_mlc.registry import Registry
    from workers.monitor import monitor_record

    home = make_home(tmp_path / "home", "http://127.0.0.1:9/engine-rest", rows=50, deploy=False)
    ctx = _ctx(home.settings, "monitor-record", {"MODEL_ID": home.model, "MODEL_VERSION": 1, "MONITOR_VERDICT": "ok",
                                                  "MONITOR_FIGURES": {"max_psi": 0.01, "drifted_features": 0}})
    registry = Registry(home.settings)
    dead = registry.client.create_run(registry.experiment_id, tags={
        "mlc.kind": "monitor", "mlc.dedupe_key": ctx.dedupe_key, "mlc.process_instance_id": ctx.process_instance_id})
    out = monitor_record(ctx)
    assert out["MONITOR_RUN_ID"] != dead.info.run_id
    assert registry.client.get_run(out["MONITOR_RUN_ID"]).data.metrics["max_psi"] == 0.01
    assert _runs(home.settings, "monitor") == ["FINISHED", "KILLED"]


def test_a_redelivered_promote_still_names_the_retired_champion(tmp_path: Path) -> None:
    from modelops_mlc.registry import Registry
    from modelops_mlc.runtimes import DeploymentManager, RuntimeCatalog
    from workers.canary import canary_promote

    home = make_home(tmp_path / "home", "http://127.0.0.1:9/engine-rest", rows=50, deploy=False)
    registry = Registry(home.settings)
    v1 = registry.get_version(f"{home.model}/1")
    registry.register(home.model, run_id=v1.run_id)
    registry.set_alias(home.model, "champion", 1)
    registry.set_alias(home.model, "challenger", 2)
    RuntimeCatalog(home.settings).add("faults-batch", tags={"stage": "QA"}, replace=True)
    deployment = DeploymentManager(home.settings).deploy(home.model, "2", "QA", requested_by="test")
    ctx = _ctx(home.settings, "canary-promote", {"MODEL_ID": home.model, "DEPLOYMENT_ID": deployment.id})
    first = canary_promote(ctx)
    again = canary_promote(ctx)
    assert first["RETIRED_VERSION"] == 1
    assert again == first
    assert registry.get_model(home.model).aliases == {"champion": 2}
    assert registry.get_version(f"{home.model}/1").tags["mlc.retired"] == "true"
