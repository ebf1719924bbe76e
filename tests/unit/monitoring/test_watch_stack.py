"""`mlc up --watch DIR=MODEL`: the watchers a stack runs, recorded for `mlc status` and `mlc down`."""

from __future__ import annotations

from pathlib import Path

from modelops_mlc.config import Settings
from modelops_mlc.monitoring.watch import watcher_name
from modelops_mlc.stack import Stack


def test_a_stack_runs_one_watcher_per_folder_and_model(settings: Settings, tmp_path: Path) -> None:
    folder = tmp_path / "drop"
    folder.mkdir()
    stack = Stack(settings, watches=[(folder, "churn"), (folder, "fraud"), (folder, "churn")])
    watchers = [d for d in stack.daemons if d.name.startswith("watch-")]
    assert [d.name for d in watchers] == [watcher_name(folder, "churn"), watcher_name(folder, "fraud")]
    assert watchers[0].args == ["monitor", "watch", str(folder.resolve()), "--model", "churn", "--log-format", "json"]
    status = {p.name: p for p in stack.status()[1:]}
    assert status[watchers[0].name].running is False

    stack.extras.save(settings.home)
    assert [d.name for d in Stack(settings).daemons if d.name.startswith("watch-")] == [d.name for d in watchers]
    Stack(settings).down()
    assert [d.name for d in Stack(settings).daemons] == ["worker", "runtime", "ticket-watcher"]


def test_bad_watch_options_are_one_line(run_mlc, tmp_path: Path) -> None:
    no_model = run_mlc("up", "--watch", str(tmp_path))
    assert no_model.returncode == 2 and "DIR=MODEL" in no_model.stderr
    no_dir = run_mlc("up", "--watch", f"{tmp_path / 'nowhere'}=churn")
    assert no_dir.returncode == 2 and "not a directory" in no_dir.stderr
    for result in (no_model, no_dir):
        assert "Traceback" not in result.stderr
