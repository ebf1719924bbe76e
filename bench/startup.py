"""Start-up: `mlc --help` and `mlc signal` against `python -c pass` (the floor), and the engine.

Prints one JSON line: median wall time and peak RSS of each command over N runs, the gap of each
to the floor, and (full mode) `mlc engine start` until the REST API answers plus the engine's RSS.
Usage: python -m bench.startup [--smoke] [--runs N]
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import sys
import tempfile
import time
from pathlib import Path

from bench._common import emit, run_measured, summarise


def _mlc() -> list[str]:
    script = Path(sys.executable).parent / "mlc"
    return [str(script)] if script.exists() else [sys.executable, "-m", "modelops_mlc.cli.app"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def measure(cmd: list[str], runs: int, env: dict[str, str]) -> dict[str, float]:
    walls, rss = [], []
    run_measured(cmd, env=env)  # warm the page cache and .pyc files
    for _ in range(runs):
        wall, peak, _code = run_measured(cmd, env=env)
        walls.append(wall)
        rss.append(peak)
    return {"wall_s": summarise(walls)["median"], "wall_p95_s": summarise(walls)["p95"], "rss_mib": round(max(rss), 1)}


def engine_start(home: Path) -> dict[str, float]:
    import psutil

    from modelops_mlc.config import Settings
    from modelops_mlc.engine.local import LocalEngine

    engine = LocalEngine(Settings(home=home, engine_port=_free_port()))
    started = time.perf_counter()
    status = engine.start(timeout=300)
    ready = time.perf_counter() - started
    try:
        rss = psutil.Process(status.pid).memory_info().rss / 2**20
    finally:
        engine.stop()
    return {"engine_ready_s": round(ready, 2), "engine_rss_mib": round(rss, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: 2 runs, no engine start")
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    runs = 2 if args.smoke else args.runs

    with tempfile.TemporaryDirectory() as tmp:
        # A signal to an address where nothing answers: the command's own start-up and exit path.
        env = {**os.environ, "MLC_HOME": tmp, "MLC_ENGINE_URL": "http://127.0.0.1:9/engine-rest"}
        floor = measure([sys.executable, "-c", "pass"], runs, env)
        help_ = measure([*_mlc(), "--help"], runs, env)
        signal = measure([*_mlc(), "signal", "run-back-test", "--model-id", "bench"], runs, env)
        figures = {
            "runs": runs,
            "python_pass": floor,
            "mlc_help": help_,
            "mlc_signal": signal,
            "mlc_help_over_floor_s": round(help_["wall_s"] - floor["wall_s"], 4),
            "mlc_signal_over_floor_s": round(signal["wall_s"] - floor["wall_s"], 4),
            "target_help_over_floor_s": 0.3,
        }
        if not args.smoke and shutil.which("java"):
            figures.update(engine_start(Path(tmp) / "engine-home"))
    emit("startup", figures, smoke=args.smoke)


if __name__ == "__main__":
    main()
