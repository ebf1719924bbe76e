"""Monitors at scale: 1,000 models, each with its own `mlc monitor schedule` (an mlc-monitor-schedule
instance whose timer throws mlc.monitor), the cycle compressed to a minute, one `mlc worker start`
serving the monitor's tasks. Measured over a window once every schedule exists: monitor runs per
second (mlc-monitor instances ended in the window), how late the timers fire (the job log's success time against
the job's due date, p50 and p99), incidents (0 expected), and the peak RSS of the engine and of the
worker (its process tree). The monitor's ML steps are stand-ins returning fixed figures
(bench/_monitor_handlers.py): this measures the orchestration, bench/drift.py the drift check.

Usage::

    python -m bench.monitor_scale [--smoke] [--models 1000] [--cycle 60] [--seconds 240] [--engine-url URL]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from bench._common import emit
from bench.run import local_engine

ROOT = Path(__file__).resolve().parents[1]
FILES = ["monitor.bpmn", "monitor_schedule.bpmn", "mlc-monitor-criteria.dmn"]
PAGE = 1000


def _when(text: str) -> dt.datetime:
    return dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%f%z")


def _iso(when: dt.datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}" + when.strftime("%z")


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))], 1)


class RssSampler:
    """Peak RSS (MiB) of a process and its children, sampled every half second in a thread."""

    def __init__(self, pid: int | None) -> None:
        self.pid = pid
        self.peak = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> "RssSampler":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        import psutil

        while self.pid and not self._stop.is_set():
            try:
                proc = psutil.Process(self.pid)
                rss = proc.memory_info().rss + sum(c.memory_info().rss for c in proc.children(recursive=True))
                self.peak = max(self.peak, rss / 2**20)
            except psutil.Error:
                pass
            self._stop.wait(0.5)


def _listening_pid(url: str) -> int | None:
    """The process listening on the engine URL's port (the local engine's java), if on this machine."""
    import psutil
    from urllib.parse import urlparse

    port = urlparse(url).port
    try:
        for conn in psutil.net_connections(kind="tcp"):
            if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port and conn.pid:
                return conn.pid
    except psutil.Error:
        return None
    return None


def _paged(client: Any, path: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    while True:
        rows = client.request("GET", path, params={**params, "firstResult": len(found), "maxResults": PAGE})
        found += rows
        if len(rows) < PAGE:
            return found


def run(engine_url: str, models: int, cycle: int, seconds: int, concurrency: int) -> dict[str, Any]:
    from modelops_mlc.config import Settings
    from modelops_mlc.engine import EngineClient
    from modelops_mlc.monitoring.schedules import SCHEDULE_PROCESS, schedule

    home = Path(tempfile.mkdtemp(prefix="mlc-bench-monitor-"))
    settings = Settings(home=home, engine_url=engine_url, engine_auth="none")
    client = EngineClient(settings, timeout=60)
    client.deploy_processes([ROOT / "bpmn" / f for f in FILES], name="bench-monitor-scale")
    prefix = f"bench-{os.getpid()}-"
    env = {**os.environ, "MLC_HOME": str(home), "MLC_ENGINE_URL": engine_url, "MLC_ENGINE_AUTH": "none",
           "MLC_STORE_URL": f"sqlite:///{home / 'mlc.db'}", "PYTHONPATH": str(ROOT)}
    worker = subprocess.Popen(
        [sys.executable, "-m", "modelops_mlc.cli.app", "worker", "start", "--no-builtin",
         "--handlers", "bench._monitor_handlers:handlers", "--process-key", "mlc-monitor",
         "--concurrency", str(concurrency), "--log-level", "warning"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=(home / "worker.log").open("w"))
    try:
        deadline = time.monotonic() + 120
        while not list((home / "workers").glob("*.json")) and time.monotonic() < deadline:
            if worker.poll() is not None:
                raise RuntimeError(f"the worker exited: {(home / 'worker.log').read_text()[-2000:]}")
            time.sleep(0.2)
        with RssSampler(_listening_pid(engine_url)) as engine_rss, RssSampler(worker.pid) as worker_rss:
            started = time.perf_counter()
            for i in range(models):  # what `mlc monitor schedule` does, without the registry check
                schedule(client, f"{prefix}{i:05d}", every=f"{cycle}s")
            scheduling_s = time.perf_counter() - started
            time.sleep(cycle)  # warm-up: every schedule has fired once before the window opens
            begin = dt.datetime.now(dt.timezone.utc)
            time.sleep(seconds)
            end = dt.datetime.now(dt.timezone.utc)
        window = (end - begin).total_seconds()
        ended = client.request("POST", "/history/process-instance/count", json={
            "processDefinitionKey": "mlc-monitor", "finished": True,
            "finishedAfter": _iso(begin), "finishedBefore": _iso(end)})["count"]
        started_runs = client.request("POST", "/history/process-instance/count", json={
            "processDefinitionKey": "mlc-monitor", "startedAfter": _iso(begin), "startedBefore": _iso(end)})["count"]
        fired = [row for row in _paged(client, "/history/job-log", {
            "processDefinitionKey": SCHEDULE_PROCESS, "successLog": "true"}) if row.get("jobDueDate")]
        lags = [(_when(r["timestamp"]) - _when(r["jobDueDate"])).total_seconds() * 1000 for r in fired
                if begin <= _when(r["timestamp"]) <= end]
        incidents = client.request("GET", "/incident/count")["count"]
        failed_jobs = client.request("GET", "/job/count", params={"withException": "true"})["count"]
        (monitor,) = client.process_definitions(key="mlc-monitor")
        verdicts: dict[str, int] = {}
        for end_event in ("end_ok", "end_notified", "end_investigating", "end_retrain", "end_failed"):
            verdicts[end_event] = client.request("GET", "/history/activity-instance/count", params={
                "processDefinitionId": monitor.id, "activityId": end_event,
                "finishedAfter": _iso(begin), "finishedBefore": _iso(end)})["count"]
        return {
            "models": models,
            "cycle_s": cycle,
            "window_s": round(window, 1),
            "scheduling_s": round(scheduling_s, 1),
            "schedules_per_s": round(models / scheduling_s, 1),
            "expected_runs_per_s": round(models / cycle, 2),
            "monitor_runs_started": started_runs,
            "monitor_runs_ended": ended,
            "monitor_runs_per_s": round(ended / window, 2),
            "timer_fires": len(lags),
            "timer_lag_ms": {"p50": _pct(lags, 0.5), "p99": _pct(lags, 0.99), "max": _pct(lags, 1.0),
                             "mean": round(statistics.fmean(lags), 1) if lags else None},
            "end_events": verdicts,
            "incidents": incidents,
            "failed_jobs": failed_jobs,
            "engine_peak_rss_mib": round(engine_rss.peak, 1) if engine_rss.pid else None,
            "worker_peak_rss_mib": round(worker_rss.peak, 1),
            "worker_concurrency": concurrency,
        }
    finally:
        _cleanup(client, prefix)
        worker.terminate()
        try:
            worker.wait(timeout=60)
        except subprocess.TimeoutExpired:
            worker.kill()
        client.close()


def _cleanup(client: Any, prefix: str) -> None:
    """End the schedules and the runs still going, so a shared engine is left as it was."""
    for key in ("mlc-monitor-schedule", "mlc-monitor"):
        rows = _paged(client, "/process-instance", {"processDefinitionKey": key, "businessKeyLike": f"{prefix}%"})
        if rows:
            client.request("POST", "/process-instance/delete", json={
                "processInstanceIds": [r["id"] for r in rows], "skipCustomListeners": True,
                "deleteReason": "bench/monitor_scale done"})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="20 models, a 10 s cycle, 30 s window")
    parser.add_argument("--models", type=int, default=1000)
    parser.add_argument("--cycle", type=int, default=60, help="seconds between two runs of one model's monitor")
    parser.add_argument("--seconds", type=int, default=240, help="measurement window, after one cycle of warm-up")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--engine-url")
    args = parser.parse_args()
    if args.smoke:
        args.models, args.cycle, args.seconds = 20, 10, 30
    with ExitStack() as stack:
        url = args.engine_url or stack.enter_context(local_engine())
        figures = run(url, args.models, args.cycle, args.seconds, args.concurrency)
    emit("monitor_scale", figures, smoke=args.smoke)


if __name__ == "__main__":
    main()
