"""Drift: `modelops_mlc.jobs.drift` against Evidently's DataDriftPreset (PSI and KS).

Synthetic float data with a known shift in some features (a mean shift in every fifth feature, a
scale change in every tenth from the third), at 356k rows x 50 features and 1M rows x 20
features. Each contender runs in its own process on the same saved arrays: wall time of the
computation, peak RSS of the process, and the RSS it held before computing (interpreter,
library, data). Evidently runs twice (``method="psi"``, then ``method="ks"``); ours computes
both statistics in one call, with Evidently's binning (equal-width Sturges bins over both
samples) so the numbers are comparable. The per-feature PSI and KS p-values of the two must
agree within ``TOLERANCE`` (absolute); the figures report the largest difference seen.

Evidently 0.7 does not import with pandas 3 (our venv), so it runs from its own venv, by
default ``.venv-bench`` next to ``.venv`` (``make bench`` creates it; ``--peer-python`` or
``MLC_BENCH_PEER_PYTHON`` point elsewhere). Without it the peer is reported "unavailable".

Usage: python -m bench.drift [--smoke] [--peer-python PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench._common import emit
from bench._peak import peak_rss_mib

ROOT = Path(__file__).resolve().parents[1]
SIZES = [(356_000, 50), (1_000_000, 20)]
# Above 10,000 rows scipy's ks_2samp (Evidently's KS) switches to the asymptotic p-value we use.
SMOKE_SIZES = [(12_000, 6)]
TOLERANCE = 1e-6
PSI_THRESHOLD, KS_ALPHA = 0.1, 0.05


def shifted(j: int) -> str | None:
    """The known shift of feature ``j``: ``mean``, ``scale`` or None."""
    if j % 5 == 0:
        return "mean"
    if j % 10 == 3:
        return "scale"
    return None


def make_data(rows: int, features: int, seed: int, out: Path) -> list[str]:
    """Write ref.npy and cur.npy (rows x features, float64) into ``out``; return the shifted names."""
    import numpy as np

    rng = np.random.default_rng(seed)
    shapes = ("normal", "lognormal", "uniform", "gamma")

    def sample(j: int) -> Any:
        kind = shapes[j % len(shapes)]
        if kind == "normal":
            return rng.normal(10.0 * j, 1.0 + j % 3, size=rows)
        if kind == "lognormal":
            return rng.lognormal(0.0, 0.5, size=rows)
        if kind == "uniform":
            return rng.uniform(-1.0, 1.0, size=rows)
        return rng.gamma(2.0, 2.0, size=rows)

    ref = np.empty((rows, features))
    cur = np.empty((rows, features))
    for j in range(features):
        ref[:, j] = sample(j)
        col = sample(j)
        kind = shifted(j)
        if kind == "mean":
            col = col + 0.25 * col.std()
        elif kind == "scale":
            col = col.mean() + (col - col.mean()) * 1.3
        cur[:, j] = col
    np.save(out / "ref.npy", ref)
    np.save(out / "cur.npy", cur)
    return [f"f{j}" for j in range(features) if shifted(j)]


def _frames(data: Path) -> tuple[Any, Any]:
    import numpy as np
    import pandas as pd

    ref, cur = np.load(data / "ref.npy"), np.load(data / "cur.npy")
    cols = [f"f{j}" for j in range(ref.shape[1])]
    return pd.DataFrame(ref, columns=cols, copy=False), pd.DataFrame(cur, columns=cols, copy=False)


def child_mlc(data: Path) -> dict[str, Any]:
    import numpy as np

    import scipy.stats  # noqa: F401  imported by drift() on first use; Evidently's imports are untimed too

    from modelops_mlc.jobs import drift

    ref, cur = _frames(data)
    # Evidently's bins: np.histogram_bin_edges(both samples, bins="sturges").
    bins = len(np.histogram_bin_edges(np.linspace(0.0, 1.0, len(ref) + len(cur)), bins="sturges")) - 1
    before = peak_rss_mib()
    started = time.perf_counter()
    result = drift(ref, cur, bins=bins, binning="uniform", psi_thresholds=(PSI_THRESHOLD, 0.2, 0.25), ks_alpha=KS_ALPHA)
    wall = time.perf_counter() - started
    return {
        "wall_s": wall, "rss_before_mib": before, "peak_rss_mib": peak_rss_mib(), "bins": bins,
        "psi": {f.feature: f.psi for f in result.features},
        "ks_p": {f.feature: f.p_value for f in result.features},
    }


def child_evidently(data: Path) -> dict[str, Any]:
    import evidently
    from evidently import Report
    from evidently.presets import DataDriftPreset

    ref, cur = _frames(data)
    before = peak_rss_mib()
    out: dict[str, Any] = {"version": evidently.__version__, "rss_before_mib": before}
    for method, key in (("psi", "psi"), ("ks", "ks_p")):
        started = time.perf_counter()
        snapshot = Report([DataDriftPreset(method=method)]).run(reference_data=ref, current_data=cur)
        values = {}
        for metric in snapshot.dict()["metrics"]:
            config = metric.get("config") or {}
            if str(config.get("type", "")).endswith("ValueDrift"):
                values[config["column"]] = float(metric["value"])
        out[f"wall_{method}_s"] = time.perf_counter() - started
        out[key] = values
    out["wall_s"] = out["wall_psi_s"] + out["wall_ks_s"]
    out["peak_rss_mib"] = peak_rss_mib()
    return out


def peer_python(explicit: str | None) -> str | None:
    if explicit:
        return explicit
    if os.environ.get("MLC_BENCH_PEER_PYTHON"):
        return os.environ["MLC_BENCH_PEER_PYTHON"]
    venv = ROOT / ".venv-bench" / "bin" / "python"
    return str(venv) if venv.exists() else None


def probe_evidently(python: str | None) -> tuple[str | None, str | None]:
    """(python to run Evidently with, None) or (None, why it is unavailable); a python that
    cannot import it is caught when its run fails, with the error as the reason."""
    if python:
        return (python, None) if Path(python).exists() else (None, f"{python} not found")
    import importlib.util

    if importlib.util.find_spec("evidently") is not None:
        return sys.executable, None
    return None, "Evidently is not installed: no .venv-bench (make bench creates it) and not in this venv"


def _peer_env() -> dict[str, str]:
    return {**os.environ, "DO_NOT_TRACK": "1", "EVIDENTLY_DISABLE_TELEMETRY": "1", "PYTHONPATH": str(ROOT)}


def run_child(python: str, contender: str, data: Path) -> tuple[dict[str, Any] | None, str | None]:
    out = data / f"{contender}.json"
    cmd = [python, "-m", "bench.drift", "--child", contender, "--data", str(data), "--out", str(out)]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=_peer_env())
    if proc.returncode != 0 or not out.exists():
        last = (proc.stderr.strip().splitlines() or [f"exit code {proc.returncode}"])[-1]
        return None, f"{contender} failed: {last}"
    return json.loads(out.read_text()), None


def compare(ours: dict[str, Any], peer: dict[str, Any], truth: list[str]) -> dict[str, Any]:
    features = sorted(ours["psi"], key=lambda f: int(f[1:]))
    psi_diff = max(abs(ours["psi"][f] - peer["psi"][f]) for f in features)
    ks_diff = max(abs(ours["ks_p"][f] - peer["ks_p"][f]) for f in features)

    def flags(res: dict[str, Any]) -> tuple[set[str], set[str]]:
        return ({f for f in features if res["psi"][f] >= PSI_THRESHOLD},
                {f for f in features if res["ks_p"][f] < KS_ALPHA})

    (ours_psi, ours_ks), (peer_psi, peer_ks) = flags(ours), flags(peer)
    return {
        "psi_max_abs_diff": float(f"{psi_diff:.3g}"),
        "ks_p_max_abs_diff": float(f"{ks_diff:.3g}"),
        "agree": psi_diff <= TOLERANCE and ks_diff <= TOLERANCE,
        "same_flags": ours_psi == peer_psi and ours_ks == peer_ks,
        "ks_flags_known_shift": len(ours_ks & set(truth)),
    }


def bench_size(rows: int, features: int, python: str | None, why: str | None, work: Path) -> dict[str, Any]:
    data = work / f"{rows}x{features}"
    data.mkdir()
    truth = make_data(rows, features, seed=rows + features, out=data)
    row: dict[str, Any] = {"rows": rows, "features": features, "shifted": len(truth)}
    ours, err = run_child(sys.executable, "mlc", data)
    if ours is None:
        row["mlc"] = err
        return row
    row.update(mlc_s=round(ours["wall_s"], 3), mlc_peak_mib=round(ours["peak_rss_mib"], 1),
               mlc_work_mib=round(ours["peak_rss_mib"] - ours["rss_before_mib"], 1), bins=ours["bins"])
    peer, err = run_child(python, "evidently", data) if python else (None, why)
    if peer is None:
        row["evidently"] = f"unavailable: {err}"
        return row
    row.update(evidently_s=round(peer["wall_s"], 3), evidently_psi_s=round(peer["wall_psi_s"], 3),
               evidently_ks_s=round(peer["wall_ks_s"], 3), evidently_peak_mib=round(peer["peak_rss_mib"], 1),
               evidently_work_mib=round(peer["peak_rss_mib"] - peer["rss_before_mib"], 1),
               speedup=round(peer["wall_s"] / max(ours["wall_s"], 1e-9), 1))
    row.update(compare(ours, peer, truth))
    row["evidently_version"] = peer["version"]
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes")
    parser.add_argument("--peer-python", help="a python that imports Evidently 0.7 (default .venv-bench)")
    parser.add_argument("--child", choices=["mlc", "evidently"], help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        result = child_mlc(args.data) if args.child == "mlc" else child_evidently(args.data)
        args.out.write_text(json.dumps(result))
        return

    python, why = probe_evidently(peer_python(args.peer_python))
    sizes = SMOKE_SIZES if args.smoke else SIZES
    with tempfile.TemporaryDirectory(prefix="mlc-bench-drift-") as tmp:
        table = [bench_size(rows, features, python, why, Path(tmp)) for rows, features in sizes]
    failed = next((row["evidently"] for row in table if "evidently" in row), None)
    figures: dict[str, Any] = {
        "tolerance": TOLERANCE,
        "peer": failed or "evidently DataDriftPreset(method=psi) + (method=ks)",
        "sizes": table,
        "target_speedup": 20,
    }
    emit("drift", figures, smoke=args.smoke)


if __name__ == "__main__":
    main()
