"""A two-node engine cluster over one PostgreSQL database: life cycles started on both nodes run
to their end while one node is killed with -9, each with its effects exactly once; deployments
to both nodes at once do not duplicate; the SDK and the CLI go on to the node that answers.

The short form (20 life cycles) runs in ``make test``; ``make test-cluster`` runs 200.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from modelops_mlc.config import Settings
from modelops_mlc.engine import EngineClient
from tests.conftest import mlc_command
from tests.support.waiting import wait_for
from tests.integration.workers.wt_support import WorkerProcess

HERE = Path(__file__).resolve().parent
BPMN = HERE / "cluster_lifecycle.bpmn"
KEY = "test-cluster-lifecycle"
LOCK_MS = 10_000


def _node_client(cluster: Any, name: str) -> EngineClient:
    return EngineClient(Settings(home=cluster.settings.home, engine_url=cluster.nodes[name].url))


def _finished(client: EngineClient, run: str) -> dict[str, int]:
    """Instances of this run by history state (COMPLETED, ACTIVE, ...)."""
    rows = client.request("POST", "/history/process-instance", params={"maxResults": 10_000}, json={
        "processDefinitionKey": KEY,
        "variables": [{"name": "RUN", "operator": "eq", "value": run}],
    })
    counts: dict[str, int] = {}
    for r in rows:
        counts[r["state"]] = counts.get(r["state"], 0) + 1
    return counts


def _effects(store_url: str, table: str) -> list[str]:
    engine = create_engine(store_url)
    try:
        with engine.connect() as conn:
            return [r[0] for r in conn.execute(text(f"SELECT process_instance_id FROM {table}"))]
    finally:
        engine.dispose()


def _lifecycles_survive_a_killed_node(cluster: Any, env: dict[str, str], tmp_path: Path, count: int) -> None:
    cluster.ensure_up()
    run = uuid.uuid4().hex[:8]
    clients = {name: _node_client(cluster, name) for name in cluster.nodes}
    sdk = EngineClient(cluster.settings)  # both URLs: what a user's SDK and the CLI get
    try:
        sdk.deploy_processes([BPMN], name="mlc-cluster-test")
        started: list[str] = []
        for i in range(count):  # across the cluster: every other one on each node
            client = clients["a" if i % 2 else "b"]
            started.append(client.start(KEY, {"MODEL_ID": f"cluster-{run}-{i}", "RUN": run}).id)
        fetches_before = {name: cluster.fetches(name) for name in cluster.nodes}
        worker = WorkerProcess(env, Path(env["MLC_HOME"]), [
            "--topic", "notify", "--topic", "create-ticket", "--process-key", KEY,
            "--concurrency", "2", "--lock-duration", str(LOCK_MS), "--long-poll", "1000",
        ], tmp_path / "worker.log")
        try:
            worker.wait_ready()
            wait_for(lambda: _finished(sdk, run).get("COMPLETED"), timeout=120, interval=0.2,
                     what="a first completed life cycle")
            victim = cluster.nodes["a"]
            pid = victim.running_pid()
            assert pid is not None
            os.kill(pid, signal.SIGKILL)
            done_at_kill = _finished(clients["b"], run).get("COMPLETED", 0)
            assert done_at_kill < count, "every life cycle ended before the kill: nothing was tested"
            wait_for(lambda: victim.answering(timeout=1) is None, timeout=30, what="node a gone")

            wait_for(lambda: "ACTIVE" not in _finished(sdk, run), timeout=120 + count, what=f"all {count} life cycles to end")
            assert _finished(sdk, run) == {"COMPLETED": count}
            assert [i for i in sdk.incidents() if i.process_instance_id in started] == []
        finally:
            worker.terminate()
            worker.close()
        notified = _effects(env["MLC_STORE_URL"], "mlc_notifications")
        ticketed = _effects(env["MLC_STORE_URL"], "mlc_tickets")
        assert sorted(notified) == sorted(started), "a life cycle was notified twice, or never"
        assert sorted(ticketed) == sorted(started), "a life cycle got two tickets, or none"
        # the worker's fetches went to both nodes while both lived, and on to node b after the kill
        assert all(cluster.fetches(name) > fetches_before[name] for name in cluster.nodes)
        # the job executor ran on both nodes (the job log records each node's name as its hostname)
        logs = sdk.request("GET", "/history/job-log", params={"successLog": "true", "processDefinitionKey": KEY})
        assert {row["hostname"] for row in logs} >= {"a", "b"}
    finally:
        sdk.close()
        for client in clients.values():
            client.close()


def test_deploys_to_both_nodes_at_once_make_one_version(cluster, tmp_path) -> None:
    """The engine's deployment lock with duplicate filtering (``mlc deploy`` uses both): of six
    deploys of the same new file racing on two nodes, one creates the definition."""
    cluster.ensure_up()
    key = f"test-cluster-deploy-{uuid.uuid4().hex[:8]}"
    bpmn = tmp_path / "cluster_deploy.bpmn"
    bpmn.write_text(BPMN.read_text().replace(KEY, key))
    barrier = threading.Barrier(6)
    results: list[Any] = []

    def deploy(name: str) -> None:
        with _node_client(cluster, name) as client:
            barrier.wait()
            results.append(client.deploy_processes([bpmn], name="mlc-cluster-deploy"))

    threads = [threading.Thread(target=deploy, args=("ab"[i % 2],)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert len(results) == 6
    assert sum(r.created for r in results) == 1
    with EngineClient(cluster.settings) as client:
        versions = client.request("GET", "/process-definition", params={"key": key})
    assert [d["version"] for d in versions] == [1]


def test_the_sdk_and_the_cli_go_on_to_the_node_that_answers(cluster, cluster_env, tmp_path) -> None:
    from tests.conftest import free_port

    dead = f"http://127.0.0.1:{free_port()}/engine-rest"
    env = {**cluster_env, "MLC_ENGINE_URL": f"{dead},{cluster.nodes['b'].url}"}

    def mlc(*args: str, **extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*mlc_command(), *args], env={**env, **extra}, capture_output=True, text=True,
                              timeout=120, cwd=tmp_path)

    deployed = mlc("deploy", str(BPMN), "--json")
    assert deployed.returncode == 0, deployed.stderr
    with EngineClient(Settings(engine_url=env["MLC_ENGINE_URL"])) as client:  # the SDK, the same way
        started = client.start(KEY, {"RUN": uuid.uuid4().hex[:8], "MODEL_ID": "cli"})
        try:
            listed = mlc("instances", "--process", KEY, "--json")
            assert listed.returncode == 0, listed.stderr
            assert started.id in {row["id"] for row in json.loads(listed.stdout)}
        finally:  # no worker here: leave nothing for the next test's
            client.request("DELETE", f"/process-instance/{started.id}")

    nowhere = mlc("instances", "--json", MLC_ENGINE_URL=f"{dead},http://127.0.0.1:{free_port()}/engine-rest")
    assert nowhere.returncode == 5
    assert "cannot reach the engine at" in nowhere.stderr and dead in nowhere.stderr
    assert "Traceback" not in nowhere.stderr


def test_twenty_life_cycles_survive_a_node_killed_mid_run(cluster, cluster_env, tmp_path) -> None:
    _lifecycles_survive_a_killed_node(cluster, cluster_env, tmp_path, 20)


@pytest.mark.cluster
def test_two_hundred_life_cycles_survive_a_node_killed_mid_run(cluster, cluster_env, tmp_path) -> None:
    _lifecycles_survive_a_killed_node(cluster, cluster_env, tmp_path, 200)
