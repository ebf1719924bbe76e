"""Worker throughput against a real engine: our runner vs the Python and JavaScript clients and the bound.

N instances of a one-task process are started and suspended; each contender (its own process,
its own topic, the same engine) first drains a warm-up batch that is not counted, then the batch
is activated and timed until the engine has no open task left on the topic. Before the first
contender the engine itself is warmed up (``--engine-warmup`` tasks drained by the bound), and
the contenders run in ``--rounds`` rounds in a rotating order, the median of a contender's rounds
counting: the engine (a JVM on shared cores) still speeds up or slows down during a run, and a
fixed order would hand that drift to whoever runs first or last. Contenders:

* ``bound``      a tight aiohttp loop: fetchAndLock (maxTasks 100) and complete with no work, the
  completes ``--concurrency`` at a time: what the engine itself allows;
* ``bound_httpx`` the same loop on httpx (the bound of earlier runs; httpx costs the client more CPU);
* ``mlc``        workers.daemon.Worker (one long-polling fetch for the free slots and a short queue);
* ``mlc_recorded`` the same with each outcome recorded for replay (sqlite MLC store), as the
  built-in handlers run;
* ``js_default`` / ``js_tuned`` Camunda's ``camunda-external-task-client-js`` (bench/js/worker.js, node);
* ``lib_async_default`` / ``lib_async_tuned`` camunda-external-task-client-python3's AsyncExternalTaskWorker;
* ``lib_sync_default`` / ``lib_sync_tuned`` its ExternalTaskWorker.

"default" is the library's defaults with its parallelism knob (if it has one) set to
``--concurrency``; "tuned" adds larger fetches, long polling and short sleeps (see ``settings``
in each row). Each handler waits ``--work-ms`` (0: no-op). Prints one JSON line: tasks/s of
each contender, its share of the bound, and mlc's ratio to each peer. With ``--work-ms`` above 0
the result is ``worker_throughput_io`` and compares with the ceiling, concurrency / work time
(the bounds, which do no work, are left out). Usage::

    python -m bench.worker_throughput [--smoke] [--engine-url URL] [--tasks 300] [--rounds 3]
        [--concurrency 8] [--work-ms 0] [--warmup 50] [--engine-warmup 1000] [--only NAME ...]

Without ``--engine-url`` it starts the local engine jar on a free port and stops it after. The
JS contenders need node and ``npm ci --prefix bench/js`` (``make bench`` does it); without them
they are reported ``unavailable`` with the reason.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

JS_DIR = ROOT / "bench" / "js"

# Kept as is: bench/step_latency.py formats it with topic= and ident= (process id = topic).
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
# The same process under its own key, on a given topic (the warm-up batch shares the timed topic).
BPMN_KEYED = BPMN.replace('<bpmn:process id="{topic}"', '<bpmn:process id="{key}"')

# name -> (kind, settings). The "concurrency" entries are filled in from --concurrency.
CONTENDERS: dict[str, tuple[str, dict[str, Any]]] = {
    "bound": ("bound", {"maxTasks": 100, "asyncResponseTimeout": 1_000, "parallel_completes": "concurrency",
                        "http": "aiohttp"}),
    "bound_httpx": ("bound", {"maxTasks": 100, "asyncResponseTimeout": 1_000, "parallel_completes": "concurrency",
                              "http": "httpx"}),
    "mlc": ("mlc", {"concurrency": "concurrency", "long_poll_ms": 5_000, "prefetch": "concurrency"}),
    "mlc_recorded": ("mlc", {"concurrency": "concurrency", "long_poll_ms": 5_000, "prefetch": "concurrency",
                             "replay": True}),
    "js_default": ("js", {"maxParallelExecutions": "concurrency"}),
    "js_tuned": ("js", {"maxTasks": 100, "maxParallelExecutions": "concurrency", "asyncResponseTimeout": 5_000,
                        "interval": 5}),
    "lib_async_default": ("lib_async", {"maxConcurrentTasks": "concurrency"}),
    "lib_async_tuned": ("lib_async", {"maxConcurrentTasks": "concurrency", "asyncResponseTimeout": 5_000,
                                      "sleepSeconds": 0}),
    "lib_sync_default": ("lib_sync", {}),
    "lib_sync_tuned": ("lib_sync", {"maxTasks": 100, "asyncResponseTimeout": 5_000, "sleepSeconds": 1}),
}
PEERS_OF_MLC = [n for n in CONTENDERS if n not in ("mlc", "bound")]
BOUNDS = ("bound", "bound_httpx")


def _settings_for(name: str, concurrency: int) -> dict[str, Any]:
    return {k: (concurrency if v == "concurrency" else v) for k, v in CONTENDERS[name][1].items()}


# -- the contenders, each run as ``--serve NAME`` in its own process until SIGTERM ---------------

def _stop_event() -> threading.Event:
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    return stop


def serve_bound(url: str, topic: str, opts: dict[str, Any], work_ms: int) -> None:
    stop = _stop_event()
    parallel = int(opts["parallel_completes"])
    body = {"workerId": "bench-bound", "maxTasks": opts["maxTasks"], "asyncResponseTimeout": opts["asyncResponseTimeout"],
            "topics": [{"topicName": topic, "lockDuration": 60_000}]}

    async def on_httpx() -> None:
        import httpx

        limits = httpx.Limits(max_connections=parallel + 2, max_keepalive_connections=parallel + 2)
        async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as http:
            gate = asyncio.Semaphore(parallel)

            async def complete(task_id: str) -> None:
                async with gate:
                    r = await http.post(f"/external-task/{task_id}/complete", json={"workerId": "bench-bound"})
                    r.raise_for_status()

            while not stop.is_set():
                r = await http.post("/external-task/fetchAndLock", json=body)
                r.raise_for_status()
                await asyncio.gather(*(complete(t["id"]) for t in r.json()))

    async def on_aiohttp() -> None:
        import aiohttp

        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=parallel + 2),
                                         timeout=aiohttp.ClientTimeout(total=30)) as http:
            gate = asyncio.Semaphore(parallel)

            async def complete(task_id: str) -> None:
                async with gate:
                    async with http.post(f"{url}/external-task/{task_id}/complete",
                                         json={"workerId": "bench-bound"}) as r:
                        r.raise_for_status()

            while not stop.is_set():
                async with http.post(f"{url}/external-task/fetchAndLock", json=body) as r:
                    r.raise_for_status()
                    tasks = await r.json()
                await asyncio.gather(*(complete(t["id"]) for t in tasks))

    asyncio.run(on_aiohttp() if opts.get("http") == "aiohttp" else on_httpx())


def serve_mlc(url: str, topic: str, opts: dict[str, Any], work_ms: int, home: Path) -> None:
    from modelops_mlc.config import Settings
    from modelops_mlc.engine import ExternalTaskApi
    from workers.daemon import Worker, WorkerOptions
    from workers.handlers import TopicHandlers

    handlers = TopicHandlers()

    @handlers.topic(topic, replay=bool(opts.get("replay")))
    async def handler(ctx):  # noqa: ANN001
        if work_ms:
            await asyncio.sleep(work_ms / 1000)
        return {}

    settings = Settings(engine_url=url, home=home)
    options = WorkerOptions(concurrency=int(opts["concurrency"]), long_poll_ms=int(opts["long_poll_ms"]),
                            prefetch=int(opts["prefetch"]), grace_period_s=2.0)

    async def main() -> None:
        async with ExternalTaskApi(settings, options.worker_id, max_connections=options.concurrency * 2 + 4) as api:
            await Worker(settings, options, handlers, api).run(install_signal_handlers=True)

    asyncio.run(main())


def serve_lib_async(url: str, topic: str, opts: dict[str, Any], work_ms: int) -> None:
    from camunda.external_task.async_external_task_worker import AsyncExternalTaskWorker

    async def handler(task):  # noqa: ANN001
        if work_ms:
            await asyncio.sleep(work_ms / 1000)
        return task.complete({})

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        worker = AsyncExternalTaskWorker(f"bench-lib-async-{os.getpid()}", url, dict(opts))
        job = asyncio.create_task(worker.subscribe({topic: handler}))
        await stop.wait()
        await worker.stop()
        job.cancel()
        await asyncio.gather(job, return_exceptions=True)

    asyncio.run(main())


def serve_lib_sync(url: str, topic: str, opts: dict[str, Any], work_ms: int) -> None:
    from camunda.external_task.external_task_worker import ExternalTaskWorker

    def handler(task):  # noqa: ANN001
        if work_ms:
            time.sleep(work_ms / 1000)
        return task.complete({})

    worker = ExternalTaskWorker(f"bench-lib-sync-{os.getpid()}", url, dict(opts))
    # subscribe() is ``while True: self._fetch_and_execute_safe(...)`` and swallows every signal;
    # run that same loop in a daemon thread and leave when told.
    stop = _stop_event()

    def loop() -> None:
        while not stop.is_set():
            worker._fetch_and_execute_safe(topic, handler)

    threading.Thread(target=loop, daemon=True).start()
    while not stop.wait(0.2):
        pass


def serve(args: argparse.Namespace) -> None:
    import logging

    logging.basicConfig(level=logging.WARNING)
    kind = CONTENDERS[args.serve][0]
    opts = _settings_for(args.serve, args.concurrency)
    if kind == "bound":
        serve_bound(args.engine_url, args.topic, opts, args.work_ms)
    elif kind == "mlc":
        serve_mlc(args.engine_url, args.topic, opts, args.work_ms, Path(args.home))
    elif kind == "lib_async":
        serve_lib_async(args.engine_url, args.topic, opts, args.work_ms)
    elif kind == "lib_sync":
        serve_lib_sync(args.engine_url, args.topic, opts, args.work_ms)
    else:
        raise SystemExit(f"cannot serve {args.serve} from Python")
    os._exit(0)  # the library workers leave threads and long polls behind


# -- the measurement -------------------------------------------------------------------------

def js_unavailable() -> str | None:
    """Why the JS contender cannot run here, or None."""
    if shutil.which("node") is None:
        return "node not found on PATH"
    if not (JS_DIR / "node_modules" / "camunda-external-task-client-js" / "package.json").exists():
        how = "run `npm ci --prefix bench/js`" if shutil.which("npm") else "npm not found on PATH"
        return f"camunda-external-task-client-js is not installed in bench/js ({how})"
    return None


def contender_command(name: str, url: str, topic: str, args: argparse.Namespace, home: Path) -> list[str]:
    kind = CONTENDERS[name][0]
    if kind == "js":
        opts = _settings_for(name, args.concurrency)
        flags = {"maxTasks": "--max-tasks", "maxParallelExecutions": "--max-parallel",
                 "asyncResponseTimeout": "--async-response-timeout", "interval": "--interval"}
        cmd = ["node", str(JS_DIR / "worker.js"), "--base-url", url, "--topic", topic, "--work-ms", str(args.work_ms)]
        for key, value in opts.items():
            cmd += [flags[key], str(value)]
        return cmd
    return [sys.executable, "-m", "bench.worker_throughput", "--serve", name, "--engine-url", url, "--topic", topic,
            "--concurrency", str(args.concurrency), "--work-ms", str(args.work_ms), "--home", str(home)]


class Bench:
    def __init__(self, client: Any, url: str, args: argparse.Namespace, work: Path) -> None:
        self.client, self.url, self.args, self.work = client, url, args, work
        self.stamp = str(int(time.time()))
        self.pool = ThreadPoolExecutor(max_workers=4)

    def _deploy(self, key: str, topic: str) -> None:
        path = self.work / f"{key}.bpmn"
        path.write_text(BPMN_KEYED.format(key=key, topic=topic, ident=key.replace("-", "_")))
        self.client.deploy_processes([path], name=f"bench-{key}")

    def _start(self, key: str, count: int) -> None:
        def one(_: int) -> None:
            self.client.request("POST", f"/process-definition/key/{key}/start", json={})

        list(self.pool.map(one, range(count)))

    def _suspend(self, key: str, suspended: bool) -> None:
        self.client.request("PUT", f"/process-definition/key/{key}/suspended",
                            json={"suspended": suspended, "includeProcessInstances": True})

    def _open(self, topic: str, active_only: bool = False) -> int:
        params = {"topicName": topic, **({"active": "true"} if active_only else {})}
        return int(self.client.request("GET", "/external-task/count", params=params)["count"])

    def _wait(self, topic: str, proc: subprocess.Popen, *, active_only: bool, what: str) -> float:
        deadline = time.monotonic() + self.args.timeout
        while self._open(topic, active_only) > 0:
            if proc.poll() is not None:
                raise RuntimeError(f"the contender exited with code {proc.returncode} during {what}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{what} not drained within {self.args.timeout:.0f} s")
            time.sleep(0.02)
        return time.monotonic()

    def warm_engine(self, count: int) -> None:
        """Drain ``count`` tasks with the bound, not timed: the engine's JIT and caches are warm
        before the first contender (otherwise whoever runs first runs on a cold engine)."""
        topic = f"wt-engine-warmup-{self.stamp}"
        self._deploy(topic, topic)
        self._start(topic, count)
        with open(self.work / "engine-warmup.log", "wb") as out:
            proc = subprocess.Popen(contender_command("bound", self.url, topic, self.args, self.work), cwd=ROOT,
                                    stdout=out, stderr=subprocess.STDOUT)
        try:
            self._wait(topic, proc, active_only=False, what="the engine warm-up")
        finally:
            _stop(proc)

    def measure(self, name: str, round_no: int = 0) -> dict[str, Any]:
        args = self.args
        row: dict[str, Any] = {"contender": name, "settings": json.dumps(_settings_for(name, args.concurrency))}
        if CONTENDERS[name][0] == "js" and (why := js_unavailable()):
            row["unavailable"] = why
            return row
        topic = f"wt-{name.replace('_', '-')}-{self.stamp}-r{round_no}"
        key, warm_key = topic, f"{topic}-warm"
        self._deploy(key, topic)
        self._deploy(warm_key, topic)
        began = time.monotonic()
        self._start(key, args.tasks)
        self._suspend(key, True)  # held back until the contender is warm
        row["start_instances_per_s"] = round(args.tasks / (time.monotonic() - began), 1)
        self._start(warm_key, args.warmup)
        home = self.work / f"home-{name}"
        home.mkdir(exist_ok=True)
        log = self.work / f"{name}.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen(contender_command(name, self.url, topic, args, home), cwd=ROOT,
                                    stdout=out, stderr=subprocess.STDOUT)
        try:
            self._wait(topic, proc, active_only=True, what="the warm-up batch")
            t0 = time.monotonic()
            self._suspend(key, False)
            self._start(warm_key, 1)  # a new task wakes a pending long poll (activation may not)
            t1 = self._wait(topic, proc, active_only=False, what="the timed batch")
        except RuntimeError as exc:
            tail = log.read_text(errors="replace").strip().splitlines()[-3:]
            row["error"] = f"{exc}: {' | '.join(tail)}" if tail else str(exc)
            return row
        finally:
            _stop(proc)
        seconds = t1 - t0
        row["seconds"] = round(seconds, 3)
        row["tasks_per_s"] = round((args.tasks + 1) / seconds, 1)  # + the task that woke the poll
        return row


def _stop(proc: subprocess.Popen) -> None:
    """SIGTERM (mlc: stop fetching, drain), a second one after 1 s (skip the pending poll), then kill."""
    for wait in (1.0, 10.0):
        if proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue
    proc.kill()
    proc.wait()


def combine(name: str, runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One row per contender: the median of its rounds (tasks/s), every round's figure, any error."""
    import statistics

    row: dict[str, Any] = {"contender": name}
    first = runs[0]
    if "settings" in first:
        row["settings"] = first["settings"]
    if "unavailable" in first:
        row["unavailable"] = first["unavailable"]
        return row
    rates = [r["tasks_per_s"] for r in runs if r.get("tasks_per_s")]
    if rates:
        row["tasks_per_s"] = round(statistics.median(rates), 1)
        row["rounds_tasks_per_s"] = rates
    errors = [r["error"] for r in runs if "error" in r]
    if errors:
        row["error"] = f"{len(errors)} of {len(runs)} rounds failed: {errors[0]}"
    return row


