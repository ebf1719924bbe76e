"""HTTP load for the serving benchmark: ``wrk`` (Debian's package) in its own process.

``wrk -t1 -cC`` keeps C keep-alive connections, each sending the same POST back to back (closed
loop), for a fixed time after a warm-up run whose figures are dropped; ``bench/wrk/post.lua`` sets
the body and prints wrk's own latency distribution as JSON. wrk is C on epoll: one thread of it
costs far less CPU per request than any Python client, so the server, not the load, is measured.

Usage: python -m bench._load URL --body-file F --concurrency C [--duration S] [--warmup S]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

SCRIPT = Path(__file__).resolve().parent / "wrk" / "post.lua"
MISSING = "wrk is not installed (apt-get install wrk): the serving benchmark's load comes from it"


def wrk() -> str | None:
    return shutil.which("wrk")


def _wrk(url: str, body_file: Path, concurrency: int, seconds: int) -> dict[str, Any]:
    exe = wrk()
    if exe is None:
        raise RuntimeError(MISSING)
    cmd = [exe, "-t1", f"-c{concurrency}", f"-d{seconds}s", "--timeout", "10s", "-s", str(SCRIPT), url]
    env = {**os.environ, "WRK_BODY_FILE": str(body_file)}
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=seconds + 60)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        why = (proc.stderr.strip() or proc.stdout.strip()).splitlines()
        raise RuntimeError(f"wrk failed (exit {proc.returncode}): {why[-1] if why else 'no output'}")
    return json.loads(lines[-1])


def run(url: str, body_file: Path, concurrency: int, duration: float, warmup: float) -> dict[str, Any]:
    """Requests/s, p50, p99 and errors of ``concurrency`` connections over ``duration`` seconds."""
    warm = _wrk(url, body_file, concurrency, max(1, math.ceil(warmup))) if warmup > 0 else {"requests": 0}
    raw = _wrk(url, body_file, concurrency, max(1, math.ceil(duration)))
    errors = raw["errors"]
    failed = sum(errors.values())
    seconds = raw["duration_us"] / 1e6
    lat = raw["latency_us"]
    result: dict[str, Any] = {
        "concurrency": concurrency,
        "requests": raw["requests"],
        "warmup_requests": warm["requests"],
        "errors": failed,
        "rps": round((raw["requests"] - errors["status"]) / seconds, 1) if seconds else 0.0,
        "p50_ms": round(lat["p50"] / 1000, 2),
        "p99_ms": round(lat["p99"] / 1000, 2),
    }
    if failed:
        result["error_kinds"] = {k: v for k, v in errors.items() if v}
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("--body-file", type=Path, required=True)
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    args = parser.parse_args()
    print(json.dumps(run(args.url, args.body_file, args.concurrency, args.duration, args.warmup)), flush=True)


if __name__ == "__main__":
    main()
