"""Online serving: `mlc runtime serve` against MLServer (mlserver-mlflow) and `mlflow models serve`, same model, same machine.

Registers the benchmark model (StandardScaler + Ridge on diabetes) in a throwaway registry and
starts three servers on it, one process of each:
- `mlc runtime serve`, the version deployed to it with `mlc deployment create`;
- MLServer with the mlserver-mlflow runtime, from the bench venv (`.venv-bench`, made by
  `make bench-peers` from the `bench` extra; `MLC_BENCH_PEER_PYTHON` points elsewhere), on the
  model's downloaded artifacts, `debug` (its access log) off;
- `mlflow models serve -m models:/NAME/1 --env-manager local -w 1`.
It checks that all of them return the same predictions for the same rows, over V2 infer (a tensor
per column; mlflow models serve has no V2) and over `POST /invocations` (dataframe_split). The
load is `wrk` in its own process (bench/_load.py, bench/wrk/post.lua): the same one-row request
over keep-alive connections at concurrency 1, 8 and 32, after a warm-up. Reported per protocol,
server and concurrency: requests/s, p50, p99, errors and the server's CPU per request (its
process tree's user + system time over the warm-up and the run, divided by the requests it
answered: a figure the other load on a shared machine moves far less); each server's RSS at the end; and the
targets against MLServer at concurrency 8 (at least its req/s, at most its p99, p99 under 10 ms).

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
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from bench import _load
from bench._common import emit
from bench._models import MODEL_NAME, bench_env, features, register_model

ROOT = Path(__file__).resolve().parents[1]
LEVELS = (1, 8, 32)
PROTOCOLS = ("v2", "invocations")
TARGET_LEVEL = 8
P99_TARGET_MS = 10.0
AGREE_ROWS = 20  # rows every server predicts, over each protocol it speaks
MLSERVER_WORKERS = 1  # MLServer's default: inference in one worker process beside the HTTP front
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
        """``check()``'s first true value; a server that exits or is not ready in time is stopped."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.stop()
                raise RuntimeError(f"{self.name} exited: {self.tail()}")
            value = check()
            if value:
                return value
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"{self.name} not ready after {timeout:.0f}s: {self.tail()}")

    def rss_mib(self) -> float | None:
        """RSS of the server and its children (mlflow models serve runs uvicorn as a child)."""
        import psutil

        try:
            root = psutil.Process(self.proc.pid)
            return round(sum(p.memory_info().rss for p in [root, *root.children(recursive=True)]) / 2**20, 1)
        except psutil.Error:
            return None

    def cpu_seconds(self) -> float:
        """User + system CPU of the server and its children so far."""
        import psutil

        try:
            root = psutil.Process(self.proc.pid)
            times = [p.cpu_times() for p in [root, *root.children(recursive=True)]]
        except psutil.Error:
            return 0.0
        return sum(t.user + t.system for t in times)

    def stop(self) -> None:
        """Stop the whole process group (MLServer's workers, uvicorn under mlflow), the leader dead or not."""
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
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


Urls = dict[str, str]  # protocol ("v2", "invocations") -> URL


def start_mlc(env: dict[str, str], work: Path, model_id: str, _model_dir: Path) -> tuple[Server, Urls]:
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
    return server, {"v2": f"{url}/v2/models/{MODEL_NAME}/infer", "invocations": f"{url}/invocations"}


def start_mlflow(env: dict[str, str], work: Path, model_id: str, _model_dir: Path) -> tuple[Server, Urls]:
    port = _free_port()
    mlflow = Path(sys.executable).parent / "mlflow"
    cmd = [str(mlflow) if mlflow.exists() else "mlflow", "models", "serve", "-m", f"models:/{model_id}",
           "--env-manager", "local", "-h", "127.0.0.1", "-p", str(port), "-w", "1"]
    server = Server("mlflow models serve", cmd, env, work / "mlflow-serve.log")
    url = f"http://127.0.0.1:{port}"
    server.wait_for(lambda: _get(f"{url}/ping"))
    return server, {"invocations": f"{url}/invocations"}


def peer_python() -> Path:
    """The bench venv's python (MLServer lives there, beside Evidently)."""
    explicit = os.environ.get("MLC_BENCH_PEER_PYTHON")
    return Path(explicit) if explicit else ROOT / ".venv-bench" / "bin" / "python"