def figures_from(rows: list[dict[str, Any]], args: argparse.Namespace) -> dict[str, Any]:
    tps = {r["contender"]: r["tasks_per_s"] for r in rows if r.get("tasks_per_s")}
    bound = tps.get("bound")
    ceiling = round(args.concurrency * 1000 / args.work_ms, 1) if args.work_ms else None
    for r in rows:
        if bound and r.get("tasks_per_s"):
            r["of_bound"] = round(r["tasks_per_s"] / bound, 3)
        if ceiling and r.get("tasks_per_s"):
            r["of_ceiling"] = round(r["tasks_per_s"] / ceiling, 3)
        if tps.get("mlc") and r.get("tasks_per_s") and r["contender"] != "mlc":
            r["mlc_over"] = round(tps["mlc"] / r["tasks_per_s"], 2)
    ratios: dict[str, Any] = {}
    mlc = tps.get("mlc")
    if mlc:
        if bound:
            ratios["mlc_over_bound"] = round(mlc / bound, 3)
        if ceiling:
            ratios["mlc_over_ceiling"] = round(mlc / ceiling, 3)
        for peer in PEERS_OF_MLC:
            if tps.get(peer):
                ratios[f"mlc_over_{peer}"] = round(mlc / tps[peer], 2)
    targets: dict[str, Any] = {}
    if mlc:
        js = [tps[n] for n in ("js_default", "js_tuned") if tps.get(n)]
        lib_async = [tps[n] for n in ("lib_async_default", "lib_async_tuned") if tps.get(n)]
        if js and not ceiling:
            targets["at_least_best_js"] = mlc >= max(js)
        if lib_async:
            targets["at_least_3x_best_lib_async"] = mlc >= 3 * max(lib_async)
        if bound:
            targets["at_least_80pct_of_bound"] = mlc >= 0.8 * bound
        if ceiling:
            targets["at_least_90pct_of_ceiling"] = mlc >= 0.9 * ceiling
    figures = {"tasks": args.tasks, "rounds": args.rounds, "warmup": args.warmup, "engine_warmup": args.engine_warmup,
               "concurrency": args.concurrency, "work_ms": args.work_ms}
    if ceiling:
        figures["ceiling_tasks_per_s"] = ceiling
    return {**figures, "tasks_per_s": tps, "ratios": ratios, "targets_met": targets, "contenders": rows}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes (20 tasks, 5 warm-up) to check it runs")
    parser.add_argument("--engine-url", help="engine REST base (default: start the local jar on a free port)")
    parser.add_argument("--tasks", type=int, help="timed tasks per contender and round (default 300, smoke 20)")
    parser.add_argument("--warmup", type=int, help="warm-up tasks per contender, not counted (default 50, smoke 5)")
    parser.add_argument("--engine-warmup", type=int,
                        help="tasks drained (not timed) before the first contender (default 1000, smoke 0)")
    parser.add_argument("--rounds", type=int, help="rounds, each contender once per round in a rotating order; "
                        "the median counts (default 3, smoke 1)")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--work-ms", type=int, default=0, help="each handler waits this long (I/O-bound work)")
    parser.add_argument("--timeout", type=float, default=600, help="per batch")
    parser.add_argument("--only", nargs="+", choices=list(CONTENDERS), help="run only these contenders")
    parser.add_argument("--serve", choices=list(CONTENDERS), help=argparse.SUPPRESS)  # internal: one contender
    parser.add_argument("--topic", help=argparse.SUPPRESS)
    parser.add_argument("--home", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        serve(args)
        return
    args.tasks = args.tasks or (20 if args.smoke else 300)
    args.rounds = args.rounds or (1 if args.smoke else 3)
    args.engine_warmup = args.engine_warmup if args.engine_warmup is not None else (0 if args.smoke else 1000)
    args.warmup = args.warmup if args.warmup is not None else (5 if args.smoke else 50)

    import logging

    from bench._common import emit
    from bench.run import local_engine
    from modelops_mlc.config import Settings
    from modelops_mlc.engine import EngineClient

    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="mlc-bench-wt-") as tmp, ExitStack() as stack:
        work = Path(tmp)
        url = args.engine_url or stack.enter_context(local_engine())
        client = EngineClient(Settings(engine_url=url, home=work / "home"))
        bench = Bench(client, url, args, work)
        if args.engine_warmup:
            print(f"worker_throughput: warming the engine up with {args.engine_warmup} tasks", file=sys.stderr,
                  flush=True)
            bench.warm_engine(args.engine_warmup)
        names = args.only or [n for n in CONTENDERS if not (args.work_ms and n in BOUNDS)]
        runs: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
        for round_no in range(args.rounds):
            shift = round_no % len(names)  # each round starts with another contender: drift spreads evenly
            for name in names[shift:] + names[:shift]:
                print(f"worker_throughput: round {round_no + 1}/{args.rounds}: {name} ...", file=sys.stderr,
                      flush=True)
                try:
                    row = bench.measure(name, round_no)
                except Exception as exc:  # an engine call of the set-up failed: say so, go on with the rest
                    row = {"contender": name, "error": f"{type(exc).__name__}: {exc}"}
                print(f"worker_throughput: {json.dumps(row)}", file=sys.stderr, flush=True)
                runs[name].append(row)
        rows = [combine(name, runs[name]) for name in names]
        bench.pool.shutdown()
    emit("worker_throughput_io" if args.work_ms else "worker_throughput", figures_from(rows, args), smoke=args.smoke)


if __name__ == "__main__":
    main()
