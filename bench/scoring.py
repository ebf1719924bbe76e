"""Batch scoring: `modelops_mlc.jobs.score` (chunked) against plain `mlflow.pyfunc` predict on the
whole DataFrame, over growing row counts up to 5M rows.

The same registered model (StandardScaler + Ridge on diabetes, 10 float features) and the same
Parquet input serve both. Each contender runs in its own process per row count and does the whole
job: load the model, read the input, predict, write input plus prediction as Parquet. Reported
per row count: rows/s and the process's peak RSS, and the RSS it held before starting (the model
loaded once, untimed, so imports are done); ours should stay flat as rows grow, the whole-frame peer grows.

Usage: python -m bench.scoring [--smoke] [--rows N ...]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench._common import emit
from bench._peak import peak_rss_mib
from bench._models import MODEL_NAME, bench_env, register_model, write_rows

ROOT = Path(__file__).resolve().parents[1]
ROWS = [100_000, 500_000, 1_000_000, 2_000_000, 5_000_000]
SMOKE_ROWS = [20_000]
CHUNK_ROWS = 50_000


def _preload(model_id: str) -> None:
    """Load the model once untimed, so both contenders start with the same imports done."""
    import mlflow.pyfunc
    import pyarrow.parquet  # noqa: F401

    mlflow.pyfunc.load_model(f"models:/{model_id}")


def child_mlc(model_id: str, src: Path, out: Path) -> dict[str, Any]:
    _preload(model_id)
    from modelops_mlc.config import load_settings
    from modelops_mlc.jobs import score
    from modelops_mlc.registry import Registry

    before = peak_rss_mib()
    started = time.perf_counter()
    result = score(Registry(load_settings()), model_id, src, out, chunk_rows=CHUNK_ROWS, log_run=False)
    return {"wall_s": time.perf_counter() - started, "rows": result.rows, "chunks": result.chunks,
            "rss_before_mib": before, "peak_rss_mib": peak_rss_mib()}


def child_pyfunc(model_id: str, src: Path, out: Path) -> dict[str, Any]:
    _preload(model_id)
    import mlflow.pyfunc
    import pandas as pd

    before = peak_rss_mib()
    started = time.perf_counter()
    model = mlflow.pyfunc.load_model(f"models:/{model_id}")
    frame = pd.read_parquet(src)
    frame["prediction"] = model.predict(frame)
    frame.to_parquet(out, index=False)
    return {"wall_s": time.perf_counter() - started, "rows": len(frame), "rss_before_mib": before,
            "peak_rss_mib": peak_rss_mib()}


def run_child(contender: str, model_id: str, src: Path, work: Path, env: dict[str, str]) -> dict[str, Any]:
    out, res = work / f"out-{contender}.parquet", work / f"{contender}.json"
    cmd = [sys.executable, "-m", "bench.scoring", "--child", contender, "--model", model_id,
           "--input", str(src), "--output", str(out), "--result", str(res)]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=env)
    out.unlink(missing_ok=True)
    if proc.returncode != 0 or not res.exists():
        last = (proc.stderr.strip().splitlines() or [f"exit code {proc.returncode}"])[-1]
        return {"error": last}
    data = json.loads(res.read_text())
    res.unlink()
    return data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny size (20k rows)")
    parser.add_argument("--rows", type=int, nargs="+", help="row counts to score")
    parser.add_argument("--child", choices=["mlc", "pyfunc"], help=argparse.SUPPRESS)
    parser.add_argument("--model", help=argparse.SUPPRESS)
    parser.add_argument("--input", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--output", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        fn = child_mlc if args.child == "mlc" else child_pyfunc
        args.result.write_text(json.dumps(fn(args.model, args.input, args.output)))
        return

    sizes = args.rows or (SMOKE_ROWS if args.smoke else ROWS)
    table: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="mlc-bench-scoring-") as tmp:
        work = Path(tmp)
        home = work / "home"
        home.mkdir()
        model_id = register_model(home)
        env = bench_env(home)
        for rows in sizes:
            src = work / f"in-{rows}.parquet"
            write_rows(src, rows, seed=rows)
            row: dict[str, Any] = {"rows": rows}
            for contender in ("mlc", "pyfunc"):
                res = run_child(contender, model_id, src, work, env)
                if "error" in res:
                    row[f"{contender}_error"] = res["error"]
                    continue
                row[f"{contender}_rows_per_s"] = round(res["rows"] / max(res["wall_s"], 1e-9))
                row[f"{contender}_peak_mib"] = round(res["peak_rss_mib"], 1)
                row[f"{contender}_base_mib"] = round(res["rss_before_mib"], 1)
            src.unlink()
            table.append(row)

    def growth(contender: str) -> float | None:
        peaks = [r.get(f"{contender}_peak_mib") for r in table]
        if len(peaks) < 2 or None in peaks:
            return None
        return round(peaks[-1] - peaks[0], 1)

    emit("scoring", {
        "model": f"{MODEL_NAME} (StandardScaler + Ridge, 10 float features), Parquet in and out",
        "chunk_rows": CHUNK_ROWS,
        "sizes": table,
        "mlc_peak_growth_mib": growth("mlc"),
        "pyfunc_peak_growth_mib": growth("pyfunc"),
    }, smoke=args.smoke)


if __name__ == "__main__":
    main()