def start_mlserver(env: dict[str, str], work: Path, _model_id: str, model_dir: Path) -> tuple[Server, Urls]:
    python = peer_python()
    mlserver = python.parent / "mlserver"
    if not mlserver.exists():
        raise RuntimeError(f"MLServer is not installed: no {mlserver} (make bench-peers installs the bench extra)")
    conf = work / "mlserver"
    conf.mkdir()
    http, grpc, metrics = _free_port(), _free_port(), _free_port()
    settings = {"host": "127.0.0.1", "http_port": http, "grpc_port": grpc, "metrics_port": metrics,
                "debug": False, "parallel_workers": MLSERVER_WORKERS}
    (conf / "settings.json").write_text(json.dumps(settings))
    (conf / "model-settings.json").write_text(json.dumps({
        "name": MODEL_NAME, "implementation": "mlserver_mlflow.MLflowRuntime",
        "parameters": {"uri": str(model_dir)},
    }))
    peer_env = {k: v for k, v in env.items() if k not in ("PYTHONPATH", "MLFLOW_TRACKING_URI")}
    peer_env["PATH"] = os.pathsep.join([str(python.parent), os.environ.get("PATH", "")])
    server = Server("MLServer", [str(mlserver), "start", str(conf)], peer_env, work / "mlserver.log")
    url = f"http://127.0.0.1:{http}"
    server.wait_for(lambda: _get(f"{url}/v2/models/{MODEL_NAME}/ready"))
    return server, {"v2": f"{url}/v2/models/{MODEL_NAME}/infer", "invocations": f"{url}/invocations"}


def download_model(home: Path, model_id: str, dest: Path) -> Path:
    """The registered version's artifacts in a local directory (MLServer loads a path)."""
    import mlflow.artifacts

    from modelops_mlc.config import Settings
    from modelops_mlc.registry import Registry

    settings = Settings(home=home, mlflow_tracking_uri=f"sqlite:///{home / 'mlflow.db'}",
                        store_url=f"sqlite:///{home / 'mlc.db'}")
    with Registry(settings).mlflow_context():
        return Path(mlflow.artifacts.download_artifacts(f"models:/{model_id}", dst_path=str(dest)))


def bodies(frame: Any) -> dict[str, bytes]:
    """The request bodies of ``frame``'s rows: V2 (one FP64 tensor per column) and dataframe_split."""
    v2 = {"inputs": [{"name": str(c), "shape": [len(frame)], "datatype": "FP64", "data": frame[c].tolist()}
                     for c in frame.columns]}
    split = {"dataframe_split": {"columns": [str(c) for c in frame.columns], "data": frame.values.tolist()}}
    return {"v2": json.dumps(v2).encode(), "invocations": json.dumps(split).encode()}


def predictions(url: str, body: bytes) -> list[float]:
    """The predictions a server answers, flattened, whichever protocol it speaks."""
    import httpx

    resp = httpx.post(url, content=body, headers={"Content-Type": "application/json"}, timeout=30)
    resp.raise_for_status()
    answer = resp.json()
    if isinstance(answer, dict) and "outputs" in answer:
        values = answer["outputs"][0]["data"]
    else:
        values = answer["predictions"] if isinstance(answer, dict) else answer
    flat: list[float] = []
    for v in values:
        if isinstance(v, dict):
            v = next(iter(v.values()))
        flat.extend(float(x) for x in (v if isinstance(v, list) else [v]))
    return flat


def agreement(urls: dict[str, Urls], rows: dict[str, bytes]) -> dict[str, Any]:
    """Every server's predictions for the same rows over each protocol, against mlc's on V2."""
    answers = {f"{key}_{proto}": predictions(url, rows[proto])
               for key, by_proto in urls.items() for proto, url in by_proto.items()}
    reference = answers.get("mlc_v2") or next(iter(answers.values()))
    same = all(len(a) == len(reference) and all(abs(x - y) <= 1e-9 * max(1.0, abs(y)) for x, y in zip(a, reference))
               for a in answers.values())
    return {"rows": len(reference), "answers": sorted(answers), "same_predictions": same,
            "first_prediction": round(reference[0], 6)}


def _level(results: dict[str, dict[str, Any]], proto: str, level: int) -> dict[str, Any]:
    row: dict[str, Any] = {"protocol": proto, "concurrency": level}
    for key, res in results.items():
        for field in ("rps", "p50_ms", "p99_ms", "errors", "cpu_ms", "error"):
            if field in res:
                row[f"{key}_{field}"] = res[field]
    if row.get("mlc_rps") and row.get("mlserver_rps"):
        row["mlc_over_mlserver_rps"] = round(row["mlc_rps"] / row["mlserver_rps"], 2)
    if row.get("mlc_rps") and row.get("mlflow_rps"):
        row["mlc_over_mlflow_rps"] = round(row["mlc_rps"] / row["mlflow_rps"], 2)
    return row


