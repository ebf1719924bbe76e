"""Batch scoring: `modelops_mlc.jobs.score` (chunked, reading, predicting and writing overlapped)
against plain `mlflow.pyfunc` predict on the whole DataFrame, over growing row counts up to 5M rows,
with Parquet input and with CSV input reported apart.

The same registered model (StandardScaler + Ridge on diabetes, 10 float features) and the same rows
serve both, as Parquet and as CSV; both write input plus prediction as Parquet. Each contender runs
in its own process per row count, input and round, and does the whole job: load the model, read the
input, predict, write (the peer: `pd.read_parquet` or `pd.read_csv(engine="pyarrow")`, predict,
`to_parquet`). Rounds alternate the contenders, and the medians are reported: rows/s, CPU seconds of
the timed part (all threads; steadier than wall time on shared cores), the ratio of our rows/s to
the peer's in the same round, each process's peak RSS and the RSS it held before starting (the model
loaded once, untimed, so imports are done). Ours should stay flat as rows grow; the whole-frame peer
grows. Both outputs' predictions are compared (equal to within 1e-9). The load average is reported at start and end.

Usage: python -m bench.scoring [--smoke] [--rows N ...] [--rounds R]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
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
ROWS = [100_000, 1_000_000, 5_000_000]
SMOKE_ROWS = [20_000]
CHUNK_ROWS = 50_000
ROUNDS = 3
INPUTS = ("parquet", "csv")
TARGET_RATIO = 0.9  # of the whole-frame peer's rows/s, at 1M rows and above


def _preload(model_id: str) -> None:
    """Load the model once untimed, so both contenders start with the same imports done."""
    import mlflow.pyfunc
    import pyarrow.csv  # noqa: F401
    import pyarrow.parquet  # noqa: F401

    mlflow.pyfunc.load_model(f"models:/{model_id}")


def _timed(fn: Any) -> dict[str, Any]:
    """Run ``fn`` (returns the rows it scored): wall and CPU seconds, peak RSS before and after."""
    before = peak_rss_mib()
    wall, cpu = time.perf_counter(), time.process_time()
    rows = fn()
    return {"wall_s": time.perf_counter() - wall, "cpu_s": time.process_time() - cpu, "rows": rows,
            "rss_before_mib": before, "peak_rss_mib": peak_rss_mib()}


def child_mlc(model_id: str, src: Path, out: Path) -> dict[str, Any]:
    _preload(model_id)
    from modelops_mlc.config import load_settings
    from modelops_mlc.jobs import score
    from modelops_mlc.registry import Registry

    registry = Registry(load_settings())
    return _timed(lambda: score(registry, model_id, src, out, chunk_rows=CHUNK_ROWS, log_run=False).rows)


def child_pyfunc(model_id: str, src: Path, out: Path) -> dict[str, Any]:
    _preload(model_id)
    import mlflow.pyfunc
    import pandas as pd

    def whole_frame() -> int:
        model = mlflow.pyfunc.load_model(f"models:/{model_id}")
        frame = pd.read_parquet(src) if src.suffix == ".parquet" else pd.read_csv(src, engine="pyarrow")
        frame["prediction"] = model.predict(frame)
        frame.to_parquet(out, index=False)
        return len(frame)

    return _timed(whole_frame)


def run_child(contender: str, model_id: str, src: Path, out: Path, env: dict[str, str]) -> dict[str, Any]:
    res = out.with_suffix(".json")
    cmd = [sys.executable, "-m", "bench.scoring", "--child", contender, "--model", model_id,
           "--input", str(src), "--output", str(out), "--result", str(res)]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=env)
    if proc.returncode != 0 or not res.exists():
        last = (proc.stderr.strip().splitlines() or [f"exit code {proc.returncode}"])[-1]
        return {"error": last}
    data = json.loads(res.read_text())
    res.unlink()
    return data


def write_csv(parquet: Path, csv: Path) -> None:
    """The same rows as CSV, a row group at a time."""
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    pf = pq.ParquetFile(parquet)
    with pacsv.CSVWriter(csv, pf.schema_arrow) as writer:
        for batch in pf.iter_batches(batch_size=500_000):
            writer.write_batch(batch)


def prediction_diff(a: Path, b: Path) -> float:
    """Largest absolute difference between the two outputs' predictions (inf when their rows differ)."""
    import numpy as np
    import pyarrow.parquet as pq

    left, right = (pq.read_table(p, columns=["prediction"]).column(0).to_numpy() for p in (a, b))
    return float(np.abs(left - right).max(initial=0.0)) if left.shape == right.shape else float("inf")


