"""Worker throughput against a real engine: our runner vs camunda-external-task-client-python3.

Starts N process instances with one external task each, then lets one worker drain them and
times it. Peers, in the same run and on the same engine (each on its own topic):

* ``mlc``        workers.runner.Worker (one long-polling fetch for free slots, pooled httpx);
* ``mlc_recorded`` the same with each outcome recorded for replay (sqlite MLC store), as the
  built-in handlers run;
* ``lib_async``  camunda.external_task.AsyncExternalTaskWorker (maxConcurrentTasks = concurrency);
* ``lib_sync``   camunda.external_task.ExternalTaskWorker (maxTasks = concurrency, one at a time).

Each handler waits ``--work-ms`` (I/O-bound work, e.g. a call to a model server). Prints one
JSON line: tasks per second of each peer and the ratio to ours. Usage::

    python bench/worker_throughput.py [--engine-url URL] [--tasks 200] [--concurrency 8] [--work-ms 20]

Without ``--engine-url`` it starts the local engine jar on a free port and stops it after.

Figures measured while choosing (2 shared cores, local jar with H2, 200 tasks, concurrency 8,
20 ms of work) are quoted in workers/runner.py.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from modelops_mlc.config import Settings  # noqa: E402
from modelops_mlc.engine import EngineClient  # noqa: E402
from modelops_mlc.engine.variables import to_engine  # noqa: E402

BPMN = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
  xmlns:camunda="http://camunda.org/schema/1.0/bpmn" id="Defs_{ident}" targetNamespace="bench">
  <bpmn:process id="{topic}" isExecutable="true" camunda:historyTimeToLive="P1D">
    <bpmn:startEvent id="Start" />
    <bpmn:sequenceFlow id="F1" sourceRef="Start" targetRef="Task" />
    <bpmn:serviceTask id="Task" camunda:type="external" camunda:topic="{topic}" />
    <bpmn:sequenceFlow id="F2" sourceRef="Task" targetRef="End" />
    <bpmn:endEvent id="End" />
  </bpmn:process>
</bpmn:definitions>
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _prepare(client: EngineClient, topic: str, tasks: int, tmp: Path) -> None:
    path = tmp / f"{topic}.bpmn"
    path.write_text(BPMN.format(topic=topic, ident=topic.replace("-", "_")))
    client.deploy([path], name=f"bench-{topic}")
    for _ in range(tasks):
        client.request("POST", f"/process-definition/key/{topic}/start", json={"variables": to_engine({})})


def _open_tasks(client: EngineClient, topic: str) -> int:
    return int(client.request("GET", "/external-task/count", params={"topicName": topic})["count"])


def _wait_drained(client: EngineClient, topic: str, timeout: float) -> float:
    start = time.monotonic()
    while _open_tasks(client, topic) > 0:
        if time.monotonic() - start > timeout:
            raise RuntimeError(f"{topic}: not drained within {timeout} s")
        time.sleep(0.05)
    return time.monotonic()


def run_mlc(settings: Settings, client: EngineClient, topic: str, concurrency: int, work_ms: int, timeout: float,
            *, replay: bool = False) -> float:
    from workers.registry import TopicRegistry
    from workers.runner import Worker, WorkerOptions

    registry = TopicRegistry()

    @registry.topic(topic, replay=replay)
    async def handler(ctx):  # noqa: ANN001
        await asyncio.sleep(work_ms / 1000)
        return {}

    async def main() -> float:
        worker = Worker(settings, WorkerOptions(concurrency=concurrency, long_poll_ms=5_000), registry)
        start = time.monotonic()
        job = asyncio.create_task(worker.run(install_signal_handlers=False))
        end = await asyncio.to_thread(_wait_drained, client, topic, timeout)
        worker.request_shutdown()
        await job
        return end - start

    return asyncio.run(main())


def run_lib_async(settings: Settings, client: EngineClient, topic: str, concurrency: int, work_ms: int,
                  timeout: float) -> float:
    from camunda.external_task.async_external_task_worker import AsyncExternalTaskWorker

    async def handler(task):  # noqa: ANN001
        await asyncio.sleep(work_ms / 1000)
        return task.complete({})

    async def main() -> float:
        worker = AsyncExternalTaskWorker("bench-lib-async", settings.engine_url,
                                         {"maxConcurrentTasks": concurrency, "asyncResponseTimeout": 5_000})
        start = time.monotonic()
        job = asyncio.create_task(worker.subscribe({topic: handler}))
        end = await asyncio.to_thread(_wait_drained, client, topic, timeout)
        await worker.stop()
        job.cancel()
        await asyncio.gather(job, return_exceptions=True)
        return end - start

    return asyncio.run(main())


def run_lib_sync(settings: Settings, client: EngineClient, topic: str, concurrency: int, work_ms: int,
                 timeout: float) -> float:
    from camunda.external_task.external_task_worker import ExternalTaskWorker

    def handler(task):  # noqa: ANN001
        time.sleep(work_ms / 1000)
        return task.complete({})

    worker = ExternalTaskWorker("bench-lib-sync", settings.engine_url,
                                {"maxTasks": concurrency, "asyncResponseTimeout": 5_000, "sleepSeconds": 1})
    start = time.monotonic()
    # subscribe() never returns (and swallows KeyboardInterrupt): a daemon thread dies with us.
    threading.Thread(target=worker.subscribe, args=(topic, handler), daemon=True).start()
    return _wait_drained(client, topic, timeout) - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine-url")
    parser.add_argument("--tasks", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--work-ms", type=int, default=20)
    parser.add_argument("--timeout", type=float, default=300)
    args = parser.parse_args()

    import logging

    logging.basicConfig(level=logging.WARNING)
    local = None
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        if args.engine_url:
            settings = Settings(engine_url=args.engine_url, home=tmp / "home")
        else:
            from modelops_mlc.engine.local import LocalEngine

            settings = Settings(home=tmp / "home", engine_port=_free_port())
            local = LocalEngine(settings)
            local.start(timeout=240)
        try:
            client = EngineClient(settings)
            stamp = str(int(time.time()))
            peers = {
                "mlc": run_mlc,
                "mlc_recorded": lambda *a: run_mlc(*a, replay=True),  # outcomes recorded in the MLC store
                "lib_async": run_lib_async,
                "lib_sync": run_lib_sync,
            }
            figures: dict[str, object] = {"bench": "worker_throughput", "tasks": args.tasks,
                                          "concurrency": args.concurrency, "work_ms": args.work_ms}
            for name, runner in peers.items():
                topic = f"bench-{name.replace('_', '-')}-{stamp}"
                _prepare(client, topic, args.tasks, tmp)
                seconds = runner(settings, client, topic, args.concurrency, args.work_ms, args.timeout)
                figures[f"{name}_seconds"] = round(seconds, 3)
                figures[f"{name}_tasks_per_s"] = round(args.tasks / seconds, 1)
            for name in ("lib_async", "lib_sync"):
                figures[f"mlc_vs_{name}"] = round(figures[f"{name}_seconds"] / figures["mlc_seconds"], 2)  # type: ignore[operator]
            print(json.dumps(figures))
        finally:
            if local is not None:
                local.stop()


if __name__ == "__main__":
    main()
