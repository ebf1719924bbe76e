"""Online serving: `mlc runtime serve` against `mlflow models serve`, same model, same machine.

Registers the benchmark model (StandardScaler + Ridge on diabetes) in a throwaway registry,
starts `mlc runtime serve` and deploys the version to it with `mlc deployment create`, starts
`mlflow models serve -m models:/NAME/1 --env-manager local -w 1` next to it, and checks both give
the same prediction. The load generator (bench/_load.py) runs in its own process and sends the
same one-row MLflow scoring request (`POST /invocations`, dataframe_split) over keep-alive
connections at concurrency 1, 8 and 32, after a warm-up. Reported per server and concurrency:
requests/s, p50, p99 and errors; plus each server's RSS at the end.

Usage: python -m bench.serving [--smoke] [--duration S]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench._common import emit
from bench._models import MODEL_NAME, bench_env, features, register_model

ROOT = Path(__file__).resolve().parents[1]
LEVELS = (1, 8, 32)
READY_TIMEOUT = 180.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _mlc() -> list[str]:
    script = Path(sys.executable).parent / "mlc"
    return [str(script)] if script.exists() else [sys.executable, "-m", "modelops_mlc.cli.app"]


class Server:
    """A server process in its own session (so its children stop with it), logging to a file."""

    def __init__(self, name: str, cmd: list[str], env: dict[str, str], log: Path) -> None:
        self.name = name
        self.log = log
        self._fh = open(log, "wb")
        self.proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=self._fh, stderr=subprocess.STDOUT,
                                     start_new_session=True)

    def tail(self) -> str:
        lines = self.log.read_text(errors="replace").strip().splitlines()
        return lines[-1] if lines else f"exit code {self.proc.poll()}"

    def wait_for(self, check: Any, timeout: float = READY_TIMEOUT) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited: {self.tail()}")
            value = check()
            if value:
                return value
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} not ready after {timeout:.0f}s: {self.tail()}")

    def rss_mib(self) -> float | None:
        """RSS of the server and its children (mlflow models serve runs uvicorn as a child)."""
        import psutil

        try:
            root = psutil.Process(self.proc.pid)
            return round(sum(p.memory_info().rss for p in [root, *root.children(recursive=True)]) / 2**20, 1)
        except psutil.Error:
            return None

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=15)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.proc.wait()
        self._fh.close()


def _get(url: str) -> bool:
    import httpx

    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def start_mlc(env: dict[str, str], work: Path, model_id: str) -> tuple[Server, str]:
    server = Server("mlc runtime serve",
                    [*_mlc(), "runtime", "serve", "bench-rt", "--port", "0", "--tag", "stage=QA", "--tag", "tag=bench"],
                    env, work / "mlc-serve.log")
    marker = "serving at "

    def endpoint() -> str | None:
        text = server.log.read_text(errors="replace")
        if marker not in text:
            return None
        return text.split(marker, 1)[1].split()[0]

    url = server.wait_for(endpoint)
    server.wait_for(lambda: _get(f"{url}/v2/health/ready"))
    deploy = subprocess.run([*_mlc(), "deployment", "create", model_id, "--stage", "QA", "--json"],
                            env=env, capture_output=True, text=True, timeout=READY_TIMEOUT)
    if deploy.returncode != 0:
        server.stop()
        raise RuntimeError(f"mlc deployment create failed: {deploy.stderr.strip().splitlines()[-1:]}")
    return server, f"{url}/invocations"


def start_mlflow(env: dict[str, str], work: Path, model_id: str) -> tuple[Server, str]:
    port = _free_port()
    mlflow = Path(sys.executable).parent / "mlflow"
    cmd = [str(mlflow) if mlflow.exists() else "mlflow", "models", "serve", "-m", f"models:/{model_id}",
           "--env-manager", "local", "-h", "127.0.0.1", "-p", str(port), "-w", "1"]
    server = Server("mlflow models serve", cmd, env, work / "mlflow-serve.log")
    url = f"http://127.0.0.1:{port}"
    server.wait_for(lambda: _get(f"{url}/ping"))
    return server, f"{url}/invocations"


def predict_once(url: str, body: bytes) -> Any:
    import httpx

    resp = httpx.post(url, content=body, headers={"Content-Type": "application/json"}, timeout=30)
    resp.raise_for_status()
    return resp.json()


def load(url: str, body_file: Path, concurrency: int, duration: float, warmup: float, env: dict[str, str]) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "bench._load", url, "--body-file", str(body_file), "--concurrency", str(concurrency),
           "--duration", str(duration), "--warmup", str(warmup)]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=duration + warmup + 120)
    if proc.returncode != 0:
        return {"error": (proc.stderr.strip().splitlines() or [f"exit code {proc.returncode}"])[-1]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _first_prediction(answer: Any) -> float:
    preds = answer["predictions"] if isinstance(answer, dict) else answer
    first = preds[0]
    if isinstance(first, dict):
        first = next(iter(first.values()))
    if isinstance(first, list):
        first = first[0]
    return float(first)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="1 s per level instead of 10 s")
    parser.add_argument("--duration", type=float, help="seconds of load per server and level")
    args = parser.parse_args()
    duration = args.duration or (1.0 if args.smoke else 10.0)
    warmup = 0.3 if args.smoke else 2.0

    figures: dict[str, Any] = {"model": f"{MODEL_NAME} (StandardScaler + Ridge)", "request": "POST /invocations, 1 row",
                               "duration_s": duration, "warmup_s": warmup}
    servers: dict[str, Server] = {}
    with tempfile.TemporaryDirectory(prefix="mlc-bench-serving-") as tmp:
        work = Path(tmp)
        home = work / "home"
        home.mkdir()
        env = bench_env(home)
        try:
            model_id = register_model(home, tags={"tag": "bench"})
            frame = features().head(1)
            body = json.dumps({"dataframe_split": {"columns": list(frame.columns), "data": frame.values.tolist()}}).encode()
            body_file = work / "body.json"
            body_file.write_bytes(body)
            urls: dict[str, str] = {}
            unavailable: dict[str, str] = {}
            for key, start in (("mlc", start_mlc), ("mlflow", start_mlflow)):
                try:
                    servers[key], urls[key] = start(env, work, model_id)
                except Exception as exc:  # report the contender as unavailable, keep measuring the other
                    unavailable[key] = f"{type(exc).__name__}: {exc}"
            answers = {key: _first_prediction(predict_once(url, body)) for key, url in urls.items()}
            if len(answers) == 2:
                figures["same_prediction"] = abs(answers["mlc"] - answers["mlflow"]) <= 1e-9 * max(1.0, abs(answers["mlc"]))
            rows = []
            for level in LEVELS:
                row: dict[str, Any] = {"concurrency": level}
                for key, url in urls.items():
                    res = load(url, body_file, level, duration, warmup, env)
                    for field in ("rps", "p50_ms", "p99_ms", "errors", "error", "first_error"):
                        if field in res:
                            row[f"{key}_{field}"] = res[field]
                if "mlc_rps" in row and row.get("mlflow_rps"):
                    row["rps_ratio"] = round(row["mlc_rps"] / row["mlflow_rps"], 2)
                rows.append(row)
            figures["levels"] = rows
            for key, server in servers.items():
                figures[f"{key}_rss_mib"] = server.rss_mib()
            for key, reason in unavailable.items():
                figures[key] = f"unavailable: {reason}"
        finally:
            for server in servers.values():
                server.stop()
    figures["targets"] = {"rps_ratio": 3, "mlc_p99_ms_at_8": 10}
    emit("serving", figures, smoke=args.smoke)


if __name__ == "__main__":
    main()