def measure(kind: str, rows: int, src: Path, model_id: str, work: Path, env: dict[str, str],
            rounds: int) -> dict[str, Any]:
    """One table row: medians over ``rounds`` rounds, contenders alternating within each."""
    runs: dict[str, list[dict[str, Any]]] = {"mlc": [], "pyfunc": []}
    row: dict[str, Any] = {"input": kind, "rows": rows, "rounds": rounds}
    diff = 0.0
    for i in range(rounds):
        order = ("mlc", "pyfunc") if i % 2 == 0 else ("pyfunc", "mlc")
        outs = {c: work / f"out-{c}.parquet" for c in order}
        for contender in order:
            res = run_child(contender, model_id, src, outs[contender], env)
            if "error" in res:
                row[f"{contender}_error"] = res["error"]
            else:
                runs[contender].append(res)
        if all(p.exists() for p in outs.values()):
            diff = max(diff, prediction_diff(outs["mlc"], outs["pyfunc"]))
        for p in outs.values():
            p.unlink(missing_ok=True)
    for contender, done in runs.items():
        if not done:
            continue
        row[f"{contender}_rows_per_s"] = round(statistics.median(r["rows"] / max(r["wall_s"], 1e-9) for r in done))
        row[f"{contender}_cpu_s"] = round(statistics.median(r["cpu_s"] for r in done), 3)
        row[f"{contender}_peak_mib"] = round(max(r["peak_rss_mib"] for r in done), 1)
        row[f"{contender}_base_mib"] = round(statistics.median(r["rss_before_mib"] for r in done), 1)
    if len(runs["mlc"]) == len(runs["pyfunc"]) == rounds:
        row["ratio"] = round(statistics.median(p["wall_s"] / max(m["wall_s"], 1e-9)
                                               for m, p in zip(runs["mlc"], runs["pyfunc"])), 3)
        row["cpu_ratio"] = round(row["pyfunc_cpu_s"] / max(row["mlc_cpu_s"], 1e-9), 3)
        # the same to rounding: BLAS sums in an order that follows the frame's memory layout
        row["prediction_max_abs_diff"] = diff
        row["same_predictions"] = diff <= 1e-9
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny size (20k rows), one round")
    parser.add_argument("--rows", type=int, nargs="+", help="row counts to score")
    parser.add_argument("--rounds", type=int, help=f"rounds per row count and input (default {ROUNDS})")
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
    rounds = args.rounds or (1 if args.smoke else ROUNDS)
    load_start = [round(x, 2) for x in os.getloadavg()]
    table: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="mlc-bench-scoring-") as tmp:
        work = Path(tmp)
        home = work / "home"
        home.mkdir()
        model_id = register_model(home)
        env = bench_env(home)
        for rows in sizes:
            inputs = {kind: work / f"in-{rows}.{kind}" for kind in INPUTS}
            write_rows(inputs["parquet"], rows, seed=rows)
            write_csv(inputs["parquet"], inputs["csv"])
            for kind, src in inputs.items():
                table.append(measure(kind, rows, src, model_id, work, env, rounds))
                src.unlink()

    def growth(contender: str) -> dict[str, float | None]:
        out: dict[str, float | None] = {}
        for kind in INPUTS:
            peaks = [r.get(f"{contender}_peak_mib") for r in table if r["input"] == kind]
            out[kind] = None if len(peaks) < 2 or None in peaks else round(peaks[-1] - peaks[0], 1)
        return out

    emit("scoring", {
        "model": f"{MODEL_NAME} (StandardScaler + Ridge, 10 float features); Parquet or CSV in, Parquet out",
        "chunk_rows": CHUNK_ROWS,
        "target_ratio": TARGET_RATIO,
        "load_avg_start": load_start,
        "load_avg_end": [round(x, 2) for x in os.getloadavg()],
        "sizes": table,
        "mlc_peak_growth_mib": growth("mlc"),
        "pyfunc_peak_growth_mib": growth("pyfunc"),
    }, smoke=args.smoke)


if __name__ == "__main__":
    main()
