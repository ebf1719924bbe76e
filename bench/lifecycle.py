"""Lifecycle scale: 1,000 `mlc-run-back-test` processes fired at once, run by `mlc worker start`.

One registered model (StandardScaler + Ridge on diabetes) and its labelled test data; bpmn/ is
deployed to the engine; one worker daemon serves every topic of the process (get-model, run-test,
the decision in the engine, notify or create-ticket). After one warm-up instance, N signals
`mlc.run-back-test` are fired together and the benchmark waits until every instance has ended.
Reported: the time from the first start to the last end (engine history), the completion rate,
the end events reached, the worker's peak memory (whole process tree, sampled), the incidents
(must be 0) and the instances lost (signals that started no instance; must be 0).

Usage: python -m bench.lifecycle [--smoke] [--instances N] [--engine-url URL] [--concurrency C]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import signal
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from bench._common import emit
from bench._models import MODEL_NAME, bench_home, register_model

ROOT = Path(__file__).resolve().parents[1]
PROCESS_KEY = "mlc-run-back-test"
SIGNAL = "mlc.run-back-test"


def _mlc() -> list[str]:
    script = Path(sys.executable).parent / "mlc"
    return [str(script)] if script.exists() else [sys.executable, "-m", "modelops_mlc.cli.app"]


def _when(text: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None


class TreeMemory:
    """Samples the RSS of a process and its children; keeps the largest total seen."""

    def __init__(self, pid: int) -> None:
        import psutil

        self.root = psutil.Process(pid)
        self.peak = 0.0

    def sample(self) -> None:
        import psutil

        try:
            procs = [self.root, *self.root.children(recursive=True)]
        except psutil.Error:
            return
        total = 0
        for proc in procs:
            try:
                total += proc.memory_info().rss
            except psutil.Error:
                continue
        self.peak = max(self.peak, total / 2**20)


def history(client: Any, token: str, limit: int) -> list[dict[str, Any]]:
    """The instances of this run (running or ended), from the engine's history."""
    return client.request(
        "POST", "/history/process-instance", params={"maxResults": limit + 10},
        json={"processDefinitionKey": PROCESS_KEY, "variables": [{"name": "BENCH_RUN", "operator": "eq", "value": token}]},
    )


def fire(client: Any, token: str, variables: dict[str, Any], count: int) -> float:
    started = time.perf_counter()
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda i: client.signal(SIGNAL, {**variables, "BENCH_RUN": token, "BENCH_SEQ": i}), range(count)))
    return time.perf_counter() - started


def wait_ended(client: Any, token: str, count: int, timeout: float, memory: TreeMemory,
               worker: subprocess.Popen[bytes]) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        memory.sample()
        rows = history(client, token, count)
        ended = [r for r in rows if r.get("endTime")]
        if len(ended) >= count or time.monotonic() > deadline or worker.poll() is not None:
            return rows
        time.sleep(1.0)


def run(settings: Any, env: dict[str, str], work: Path, count: int, concurrency: int, timeout: float,
        worker_log: Path | None = None, log_level: str = "warning") -> dict[str, Any]:
    from sklearn.datasets import load_diabetes

    from modelops_mlc.engine import EngineClient

    client = EngineClient(settings)
    client.deploy_processes([ROOT / "bpmn"], name="mlc-bench-lifecycle")
    model_id = register_model(settings.home)
    data = work / "test-data.csv"
    load_diabetes(as_frame=True).frame.to_csv(data, index=False)
    variables = {"MODEL_ID": MODEL_NAME, "INPUT_FILE": str(data), "TICKET_SYSTEM": "local"}

    log = open(worker_log or work / "worker.log", "wb")
    worker = subprocess.Popen(
        [*_mlc(), "worker", "start", "--concurrency", str(concurrency), "--process-key", PROCESS_KEY,
         "--log-format", "json", "--log-level", log_level],
        env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    memory = TreeMemory(worker.pid)
    try:
        warm = uuid.uuid4().hex
        fire(client, warm, variables, 1)
        rows = wait_ended(client, warm, 1, 300, memory, worker)
        if worker.poll() is not None or not rows or not rows[0].get("endTime"):
            tail = Path(log.name).read_text(errors="replace").strip().splitlines()[-1:]
            raise RuntimeError(f"warm-up instance did not end (worker: {tail})")

        token = uuid.uuid4().hex
        fire_s = fire(client, token, variables, count)
        rows = wait_ended(client, token, count, timeout, memory, worker)
        memory.sample()
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGTERM)
            try:
                worker.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(worker.pid, signal.SIGKILL)
                worker.wait()
        log.close()

    ids = {r["id"] for r in rows}
    ended = [r for r in rows if r.get("endTime")]
    incidents = [i for i in client.request("GET", "/history/incident", params={"processDefinitionKey": PROCESS_KEY})
                 if i.get("processInstanceId") in ids]
    outcomes: dict[str, int] = {}
    end_events = client.request("GET", "/history/activity-instance", params={
        "processDefinitionKey": PROCESS_KEY, "activityType": "noneEndEvent", "finished": "true"})
    for act in end_events:
        if act.get("processInstanceId") in ids:
            outcomes[act["activityId"]] = outcomes.get(act["activityId"], 0) + 1
    starts = [_when(r.get("startTime")) for r in rows]
    ends = [_when(r.get("endTime")) for r in ended]
    span = (max(ends) - min(starts)).total_seconds() if ends and len(ended) == count else None
    return {
        "model": model_id,
        "signal_fire_s": round(fire_s, 2),
        "time_to_all_ended_s": round(span, 2) if span is not None else None,
        "instances_per_s": round(count / span, 2) if span else None,
        "completed": len(ended),
        "completion_rate": round(len(ended) / count, 4),
        "outcomes": outcomes,
        "worker_peak_rss_mib": round(memory.peak, 1),
        "incidents": len(incidents),
        "instances_lost": count - len(ids),
        "still_running": len(ids) - len(ended),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="10 instances")
    parser.add_argument("--instances", type=int, help="instances to fire (default 1000, smoke 10)")
    parser.add_argument("--concurrency", type=int, default=8, help="the worker's --concurrency")
    parser.add_argument("--engine-url", help="engine REST base (default: start the local jar on a free port)")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds to wait for every instance to end")
    parser.add_argument("--worker-log", type=Path, help="keep the worker's log (JSON lines) here")
    parser.add_argument("--worker-log-level", default="warning", help="the worker's --log-level")
    args = parser.parse_args()
    count = args.instances or (10 if args.smoke else 1000)

    with bench_home("mlc-bench-lifecycle-", args.engine_url) as (work, env, settings):
        figures = {"instances": count, "worker_concurrency": args.concurrency,
                   **run(settings, env, work, count, args.concurrency, args.timeout if not args.smoke else 300,
                         args.worker_log, args.worker_log_level),
                   "targets": {"incidents": 0, "instances_lost": 0, "completion_rate": 1.0}}
    emit("lifecycle", figures, smoke=args.smoke)


if __name__ == "__main__":
    main()
