"""Online serving with more processes: `mlc runtime serve --workers N` at N = 1 and N = 2, same model, same port.

Registers the serving benchmark's model (StandardScaler + Ridge on diabetes), starts runtime
`bench-rt` with one process and deploys the version to it, measures, then restarts the same
runtime with ``--workers 2`` (it finds its deployment in the MLC store: no new deploy) and
measures again. The load is the serving benchmark's: `wrk` in its own process (bench/_load.py),
the same one-row request over keep-alive connections, V2 infer and `POST /invocations`, at
concurrency 8 and 32 after a warm-up. Reported per N, protocol and concurrency: requests/s, p50,
p99 and errors; that both runs answer the same predictions; and the RSS of each run (all its
processes).

The machine's cores are shared by the server processes and wrk.

Usage: python -m bench.serving_workers [--smoke] [--duration S]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench import _load
from bench._common import emit
from bench._models import MODEL_NAME, bench_env, features, register_model
from bench.serving import PROTOCOLS, Server, _get, _mlc, bodies, predictions

WORKERS = (1, 2)
LEVELS = (8, 32)
RUNTIME = "bench-rt"


def start(env: dict[str, str], work: Path, workers: int) -> tuple[Server, str]:
    """`mlc runtime serve bench-rt --workers N`; its URL once it answers."""
    server = Server(f"mlc runtime serve --workers {workers}",
                    [*_mlc(), "runtime", "serve", RUNTIME, "--port", "0", "--workers", str(workers),
                     "--tag", "stage=QA", "--tag", "tag=bench"], env, work / f"mlc-serve-{workers}.log")
    marker = "serving at "

    def endpoint() -> str | None:
        text = server.log.read_text(errors="replace")
        return text.split(marker, 1)[1].split()[0].rstrip(",") if marker in text else None

    url = server.wait_for(endpoint)
    server.wait_for(lambda: _get(f"{url}/v2/health/ready"))
    return server, url


def deploy(env: dict[str, str], model_id: str) -> None:
    import subprocess

    done = subprocess.run([*_mlc(), "deployment", "create", model_id, "--stage", "QA", "--json"],
                          env=env, capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        raise RuntimeError(f"mlc deployment create failed: {done.stderr.strip().splitlines()[-1:]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="1 s per level instead of 10 s")
    parser.add_argument("--duration", type=float, help="seconds of load per run and level")
    args = parser.parse_args()
    duration = args.duration or (1.0 if args.smoke else 10.0)
    warmup = 1.0 if args.smoke else 2.0
    figures: dict[str, Any] = {"model": f"{MODEL_NAME} (StandardScaler + Ridge)",
                               "load": "wrk -t1 (bench/wrk/post.lua), closed loop, keep-alive",
                               "duration_s": duration, "warmup_s": warmup}
    if _load.wrk() is None:
        figures["error"] = _load.MISSING
        emit("serving_workers", figures, smoke=args.smoke)
        sys.exit(_load.MISSING)
    with tempfile.TemporaryDirectory(prefix="mlc-bench-workers-") as tmp:
        work = Path(tmp)
        home = work / "home"
        home.mkdir()
        env = bench_env(home)
        model_id = register_model(home, tags={"tag": "bench"})
        one = bodies(features().head(1))
        body_files = {}
        for proto, body in one.items():
            body_files[proto] = work / f"{proto}.json"
            body_files[proto].write_bytes(body)
        agree = bodies(features().sample(20, random_state=0))["v2"]
        answers: dict[int, list[float]] = {}
        rows: list[dict[str, Any]] = []
        for workers in WORKERS:
            server, url = start(env, work, workers)
            try:
                if workers == WORKERS[0]:
                    deploy(env, model_id)
                paths = {"v2": f"{url}/v2/models/{MODEL_NAME}/infer", "invocations": f"{url}/invocations"}
                # every process routes the model before the load starts
                server.wait_for(lambda: all(_get(f"{url}/v2/models/{MODEL_NAME}/ready") for _ in range(8)))
                answers[workers] = predictions(paths["v2"], agree)
                for proto in PROTOCOLS:
                    for level in LEVELS:
                        res = _load.run(paths[proto], body_files[proto], level, duration, warmup)
                        rows.append({"workers": workers, "protocol": proto, **res})
                figures[f"workers_{workers}_rss_mib"] = server.rss_mib()
            finally:
                server.stop()
        figures["levels"] = rows
        figures["same_predictions"] = answers[WORKERS[0]] == answers[WORKERS[-1]]
        for level in LEVELS:
            for proto in PROTOCOLS:
                rps = {r["workers"]: r["rps"] for r in rows if r["protocol"] == proto and r["concurrency"] == level}
                if rps.get(1):
                    figures[f"speedup_{proto}_c{level}"] = round(rps[2] / rps[1], 2)
    emit("serving_workers", figures, smoke=args.smoke)


if __name__ == "__main__":
    main()
