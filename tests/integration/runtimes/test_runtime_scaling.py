"""A runtime served by two processes on one port (`mlc runtime serve --workers 2`) counts every
request once in its metrics and routes every change made through either process; a runtime that
restarts on another port takes its deployments' endpoints along, and a client that calls where it
no longer is hears which runtime it wanted and where it is now.

The tests of this module share one installation (see conftest.py) and the runtime `pair`, which
each leaves serving bc/1 alone, so they do not depend on their order.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest

from modelops_mlc.errors import RuntimeServiceError
from modelops_mlc.runtimes import DeploymentManager
from modelops_mlc.runtimes.client import RuntimeClient, predict, v2_payload
from modelops_mlc.runtimes.live_figures import parse_counters

pytestmark = pytest.mark.slow

# the two-process runtime reconciles on its own only every 10 minutes: within a test, a change
# reaches a process only through the admin call it got or through the change stamp another wrote
LONG_RECONCILE = "600"


@pytest.fixture(scope="module")
def pair(stack):
    """Runtime `pair` (stage PAIR) in two processes, serving bc/1."""
    runtime = stack.serve("pair", "stage=PAIR", "tag=credit", options=("--workers", "2"),
                          env={"MLC_RUNTIME_RECONCILE_INTERVAL": LONG_RECONCILE})
    DeploymentManager(stack.settings).deploy("bc", "1", "PAIR")
    return runtime


@contextmanager
def _pinned(stack, pair) -> Iterator[dict[int, httpx.Client]]:
    """One kept-alive connection to each of the runtime's processes, by process id (the server
    closes a connection idle for 5 s: use them at once)."""
    auth = {"Authorization": f"Bearer {stack.admin_token}"}
    clients: dict[int, httpx.Client] = {}
    spare: list[httpx.Client] = []  # held open, so every new client opens a new connection
    deadline = time.monotonic() + 30
    try:
        while len(clients) < 2:
            assert time.monotonic() < deadline, f"new connections only reached processes {sorted(clients)}"
            client = httpx.Client(base_url=pair.endpoint, timeout=30, headers=auth,
                                  limits=httpx.Limits(max_connections=1))
            pid = client.get("/admin/status").json()["process"]
            if pid in clients:
                spare.append(client)
            else:
                clients[pid] = client
        yield clients
    finally:
        for client in [*clients.values(), *spare]:
            client.close()


def _rows(stack, start: int, n: int) -> dict:
    rows = stack.X.iloc[start:start + n]
    payload = v2_payload({"columns": list(rows.columns), "data": rows.to_numpy().tolist()})
    payload.pop("id")  # each request gets an id of its own
    return payload


def _until_all_route(stack, pair, wanted: dict[str, int], timeout: float = 20) -> None:
    """Ask over new connections until both processes have said they route ``wanted`` (versions of bc
    deployed and loaded, and their weights)."""
    auth = {"Authorization": f"Bearer {stack.admin_token}"}
    deadline = time.monotonic() + timeout
    views: dict[int, dict[str, int]] = {}
    while len(views) < 2 or any(v != wanted for v in views.values()):
        assert time.monotonic() < deadline, f"processes route {views}, not {wanted}"
        status = httpx.get(f"{pair.endpoint}/admin/status", headers=auth, timeout=30).json()
        views[status["process"]] = {d["version"]: d["traffic_weight"] for d in status["deployments"]
                                    if d["model"] == "bc" and d["state"] == "deployed" and d["loaded"]}
        time.sleep(0.05)


def test_two_processes_count_every_request_exactly_once(stack, pair):
    sent = {}
    with _pinned(stack, pair) as pinned:
        first = next(iter(pinned.values()))
        before = parse_counters(first.get("/metrics").text, "bc", "1")
        for n, (pid, client) in zip((40, 25), pinned.items()):
            for i in range(n):
                resp = client.post("/v2/models/bc/infer", json=_rows(stack, i, 1))
                assert resp.status_code == 200, resp.text
            bad = client.post("/v2/models/bc/infer", content=b"not json",
                              headers={"content-type": "application/json"})
            assert bad.status_code == 400
            assert client.get("/admin/status").json()["process"] == pid  # these went to that process
            sent[pid] = n + 1
        # whichever process answers /metrics reports both processes' requests, each once
        for client in pinned.values():
            counted = parse_counters(client.get("/metrics").text, "bc", "1").since(before)
            assert counted.requests == sum(sent.values())
            assert counted.errors == {"400": 2.0}
            assert counted.histogram()[-1][1] == sum(sent.values())


def test_a_change_made_through_one_process_routes_in_all(stack, pair):
    try:
        canary = stack.mlc("deployment", "create", "bc/2", "--stage", "PAIR", "--weight", "30", "--json")
        assert canary.returncode == 0, canary.stderr
        _until_all_route(stack, pair, {"1": 70, "2": 30})
        # a request key takes the same version whichever process answers
        taken = set()
        with _pinned(stack, pair) as pinned:
            for key in (f"customer-{i}" for i in range(30)):
                seen = {c.post("/v2/models/bc/infer", json=_rows(stack, 0, 1), headers={"X-Request-Key": key})
                        .headers["x-model-version"] for c in pinned.values()}
                assert len(seen) == 1, key
                taken |= seen
        assert taken == {"1", "2"}

        # the promotion reaches the runtime as one admin call, which one process answers
        promoted = stack.mlc("deployment", "promote", "bc", "--runtime", "pair", "--json")
        assert promoted.returncode == 0, promoted.stderr
        _until_all_route(stack, pair, {"2": 100})
        with _pinned(stack, pair) as pinned:
            for client in pinned.values():
                versions = {client.post("/v2/models/bc/infer", json=_rows(stack, 0, 1)).headers["x-model-version"]
                            for _ in range(20)}
                assert versions == {"2"}
    finally:  # back to bc/1 alone, as the module's other tests expect whatever order they run in
        back = stack.mlc("deployment", "rollback", "bc", "--runtime", "pair", "--json")
    assert back.returncode == 0, back.stderr
    _until_all_route(stack, pair, {"1": 100})


def test_a_restarted_runtime_takes_its_endpoints_along(stack, tmp_path):
    first = stack.serve("mover", "stage=MOVE", "tag=credit")
    dep = DeploymentManager(stack.settings).deploy("bc", "1", "MOVE")
    assert dep.endpoint == f"{first.endpoint}/v2/models/bc"
    data = tmp_path / "rows.csv"
    stack.X.iloc[:20].to_csv(data, index=False)
    expected = stack.estimators["1"].predict(stack.X.iloc[:20]).tolist()

    first.stop()
    down = stack.mlc("runtime", "predict", "bc", "--runtime", "mover", "--data", data)
    assert down.returncode != 0
    assert f"runtime 'mover' is unreachable at {first.endpoint} (last heartbeat" in down.stderr
    assert "status unhealthy: stopped" in down.stderr
    assert "Traceback" not in down.stderr and "refused" not in down.stderr.lower()

    second = stack.serve("mover", "stage=MOVE", "tag=credit")
    assert second.endpoint != first.endpoint
    listed = stack.mlc("deployment", "list", "--runtime", "mover", "--active", "--json")
    [endpoint] = [d["endpoint"] for d in json.loads(listed.stdout)]
    assert endpoint == f"{second.endpoint}/v2/models/bc"
    assert DeploymentManager(stack.settings).get(dep.id).endpoint == f"{second.endpoint}/v2/models/bc"

    rows = stack.X.iloc[:20]
    answer = predict(stack.settings, "bc", {"columns": list(rows.columns), "data": rows.to_numpy().tolist()},
                     runtime="mover")
    assert (answer["model_version"], answer["outputs"][0]["data"]) == ("1", expected)
    direct = httpx.post(f"{endpoint}/infer", json=_rows(stack, 0, 20), timeout=30)
    assert direct.json()["outputs"][0]["data"] == expected

    # a client still holding the old address is told where the runtime serves now
    with RuntimeClient("mover", first.endpoint, None, settings=stack.settings, failure=RuntimeServiceError) as stale:
        with pytest.raises(RuntimeServiceError) as info:
            stale.infer_v2("bc", None, _rows(stack, 0, 1))
    assert info.value.message == f"runtime 'mover' is unreachable at {first.endpoint}: it serves at {second.endpoint} now"