def targets(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The issue's targets at concurrency 8, per protocol: against MLServer in this run, and 10 ms."""
    out: dict[str, Any] = {}
    for row in rows:
        if row["concurrency"] != TARGET_LEVEL or "mlc_rps" not in row:
            continue
        verdict: dict[str, Any] = {"mlc_p99_under_10ms": row["mlc_p99_ms"] < P99_TARGET_MS}
        if "mlserver_rps" in row:
            verdict["mlc_rps_at_least_mlserver"] = row["mlc_rps"] >= row["mlserver_rps"]
            verdict["mlc_p99_at_most_mlserver"] = row["mlc_p99_ms"] <= row["mlserver_p99_ms"]
        verdict["all_met"] = all(verdict.values()) and "mlserver_rps" in row
        out[row["protocol"]] = verdict
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="1 s per level instead of 10 s")
    parser.add_argument("--duration", type=float, help="seconds of load per server and level")
    args = parser.parse_args()
    duration = args.duration or (1.0 if args.smoke else 10.0)
    warmup = 0.0 if args.smoke else 2.0

    figures: dict[str, Any] = {"model": f"{MODEL_NAME} (StandardScaler + Ridge)",
                               "requests": "V2 infer (10 FP64 tensors of shape [1]); POST /invocations (dataframe_split, 1 row)",
                               "load": "wrk -t1 (bench/wrk/post.lua), closed loop, keep-alive",
                               "mlserver_settings": {"parallel_workers": MLSERVER_WORKERS, "debug": False},
                               "duration_s": duration, "warmup_s": warmup}
    if _load.wrk() is None:
        figures["error"] = _load.MISSING
        emit("serving", figures, smoke=args.smoke)
        sys.exit(_load.MISSING)
    servers: dict[str, Server] = {}
    with tempfile.TemporaryDirectory(prefix="mlc-bench-serving-") as tmp:
        work = Path(tmp)
        home = work / "home"
        home.mkdir()
        env = bench_env(home)
        try:
            model_id = register_model(home, tags={"tag": "bench"})
            model_dir = download_model(home, model_id, work / "model")
            one = bodies(features().head(1))
            body_files = {}
            for proto, body in one.items():
                body_files[proto] = work / f"{proto}.json"
                body_files[proto].write_bytes(body)
            urls: dict[str, Urls] = {}
            starts = {"mlc": start_mlc, "mlserver": start_mlserver, "mlflow": start_mlflow}
            with ThreadPoolExecutor(len(starts)) as pool:  # each waits on its own process: start them together
                futures = {key: pool.submit(start, env, work, model_id, model_dir) for key, start in starts.items()}
            for key, future in futures.items():
                try:
                    servers[key], urls[key] = future.result()
                except Exception as exc:  # report the contender as unavailable, keep measuring the others
                    figures[key] = f"unavailable: {type(exc).__name__}: {exc}"
            figures["agreement"] = agreement(urls, bodies(features().sample(AGREE_ROWS, random_state=0)))
            rows = []
            for proto in PROTOCOLS:
                for level in LEVELS:
                    results = {}
                    for key, by_proto in urls.items():
                        if proto in by_proto:
                            before = servers[key].cpu_seconds()
                            try:
                                res = _load.run(by_proto[proto], body_files[proto], level, duration, warmup)
                            except RuntimeError as exc:
                                res = {"error": str(exc)}
                            answered = res.get("requests", 0) + res.get("warmup_requests", 0)
                            if answered:  # what a request costs the server, whatever else the machine runs
                                res["cpu_ms"] = round((servers[key].cpu_seconds() - before) * 1000 / answered, 3)
                            results[key] = res
                    rows.append(_level(results, proto, level))
            figures["levels"] = rows
            figures["targets"] = targets(rows)
            for key, server in servers.items():
                figures[f"{key}_rss_mib"] = server.rss_mib()
        finally:
            for server in servers.values():
                server.stop()
    figures["target_p99_ms_at_8"] = P99_TARGET_MS
    emit("serving", figures, smoke=args.smoke)


if __name__ == "__main__":
    main()
