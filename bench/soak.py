"""Soak: 2,000 `mlc-run-back-test` life cycles fired at a steady rate over about 10 minutes, with
the worker restarted every minute (by turns SIGTERM, a graceful stop, and SIGKILL of its whole
process group, whose locked tasks come back when their lock expires).

One registered model (StandardScaler + Ridge on diabetes, bench/_models.py) and its labelled test
data; bpmn/ deployed to a throwaway local engine (or ``--engine-url``). Checked and reported:
instances lost (signals that started no instance, or instances that ended other than completed:
must be 0) and those still running when the run gave up (``--timeout``),
incidents (none is expected, so every one is unexplained: must be 0), effects duplicated
(notifications and tickets per instance beyond one: must be 0), and the worker's memory: its
process tree's RSS sampled every 2 s, the slope of a linear regression (scipy.stats.linregress)
over each worker's life after its first 15 s (median across lives, MiB per minute), the slope of
each life's last sample across the run, the slope over the second half of the longest life (past
the process pool's warm-up: run with a long ``--restart-every`` to see a steady state), and the peak.

Usage: python -m bench.soak [--instances 2000] [--minutes 10] [--restart-every 60] [--engine-url URL]
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from bench._common import emit
from bench._models import MODEL_NAME, bench_home, register_model
from bench.lifecycle import PROCESS_KEY, ROOT, SIGNAL, TreeMemory, _mlc, history

LOCK_MS = 10_000
WARM_S = 15.0


class Worker:
    """One `mlc worker start` life: its RSS samples (seconds since the soak began, MiB)."""

    def __init__(self, env: dict[str, str], log: Any, concurrency: int, t0: float) -> None:
        self.proc = subprocess.Popen(
            [*_mlc(), "worker", "start", "--concurrency", str(concurrency), "--process-key", PROCESS_KEY,
             "--lock-duration", str(LOCK_MS), "--log-format", "json", "--log-level", "warning"],
            env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.born = time.monotonic() - t0
        self.samples: list[tuple[float, float]] = []

    def sample(self, t0: float) -> float:
        memory = TreeMemory(self.proc.pid)
        memory.sample()
        if memory.peak:
            self.samples.append((time.monotonic() - t0, memory.peak))
        return memory.peak

    def stop(self, how: str) -> None:
        if self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGKILL if how == "kill" else signal.SIGTERM)
        try:
            self.proc.wait(timeout=90)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


def _slopes(workers: list[Worker]) -> dict[str, Any]:
    """Memory slopes in MiB per minute: within each life after its warm-up, and of each life's end."""
    from scipy.stats import linregress

    within = []
    for w in workers:
        points = [(t, m) for t, m in w.samples if t - w.born >= WARM_S]
        if len(points) >= 5 and len({t for t, _ in points}) > 1:
            within.append(linregress([t for t, _ in points], [m for _, m in points]).slope * 60)
    # the second half of each life: past the process pool's warm-up, which a long life shows
    halves = []
    for w in workers:
        if len(w.samples) >= 10:
            mid = (w.samples[0][0] + w.samples[-1][0]) / 2
            points = [(t, m) for t, m in w.samples if t >= mid]
            halves.append((w.samples[-1][0] - mid, linregress([t for t, _ in points], [m for _, m in points]).slope * 60))
    ends = [w.samples[-1] for w in workers if w.samples]
    across = linregress([t for t, _ in ends], [m for _, m in ends]) if len(ends) >= 3 else None
    return {
        "worker_lives": len(workers),
        "rss_slope_within_life_mib_per_min_median": round(statistics.median(within), 2) if within else None,
        "rss_slope_within_life_mib_per_min_max": round(max(within), 2) if within else None,
        "rss_slope_second_half_of_longest_life_mib_per_min": round(max(halves)[1], 2) if halves else None,
        "longest_life_second_half_s": round(max(halves)[0]) if halves else None,
        "rss_slope_across_lives_mib_per_min": round(across.slope * 60, 3) if across else None,
        "rss_slope_across_lives_r2": round(across.rvalue ** 2, 3) if across else None,
        "rss_at_life_end_mib": [round(m, 1) for _, m in ends],
    }


def _effects(store_url: str, ids: set[str]) -> dict[str, int]:
    from sqlalchemy import create_engine, text

    engine = create_engine(store_url)
    found: dict[str, int] = {}
    try:
        with engine.connect() as conn:
            for table in ("mlc_notifications", "mlc_tickets"):
                seen: dict[str, int] = {}
                for (pid,) in conn.execute(text(f"SELECT process_instance_id FROM {table}")):
                    if pid in ids:
                        seen[pid] = seen.get(pid, 0) + 1
                found[table] = sum(n - 1 for n in seen.values() if n > 1)
                found[f"{table}_instances"] = len(seen)
    finally:
        engine.dispose()
    return found


