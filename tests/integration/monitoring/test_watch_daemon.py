"""The real `mlc monitor watch` daemon on the session's engine: a file dropped into the folder fires
exactly one mlc.monitor, also after the watcher restarts, and a half-written file none until complete."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

import pytest

from modelops_mlc.config import Settings
from modelops_mlc.daemon import status_path
from modelops_mlc.engine import EngineClient
from modelops_mlc.monitoring.watch import watcher_name
from tests.support.waiting import wait_for
from tests.unit.monitoring.test_watch_folder import TRIGGER_DEPLOYMENT, end_monitors, remove_trigger_process
from tests.conftest import mlc_command

BPMN = Path(__file__).resolve().parents[2] / "data" / "monitor_trigger.bpmn"
PROCESS = "test-monitor-trigger"  # starts on signal mlc.monitor and ends at once
MODEL = "watch-test-daemon"


class Watcher:
    """One `mlc monitor watch` process and what it reports."""

    def __init__(self, env: dict[str, str], folder: Path, log: Path) -> None:
        self.status_file = status_path(Path(env["MLC_HOME"]), watcher_name(folder, MODEL), "watchers")
        with log.open("ab") as out:
            self.proc = subprocess.Popen(
                [*mlc_command(), "monitor", "watch", str(folder), "--model", MODEL, "--settle", "0.3",
                 "--log-format", "json"], env=env, stdout=out, stderr=subprocess.STDOUT)

    def status(self) -> dict:
        try:
            return json.loads(self.status_file.read_text())
        except (OSError, ValueError):
            return {}

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(30)


@pytest.fixture
def client(settings: Settings):
    with EngineClient(settings) as c:
        c.deploy_processes([BPMN], name=TRIGGER_DEPLOYMENT)
        yield c
        end_monitors(c, MODEL)
        remove_trigger_process(c)


def test_each_file_fires_one_monitor_also_across_restarts(mlc_env, client, tmp_path: Path) -> None:
    folder = tmp_path / "incoming"
    folder.mkdir()

    def monitors(name: str) -> int:
        return client.count_instances(process_key=PROCESS, variables={"CURRENT_DATA": str(folder / name),
                                                                       "MONITOR_TRIGGER": "new-data"})

    (folder / "before-start.csv").write_text("a,b\n1,2\n")
    watcher = Watcher(mlc_env, folder, tmp_path / "watch.log")
    try:
        wait_for(lambda: monitors("before-start.csv"), what="the file already there to fire", interval=0.1)

        (folder / ".published.csv.part").write_text("a,b\n3,4\n")  # written aside, renamed in whole
        os.replace(folder / ".published.csv.part", folder / "published.csv")
        wait_for(lambda: monitors("published.csv"), what="the renamed file to fire", interval=0.1)

        with (folder / "half.csv").open("w") as writer:
            writer.write("a,b\n5,6\n")
            writer.flush()
            half = str(folder / "half.csv")
            seen = wait_for(lambda: (s := watcher.status()) and half in s.get("waiting", []) and s,
                            what="the watcher to see the half-written file", interval=0.1)
            # ten more rounds (each at least 0.2 s, so beyond the 0.3 s settle time) and it still waits
            wait_for(lambda: watcher.status().get("rounds", 0) >= seen["rounds"] + 10, what="ten more rounds",
                     interval=0.1)
            assert half in watcher.status()["waiting"]
            assert monitors("half.csv") == 0
            writer.write("7,8\n")
        wait_for(lambda: monitors("half.csv"), what="the completed file to fire", interval=0.1)
        assert watcher.stop() == 0
        assert not watcher.status_file.exists()

        (folder / "while-down.csv").write_text("a,b\n9,9\n")
        watcher = Watcher(mlc_env, folder, tmp_path / "watch.log")
        wait_for(lambda: monitors("while-down.csv"), what="the file that arrived while no watcher ran",
                 interval=0.1)
        wait_for(lambda: not watcher.status().get("waiting", ["?"]), what="the restarted watcher to finish its scan",
                 interval=0.1)
        counts = {name: monitors(name) for name in ("before-start.csv", "published.csv", "half.csv", "while-down.csv")}
        assert counts == dict.fromkeys(counts, 1)
        assert watcher.status()["fired"] == 1  # the restarted watcher fired only the new file
    finally:
        if watcher.proc.poll() is None:
            watcher.stop()


def test_a_folder_that_does_not_exist_is_one_line_and_exit_2(run_mlc, tmp_path: Path) -> None:
    result = run_mlc("monitor", "watch", str(tmp_path / "nowhere"), "--model", MODEL)
    assert result.returncode == 2
    assert "not a directory" in result.stderr and "Traceback" not in result.stderr
