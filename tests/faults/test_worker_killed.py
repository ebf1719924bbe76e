"""A worker killed with -9 during every topic in turn: the engine redelivers the task once its lock
expires, the next worker runs it, and its effect happens exactly once.

The kill is timed on the engine, not in the handler: a fresh `mlc worker start` is started for
each step, and as soon as ``GET /external-task?workerId=...&locked=true`` shows it holding the
instance's task, its whole process group gets SIGKILL (product code runs unchanged). A kill that
came after the handler had finished counts as missed, not as tested.

Short form: the topics of the back-test life cycle (get-model, run-test, notify, create-ticket).
Full form (``make test-faults``): deploy-with-test too (train, deploy). The other topics of the life
cycle (monitoring, batch job, scan, retrain, canary) are in test_worker_killed_lifecycle.py.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from modelops_mlc.engine import EngineClient
from tests.conftest import free_port, mlc_command
from tests.faults.lifecycle import make_home
from tests.faults.support import KilledWorker, Scenario, ServerProcess, effects_per_instance
from tests.support.cleanup import delete_unfinished
from tests.support.waiting import wait_for

LOCK_MS = 2000


def test_worker_killed_during_each_back_test_topic(engine, tmp_path: Path, scenario: Scenario) -> None:
    """A passing back test (kills in get-model, run-test, notify) and a failing one (create-ticket);
    a topic whose kill came too late is tried again on another instance (at most three).

    Notifications go to a Slack-style webhook (a local stand-in that answers after 3 s), so the
    notify kill lands after the notification is stored and before the task completes: the
    redelivered task must not store a second one. (The webhook itself may get the message again:
    it has no idempotency key; ``webhook_posts`` records how often.)"""
    webhook = SlowWebhook()
    home = make_home(tmp_path / "home", engine.url, MLC_WEBHOOK_URL=webhook.url)
    paths = [(home.good, {"get-model", "run-test", "notify"}, "end_passed"),
             (home.flipped, {"create-ticket"}, "end_failed")]
    expected: dict[str, str] = {}
    with EngineClient(home.settings) as client:
        driver = KilledWorker(client, home.env, home.path, [
            "--process-key", "mlc-run-back-test", "--concurrency", "1", "--lock-duration", str(LOCK_MS),
            "--long-poll", "500"], tmp_path)
        try:
            for data, topics, end in paths:
                for _ in range(3):
                    if topics <= set(driver.killed):
                        break
                    instance = home.back_test(client, data)
                    expected[instance] = end
                    driver.run(instance, topics - set(driver.killed))
        finally:
            delete_unfinished(client, driver.instances)
            webhook.close()
        started = list(expected)
        scenario.faults = [f"worker kill -9 holding a {t} task" for t in driver.killed]
        scenario.peak_memory_mib = round(driver.peak_memory_mib, 1)
        states = scenario.count(client, started)
        incidents = [i for i in client.incidents() if i.process_instance_id in started]
        scenario.incidents = len(incidents)

        ends = {i: [a.activity_id for a in client.history_activities(i) if a.activity_type == "noneEndEvent"]
                for i in started}
        notified = effects_per_instance(home.env["MLC_STORE_URL"], "mlc_notifications", started)
        ticketed = effects_per_instance(home.env["MLC_STORE_URL"], "mlc_tickets", started)
        test_runs = _test_runs(home.settings, started, "FINISHED")
        scenario.effects_duplicated = sum(max(0, n - 1) for d in (notified, ticketed, test_runs) for n in d.values())

    scenario.faults.append(f"webhook posts per notified instance: {sorted(webhook.posts_per(started).values())}")
    assert states == {"COMPLETED": len(started)}
    assert incidents == []
    assert ends == {i: [end] for i, end in expected.items()}
    assert notified == {i: int(end == "end_passed") for i, end in expected.items()}
    assert ticketed == {i: int(end == "end_failed") for i, end in expected.items()}
    assert set(test_runs.values()) == {1}, "a redelivered run-test logged a second evaluation run"
    assert set(_test_runs(home.settings, started, "RUNNING").values()) == {0}, "a killed test still shows running"
    # each topic was really killed mid-task
    assert {"get-model", "run-test", "notify", "create-ticket"} <= set(driver.killed), (driver.killed, driver.missed)


def _test_runs(settings, instance_ids: list[str], status: str) -> dict[str, int]:
    """MLflow evaluation runs (``mlc.kind=test``) in ``status`` per process instance."""
    from modelops_mlc.registry import Registry

    registry = Registry(settings)
    runs = registry.client.search_runs([registry.experiment_id], "tags.`mlc.kind` = 'test'", max_results=1000)
    found = {i: 0 for i in instance_ids}
    for run in runs:
        pid = run.data.tags.get("mlc.process_instance_id")
        if pid in found and run.info.status == status:
            found[pid] += 1
    return found



@pytest.mark.faults
def test_worker_killed_during_each_deploy_with_test_topic(engine, tmp_path: Path, scenario: Scenario) -> None:
    """deploy-with-test with training, the metrics test, a review and an online deploy: a kill in
    get-model, train, run-test, deploy and notify. One trained version, one test run, one
    deployment serving, one notification."""
    home = make_home(tmp_path / "home", engine.url, tags={"train": "true", "run_test": "true"}, training_data=True)
    port = free_port()
    runtime = ServerProcess([*mlc_command(), "runtime", "serve", f"rt-{home.model}", "--port", str(port), "--tag",
                             "stage=QA"], home.env, f"http://127.0.0.1:{port}", "/v2/health/live", tmp_path / "rt.log")
    runtime.start()
    topics = {"get-model", "train", "run-test", "deploy", "notify"}
    try:
        with EngineClient(home.settings) as client:
            driver = KilledWorker(client, home.env, home.path, [
                "--process-key", "mlc-deploy-with-test", "--concurrency", "1", "--lock-duration", str(LOCK_MS),
                "--long-poll", "500"], tmp_path)
            instance = client.start("mlc-deploy-with-test", {"MODEL_ID": home.model, "MODEL_VERSION": 1}).id
            reviewer = threading.Thread(target=_approve, args=(client, instance), daemon=True)
            reviewer.start()
            try:
                driver.run(instance, topics, timeout=600)
            finally:
                delete_unfinished(client, [instance])
            scenario.faults = [f"worker kill -9 holding a {t} task" for t in driver.killed]
            scenario.peak_memory_mib = round(driver.peak_memory_mib, 1)
            states = scenario.count(client, [instance])
            scenario.incidents = len(client.incidents(process_instance_id=instance))
            ends = [a.activity_id for a in client.history_activities(instance) if a.activity_type == "noneEndEvent"]
        from modelops_mlc.registry import Registry

        versions = Registry(home.settings).list_versions(home.model)
        deployed = effects_per_instance(home.env["MLC_STORE_URL"], "mlc_deployments", [instance])
        notified = effects_per_instance(home.env["MLC_STORE_URL"], "mlc_notifications", [instance])
        test_runs = _test_runs(home.settings, [instance], "FINISHED")
        scenario.effects_duplicated = (max(0, len(versions) - 2) + max(0, deployed[instance] - 1)
                                       + max(0, notified[instance] - 1) + max(0, test_runs[instance] - 1))
        assert states == {"COMPLETED": 1}
        assert scenario.incidents == 0
        assert ends == ["end_deployed"]
        assert len(versions) == 2, "a redelivered train registered a second version"
        assert deployed == {instance: 1} and notified == {instance: 1} and test_runs == {instance: 1}
        assert topics <= set(driver.killed), (driver.killed, driver.missed)
    finally:
        runtime.kill()


def _approve(client: EngineClient, instance_id: str) -> None:
    """Approve the instance's review as soon as it waits for one (a reviewer in Tasklist)."""
    [task] = wait_for(lambda: client.tasks(process_instance_id=instance_id), timeout=600, what="the review task")
    client.complete_task(task.id, {"approved": True, "review_comment": "faults"})


class SlowWebhook:
    """A Slack-style incoming webhook on loopback that answers each POST after ``delay_s``."""

    def __init__(self, delay_s: float = 3.0) -> None:
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        posts = self.posts = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                posts.append(self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode())
                time.sleep(delay_s)
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def posts_per(self, instance_ids: list[str]) -> dict[str, int]:
        return {i: sum(i in body for body in self.posts) for i in instance_ids}

    def close(self) -> None:
        self.server.shutdown()
