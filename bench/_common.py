"""Shared by the benchmarks: one JSON line of figures, saved under bench/results/."""

from __future__ import annotations

import datetime as dt
import json
import os
import statistics
import subprocess
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def emit(name: str, figures: dict[str, Any], *, smoke: bool = False) -> dict[str, Any]:
    """Print the benchmark's JSON line and keep it in bench/results/<name>.json."""
    line = {
        "bench": name,
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "cores": os.cpu_count(),
        "smoke": smoke,
        **figures,
    }
    print(json.dumps(line), flush=True)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{name}{'-smoke' if smoke else ''}.json").write_text(json.dumps(line, indent=2) + "\n")
    return line


def _hwm_mib(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def run_measured(cmd: list[str], *, env: dict[str, str] | None = None) -> tuple[float, float, int]:
    """Run a command to completion: (wall seconds, peak RSS in MiB of that child, exit code).

    The peak is the child's own VmHWM, sampled every 2 ms until it exits: ``ru_maxrss`` from
    wait4 would fold in the RSS of the parent it was forked from (see bench/_peak.py).
    """
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    peak = 0.0
    while True:
        pid, status, _usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        peak = max(peak, _hwm_mib(proc.pid) or 0.0)
        time.sleep(0.002)
    wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    return wall, peak, proc.returncode


def summarise(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]
    return {"median": round(statistics.median(ordered), 4), "p95": round(p95, 4), "min": round(ordered[0], 4)}
