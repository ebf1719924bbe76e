"""A runtime (`mlc runtime serve`) killed with -9 while the deploy topic brings a version online
on it: the deploy fails cleanly (MLC_DEPLOY_FAILED, an error ticket, end event ``end_failed``),
and leaves no deployment half made: its record says failed, none is left deploying or deployed,
and the runtime, started again, does not serve the version.

The kill is timed on the MLC store: as soon as the deployment's record exists in state
``deploying`` (the worker is telling the runtime to load the version), the runtime's process
group gets SIGKILL.
"""

from __future__ import annotations

from pathlib import Path

import httpx
from sqlalchemy import create_engine, text

from modelops_mlc.engine import EngineClient
from tests.conftest import free_port, mlc_command
from tests.faults.lifecycle import make_home
from tests.faults.support import Scenario, ServerProcess, TreeMemory, effects_per_instance
from tests.integration.workers.wt_support import WorkerProcess
from tests.support.cleanup import delete_unfinished
from tests.support.waiting import wait_for


def _runtime(env: dict[str, str], name: str, log: Path) -> ServerProcess:
    """`mlc runtime serve NAME --port P --tag stage=QA`."""
    port = free_port()
    return ServerProcess([*mlc_command(), "runtime", "serve", name, "--port", str(port), "--tag", "stage=QA"], env,
                         f"http://127.0.0.1:{port}", "/v2/health/live", log)


def _deployments(store_url: str, model: str) -> list[tuple[int, str]]:
    engine = create_engine(store_url)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(text(
                "SELECT id, state FROM mlc_deployments WHERE model_name = :m ORDER BY id"), {"m": model})]
    finally:
        engine.dispose()


def test_runtime_killed_during_an_online_deploy_fails_cleanly(engine, tmp_path: Path, scenario: Scenario) -> None:
    home = make_home(tmp_path / "home", engine.url)
    runtime = _runtime(home.env, f"rt-{home.model}", tmp_path / "runtime.log")
    runtime.start()
    worker = None
    instance = ""
    try:
        with EngineClient(home.settings) as client:
            worker = WorkerProcess(home.env, home.path, ["--process-key", "mlc-deploy-with-test",
                                                         "--concurrency", "1"], tmp_path / "worker.log").wait_ready()
            memory = TreeMemory(worker.proc.pid)
            instance = client.start("mlc-deploy-with-test", {"MODEL_ID": home.model, "MODEL_VERSION": 1}).id
            [task] = wait_for(lambda: client.tasks(process_instance_id=instance), timeout=180, what="the review task")
            client.complete_task(task.id, {"approved": True, "review_comment": "faults"})

            def deploying() -> bool:
                memory.sample()
                return any(state == "deploying" for _, state in _deployments(home.env["MLC_STORE_URL"], home.model))

            wait_for(deploying, timeout=180, interval=0.02, what="the deployment under way")
            runtime.kill()
            scenario.faults = ["runtime kill -9 while the deploy topic brought the version online"]

            def ended() -> str | None:
                memory.sample()
                if client.history_instance(instance).state == "ACTIVE":
                    return None
                return [a.activity_id for a in client.history_activities(instance)
                        if a.activity_type.endswith("EndEvent")][-1]

            end = wait_for(ended, timeout=300, what="the deploy-with-test to end")
            scenario.count(client, [instance])
            scenario.incidents = len(client.incidents(process_instance_id=instance))
            variables = client.variables(instance)
        scenario.peak_memory_mib = round(memory.peak, 1)
        deployments = _deployments(home.env["MLC_STORE_URL"], home.model)
        tickets = effects_per_instance(home.env["MLC_STORE_URL"], "mlc_tickets", [instance])
        scenario.effects_duplicated = max(0, tickets[instance] - 1) + max(0, len(deployments) - 1)

        assert end == "end_failed"
        assert variables["MLC_ERROR_CODE"] == "MLC_DEPLOY_FAILED"
        assert tickets == {instance: 1}, "one error ticket"
        assert [state for _, state in deployments] == ["failed"], deployments
        assert scenario.incidents == 0

        runtime.start()  # the runtime back: it does not serve the failed version
        wait_for(lambda: httpx.get(f"{runtime.url}/v2/health/ready", timeout=5).status_code < 500, timeout=60,
                 what="the runtime ready")
        answer = httpx.get(f"{runtime.url}/v2/models/{home.model}/ready", timeout=10)
        assert answer.status_code == 404, answer.text
    finally:
        if worker is not None:
            worker.terminate()
            worker.close()
        if instance:
            with EngineClient(home.settings) as client:
                delete_unfinished(client, [instance])
        runtime.kill()
