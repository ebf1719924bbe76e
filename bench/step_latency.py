"""Step latency: instances of a one-task process started at a steady rate; the time from instance
start to its end right after the task completes, from the engine's history timestamps.

Contenders, each on its own topic against the same engine, with a no-op handler and long polling:

* ``mlc``        workers.runner.Worker (the `mlc worker start` runner), outcomes not recorded;
* ``mlc_recorded`` the same with each outcome recorded for replay in the MLC store (sqlite), as
  the built-in handlers run;
* ``lib_async``  camunda-external-task-client-python3's AsyncExternalTaskWorker;
* ``lib_sync``   its ExternalTaskWorker.

Each contender first gets a warm-up series (not counted). Reported per contender: median, p95
and max of start-to-end in ms (history timestamps are whole milliseconds), instances started and
ended. Usage::

    python -m bench.step_latency [--smoke] [--rate 5] [--seconds 60] [--engine-url URL]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import tempfile
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from bench._common import emit
from bench.run import local_engine

CONCURRENCY = 8
LONG_POLL_MS = 5_000


def _when(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))], 1)


class Running:
    """A worker running in a background thread until ``stop()``."""

    def __init__(self, target: Callable[[], None], stop: Callable[[], None]) -> None:
        self._stop = stop
        self.thread = threading.Thread(target=target, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self._stop()
        self.thread.join(timeout=15)


def start_mlc(settings: Any, topic: str, *, replay: bool = False) -> Running:
    from modelops_mlc.engine import ExternalTaskApi
    from workers.daemon import Worker, WorkerOptions
    from workers.handlers import TopicHandlers

    handlers = TopicHandlers()

    @handlers.topic(topic, replay=replay)
    async def handler(ctx):  # noqa: ANN001
        return {}

    loop = asyncio.new_event_loop()
    options = WorkerOptions(concurrency=CONCURRENCY, long_poll_ms=LONG_POLL_MS)
    api = ExternalTaskApi(settings, options.worker_id)
    worker = Worker(settings, options, handlers, api)

    def target() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(worker.run(install_signal_handlers=False))
        loop.run_until_complete(api.aclose())

    return Running(target, lambda: loop.call_soon_threadsafe(worker.request_shutdown))


def start_lib_async(settings: Any, topic: str) -> Running:
    from camunda.external_task.async_external_task_worker import AsyncExternalTaskWorker

    async def handler(task):  # noqa: ANN001
        return task.complete({})

    loop = asyncio.new_event_loop()
    done = asyncio.Event()

    async def main() -> None:
        worker = AsyncExternalTaskWorker("bench-latency-async", settings.engine_url,
                                         {"maxConcurrentTasks": CONCURRENCY, "asyncResponseTimeout": LONG_POLL_MS})
        job = asyncio.create_task(worker.subscribe({topic: handler}))
        await done.wait()
        await worker.stop()
        job.cancel()
        await asyncio.gather(job, return_exceptions=True)

    def target() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(main())

    return Running(target, lambda: loop.call_soon_threadsafe(done.set))


def start_lib_sync(settings: Any, topic: str) -> Running:
    from camunda.external_task.external_task_worker import ExternalTaskWorker

    def handler(task):  # noqa: ANN001
        return task.complete({})

    worker = ExternalTaskWorker("bench-latency-sync", settings.engine_url,
                                {"maxTasks": CONCURRENCY, "asyncResponseTimeout": LONG_POLL_MS, "sleepSeconds": 1})
    # subscribe() never returns: the daemon thread long-polls its own topic until the process exits.
    return Running(lambda: worker.subscribe(topic, handler), lambda: None)


CONTENDERS: dict[str, Callable[[Any, str], Running]] = {
    "mlc": start_mlc,
    "mlc_recorded": lambda settings, topic: start_mlc(settings, topic, replay=True),
    "lib_async": start_lib_async,
    "lib_sync": start_lib_sync,
}


def _start_at_rate(client: Any, topic: str, business_key: str, rate: float, count: int) -> int:
    began = time.perf_counter()
    for i in range(count):
        delay = began + i / rate - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        client.request("POST", f"/process-definition/key/{topic}/start", json={"businessKey": business_key})
    return count


def _wait_ended(client: Any, topic: str, count: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ended = int(client.request("GET", "/history/process-instance/count",
                                   params={"processDefinitionKey": topic, "finished": "true"})["count"])
        if ended >= count:
            return
        time.sleep(0.2)


def measure(settings: Any, client: Any, name: str, rate: float, seconds: float, work: Path) -> dict[str, Any]:
    from bench.worker_throughput import BPMN

    topic = f"bench-latency-{name.replace('_', '-')}-{int(time.time())}"
    path = work / f"{topic}.bpmn"
    path.write_text(BPMN.format(topic=topic, ident=topic.replace("-", "_")))
    client.deploy_processes([path], name=f"bench-{topic}")
    running = CONTENDERS[name](settings, topic)
    try:
        time.sleep(1.0)  # the worker's first long poll is open before the first start
        # Warm-up (not counted): connections, the engine's JIT and the worker's first fetches.
        warm = _start_at_rate(client, topic, "warmup", rate, max(5, int(rate)))
        _wait_ended(client, topic, warm, timeout=60)
        count = max(1, int(rate * seconds))
        _start_at_rate(client, topic, "measured", rate, count)
        _wait_ended(client, topic, warm + count, timeout=60)
    finally:
        running.stop()
    rows = client.request("GET", "/history/process-instance",
                          params={"processDefinitionKey": topic, "processInstanceBusinessKey": "measured",
                                  "finished": "true", "maxResults": count + 10})
    latencies = [(_when(r["endTime"]) - _when(r["startTime"])).total_seconds() * 1000 for r in rows]
    result: dict[str, Any] = {"contender": name, "started": count, "ended": len(latencies)}
    if latencies:
        result.update(median_ms=_pct(latencies, 0.5), p95_ms=_pct(latencies, 0.95), max_ms=round(max(latencies), 1))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="2 s at 5/s per contender")
    parser.add_argument("--rate", type=float, default=5.0, help="instances started per second")
    parser.add_argument("--seconds", type=float, help="how long to start instances (default 60, smoke 2)")
    parser.add_argument("--engine-url", help="engine REST base (default: start the local jar on a free port)")
    args = parser.parse_args()
    seconds = args.seconds or (2.0 if args.smoke else 60.0)

    import logging

    from modelops_mlc.config import Settings
    from modelops_mlc.engine import EngineClient

    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="mlc-bench-latency-") as tmp, ExitStack() as stack:
        work = Path(tmp)
        (work / "home").mkdir()
        engine_url = args.engine_url or stack.enter_context(local_engine())
        settings = Settings(home=work / "home", engine_url=engine_url)
        client = EngineClient(settings)
        rows = [measure(settings, client, name, args.rate, seconds, work) for name in CONTENDERS]
    figures: dict[str, Any] = {"rate_per_s": args.rate, "seconds": seconds, "concurrency": CONCURRENCY,
                               "long_poll_ms": LONG_POLL_MS, "contenders": rows, "target_median_ms": 20}
    emit("step_latency", figures, smoke=args.smoke)


if __name__ == "__main__":
    main()
