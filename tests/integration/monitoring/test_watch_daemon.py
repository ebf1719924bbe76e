"""The real `mlc monitor watch` daemon on the session's engine: a file dropped into the folder fires
exactly one mlc.monitor, also after the watcher restarts, and a half-written file none until complete."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from modelops_mlc.config import Settings
from modelops_mlc.daemon import status_path
from modelops_mlc.engine import EngineClient
from modelops_mlc.monitoring.watch import watcher_name
from tests.conftest import mlc_command

BPMN = Path(__file__).resolve().parents[2] / "data" / "monitor_trigger.bpmn"
PROCESS = "test-monitor-trigger"  # starts on signal mlc.monitor and ends at once
MODEL = "watched-churn"


def poll(predicate, what: str, timeout: float = 60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


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
        c.deploy_processes([BPMN], name="mlc-test-triggers")
        yield c


def test_each_file_fires_one_monitor_also_across_restarts(mlc_env, client, tmp_path: Path) -> None:
    folder = tmp_path / "incoming"
    folder.mkdir()

    def monitors(name: str) -> int:
        return client.count_instances(process_key=PROCESS, variables={"CURRENT_DATA": str(folder / name),
                                                                       "MONITOR_TRIGGER": "new-data"})

    (folder / "before-start.csv").write_text("a,b\n1,2\n")
    watcher = Watcher(mlc_env, folder, tmp_path / "watch.log")
    try:
        poll(lambda: monitors("before-start.csv"), "the file already there to fire")

        (folder / ".published.csv.part").write_text("a,b\n3,4\n")  # written aside, renamed in whole
        os.replace(folder / ".published.csv.part", folder / "published.csv")
        poll(lambda: monitors("published.csv"), "the renamed file to fire")

        with (folder / "half.csv").open("w") as writer:
            writer.write("a,b\n5,6\n")
            writer.flush()
            seen = poll(lambda: watcher.status() if str(folder / "half.csv") in watcher.status().get("waiting", [])
                        else None, "the watcher to see the half-written file")
            # ten more rounds (each at least 0.2 s, so beyond the 0.3 s settle time) and it still waits
            poll(lambda: watcher.status().get("rounds", 0) >= seen["rounds"] + 10, "ten more rounds")
            assert str(folder / "half.csv") in watcher.status()["waiting"]
            assert monitors("half.csv") == 0
            writer.write("7,8\n")
        poll(lambda: monitors("half.csv"), "the completed file to fire")
        assert watcher.stop() == 0
        assert not watcher.status_file.exists()

        (folder / "while-down.csv").write_text("a,b\n9,9\n")
        watcher = Watcher(mlc_env, folder, tmp_path / "watch.log")
        poll(lambda: monitors("while-down.csv"), "the file that arrived while no watcher ran")
        poll(lambda: not watcher.status().get("waiting", ["?"]), "the restarted watcher to finish its scan")
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
