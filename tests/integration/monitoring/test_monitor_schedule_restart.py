"""A monitor schedule survives an engine restart: its own local engine (H2 file database) is
stopped and started again, and the same schedule is still waiting and fires again."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest

from modelops_mlc.engine import EngineClient
from modelops_mlc.engine.local import LocalEngine
from modelops_mlc.monitoring.schedules import list_schedules, schedule
from tests.conftest import start_local_engine
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(shutil.which("java") is None, reason="needs a JDK to run the local engine")]
ROOT = Path(__file__).resolve().parents[3]


def _time(text: str) -> dt.datetime:
    return dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%f%z")


def test_a_schedule_survives_an_engine_restart(tmp_path: Path) -> None:
    handle, local = start_local_engine(tmp_path / "engine-home")
    client = EngineClient(handle.settings)
    try:
        client.deploy_processes([ROOT / "bpmn"], name="mlc-restart-test")
        before = schedule(client, "restart-model", every="2s", current_data="/data/current.csv")
        wait_for(lambda: client.instances(process_key="mlc-monitor", model_id="restart-model"), what="a first fire")

        local.stop()  # type: ignore[attr-defined]
        client.close()
        LocalEngine(handle.settings).start(timeout=240)
        restarted = dt.datetime.now(dt.timezone.utc)
        client = EngineClient(handle.settings)

        (after,) = list_schedules(client)
        assert (after.instance_id, after.timer, after.current_data) == (before.instance_id, "R/PT2S", "/data/current.csv")
        assert len(client.jobs(process_instance_id=after.instance_id, timers=True)) == 1
        fired_since = wait_for(lambda: [i for i in client.instances(process_key="mlc-monitor", model_id="restart-model")
                                        if _time(i.start_time) > restarted], what="a fire after the restart")
        assert client.variables(fired_since[0].id)["MONITOR_TRIGGER"] == "schedule"
    finally:
        client.close()
        LocalEngine(handle.settings).stop()