def run(settings: Any, env: dict[str, str], work: Path, count: int, minutes: float, restart_every: float,
        concurrency: int, timeout: float) -> dict[str, Any]:
    from sklearn.datasets import load_diabetes

    from modelops_mlc.engine import EngineClient

    client = EngineClient(settings)
    client.deploy_processes([ROOT / "bpmn"], name="mlc-bench-soak")
    model_id = register_model(settings.home)
    data = work / "test-data.csv"
    load_diabetes(as_frame=True).frame.to_csv(data, index=False)
    variables = {"MODEL_ID": MODEL_NAME, "INPUT_FILE": str(data), "TICKET_SYSTEM": "local"}
    token = uuid.uuid4().hex
    log = open(work / "worker.log", "wb")
    t0 = time.monotonic()
    workers = [Worker(env, log, concurrency, t0)]
    restarts = {"term": 0, "kill": 0}
    fired = 0
    failed_signals = 0
    next_restart = restart_every
    next_sample = 0.0
    rows: list[dict[str, Any]] = []
    pool = ThreadPoolExecutor(4)
    pace = count / (minutes * 60)

    def fire(seq: int) -> bool:
        try:
            client.signal(SIGNAL, {**variables, "BENCH_RUN": token, "BENCH_SEQ": seq})
            return True
        except Exception:
            return False

    try:
        last_poll = 0.0
        while True:
            now = time.monotonic() - t0
            due = min(count, int(now * pace) + 1)
            if fired < due:
                failed_signals += sum(not ok for ok in pool.map(fire, range(fired, due)))
                fired = due
            if now >= next_sample:
                workers[-1].sample(t0)
                next_sample = now + 2
            if now >= next_restart:
                how = "kill" if (restarts["term"] + restarts["kill"]) % 2 else "term"
                workers[-1].stop(how)
                restarts[how] += 1
                workers.append(Worker(env, log, concurrency, t0))
                next_restart = now + restart_every
            if fired >= count and now - last_poll >= 5:
                last_poll = now
                rows = history(client, token, count)
                if len([r for r in rows if r.get("endTime")]) >= count or now > timeout:
                    break
            time.sleep(0.2)
        wall = time.monotonic() - t0
    finally:
        pool.shutdown()
        workers[-1].stop("term")
        log.close()

    rows = history(client, token, count)
    ids = {r["id"] for r in rows}
    ended = [r for r in rows if r.get("endTime")]
    incidents = [i for i in client.request("GET", "/history/incident", params={"processDefinitionKey": PROCESS_KEY})
                 if i.get("processInstanceId") in ids]
    outcomes: dict[str, int] = {}
    for act in client.request("GET", "/history/activity-instance", params={
            "processDefinitionKey": PROCESS_KEY, "activityType": "noneEndEvent", "finished": "true",
            "maxResults": count * 2}):
        if act.get("processInstanceId") in ids:
            outcomes[act["activityId"]] = outcomes.get(act["activityId"], 0) + 1
    effects = _effects(env["MLC_STORE_URL"], ids)
    memory = _slopes(workers)
    return {
        "model": model_id,
        "instances_started": fired - failed_signals,
        "signals_failed": failed_signals,
        "instances_completed": sum(r.get("state") == "COMPLETED" for r in ended),
        # lost: a signal that started no instance, or an instance gone without ending
        "instances_lost": (fired - failed_signals) - len(ids) + len([r for r in rows if r.get("state") not in
                                                                      ("ACTIVE", "COMPLETED")]),
        "instances_still_running": len([r for r in rows if r.get("state") == "ACTIVE"]),
        "outcomes": outcomes,
        "wall_s": round(wall, 1),
        "instances_per_s": round(len(ended) / wall, 2),
        "worker_restarts": restarts,
        "incidents": len(incidents),
        "incident_messages": sorted({str(i.get("incidentMessage"))[:200] for i in incidents}),
        "effects_duplicated": effects["mlc_notifications"] + effects["mlc_tickets"],
        "notified_instances": effects["mlc_notifications_instances"],
        "ticketed_instances": effects["mlc_tickets_instances"],
        "peak_memory_mib": round(max((m for w in workers for _, m in w.samples), default=0.0), 1),
        **memory,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="40 instances over 1 minute, a restart every 20 s")
    parser.add_argument("--instances", type=int, help="life cycles to fire (default 2000)")
    parser.add_argument("--minutes", type=float, help="minutes to spread the signals over (default 10)")
    parser.add_argument("--restart-every", type=float, help="seconds between worker restarts (default 60)")
    parser.add_argument("--concurrency", type=int, default=8, help="the worker's --concurrency")
    parser.add_argument("--engine-url", help="engine REST base (default: start the local jar on a free port)")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds from the start to give up waiting")
    args = parser.parse_args()
    count = args.instances or (40 if args.smoke else 2000)
    minutes = args.minutes or (1 if args.smoke else 10)
    restart_every = args.restart_every or (20 if args.smoke else 60)

    load_before = [round(x, 2) for x in os.getloadavg()]
    with bench_home("mlc-bench-soak-", args.engine_url) as (work, env, settings):
        figures = run(settings, env, work, count, minutes, restart_every, args.concurrency, args.timeout)
    emit("soak", {
        "scenarios_run": 1, "instances": count, "minutes": minutes, "restart_every_s": restart_every,
        "worker_concurrency": args.concurrency, "load_average_before": load_before,
        "load_average_after": [round(x, 2) for x in os.getloadavg()], **figures,
        "targets": {"instances_lost": 0, "incidents": 0, "effects_duplicated": 0},
    }, smoke=args.smoke)


if __name__ == "__main__":
    main()
