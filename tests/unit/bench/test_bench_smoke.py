"""The benchmarks still run (smoke sizes) and print their JSON line; RESULTS.md is rendered from
the lines. Never asserts on timings: only that the figures are there and the peers agree."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench import run, serving

ROOT = Path(__file__).resolve().parents[3]

# The benchmarks cheap enough for the test suite, with the figures each must report.
EXPECTED = {
    "startup": {"python_pass", "mlc_help", "mlc_signal", "mlc_help_over_floor_s", "mlc_signal_over_floor_s"},
    "drift": {"tolerance", "peer", "sizes"},
    "scoring": {"chunk_rows", "sizes", "mlc_peak_growth_mib", "pyfunc_peak_growth_mib"},
}
SIZE_KEYS = {
    "drift": {"rows", "features", "shifted", "mlc_s", "mlc_peak_mib", "bins"},
    "scoring": {"rows", "mlc_rows_per_s", "mlc_peak_mib", "pyfunc_rows_per_s", "pyfunc_peak_mib"},
}


@pytest.mark.slow
def test_smoke_run_prints_one_line_per_benchmark(tmp_path: Path) -> None:
    markdown = tmp_path / "RESULTS.md"
    proc = subprocess.run(
        [sys.executable, "-m", "bench.run", "--smoke", "--only", *EXPECTED, "--markdown", str(markdown)],
        cwd=ROOT, capture_output=True, text=True, timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    by_name = {line["bench"]: line for line in lines}
    assert sorted(by_name) == sorted(EXPECTED) and len(lines) == len(EXPECTED)
    for name, keys in EXPECTED.items():
        line = by_name[name]
        assert "error" not in line, line["error"]
        assert line["smoke"] is True and line["cores"] >= 1 and line["date"]
        assert keys <= line.keys(), keys - line.keys()
        for size in line.get("sizes", []):
            assert SIZE_KEYS[name] <= size.keys(), SIZE_KEYS[name] - size.keys()

    for size in by_name["drift"]["sizes"]:
        if "evidently_s" in size:  # the peer ran: the statistics must agree, the flags must match
            assert size["agree"] is True and size["same_flags"] is True, size
        else:
            assert size["evidently"].startswith("unavailable: "), size

    text = markdown.read_text()  # the newest full result of each where one is saved, else this smoke one
    for name in EXPECTED:
        assert f"## {name}" in text and f'"bench": "{name}"' in text


@pytest.mark.slow
def test_serving_smoke_run_finds_the_servers_predict_alike() -> None:
    """mlc, MLServer and mlflow models serve answer the same rows alike, over each protocol each speaks;
    `mlflow models serve` must take part (mlflow is in the main venv); MLServer, which lives in
    .venv-bench (make bench-peers), may be unavailable and then says why, but is not counted.
    Its own run, so the three servers' start-up does not share the other benchmarks' time limit."""
    proc = subprocess.run([sys.executable, "-m", "bench.serving", "--smoke"], cwd=ROOT, capture_output=True,
                          text=True, timeout=540)
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = json.loads([text for text in proc.stdout.splitlines() if text.startswith("{")][-1])
    assert line["bench"] == "serving" and line["smoke"] is True and "error" not in line, line
    assert {"agreement", "levels", "targets", "mlc_rss_mib"} <= line.keys()
    agreement = line["agreement"]
    assert agreement["same_predictions"] is True and agreement["rows"] == serving.AGREE_ROWS, agreement
    # mlflow is in the main venv: `mlflow models serve` must take part, or mlc is compared with itself
    assert "mlflow" not in line, line["mlflow"]
    assert {"mlc_v2", "mlc_invocations", "mlflow_invocations"} <= set(agreement["answers"]), agreement
    if "mlserver" in line:  # MLServer needs .venv-bench (make bench-peers): may be missing, says why
        assert str(line["mlserver"]).startswith("unavailable: "), line["mlserver"]
    else:
        assert {"mlserver_v2", "mlserver_invocations"} <= set(agreement["answers"]), agreement
    rows = line["levels"]
    assert [(r["protocol"], r["concurrency"]) for r in rows] == [
        (p, c) for p in serving.PROTOCOLS for c in serving.LEVELS]
    for row in rows:  # wrk's figures for every level, no failed request
        assert row["mlc_errors"] == 0 and row["mlc_rps"] > 0 and 0 < row["mlc_p50_ms"] <= row["mlc_p99_ms"], row
        for peer in ("mlserver", "mlflow"):
            if peer not in line and (peer == "mlserver" or row["protocol"] == "invocations"):
                assert row[f"{peer}_errors"] == 0 and row[f"{peer}_rps"] > 0, row
    assert set(line["targets"]) == set(serving.PROTOCOLS)


def test_serving_targets_are_judged_against_mlserver_at_concurrency_8() -> None:
    row = {"concurrency": 8, "mlc_rps": 900.0, "mlc_p99_ms": 9.0, "mlserver_rps": 300.0, "mlserver_p99_ms": 40.0}
    rows = [{"protocol": "v2", **row}, {"protocol": "invocations", **row, "mlc_p99_ms": 12.0},
            {"protocol": "v2", **row, "concurrency": 1, "mlc_rps": 1.0}]
    verdict = serving.targets(rows)
    assert verdict["v2"] == {"mlc_p99_under_10ms": True, "mlc_rps_at_least_mlserver": True,
                             "mlc_p99_at_most_mlserver": True, "all_met": True}
    assert verdict["invocations"]["mlc_p99_under_10ms"] is False and verdict["invocations"]["all_met"] is False
    slower = serving.targets([{"protocol": "v2", **row, "mlc_rps": 299.0}])["v2"]
    assert slower["mlc_rps_at_least_mlserver"] is False and slower["all_met"] is False
    alone = serving.targets([{"protocol": "v2", "concurrency": 8, "mlc_rps": 900.0, "mlc_p99_ms": 5.0}])["v2"]
    assert alone == {"mlc_p99_under_10ms": True, "all_met": False}  # no MLServer in the run: not met


def _rec(name: str, date: str, smoke: bool, **figures: object) -> dict[str, object]:
    return {"bench": name, "date": date, "cores": 2, "smoke": smoke, **figures}


def test_choose_prefers_the_newest_full_result_over_smoke_and_errors() -> None:
    chosen = run.choose([
        _rec("drift", "2026-01-02", False, x=1),
        _rec("drift", "2026-01-03", True, x=2),
        _rec("drift", "2026-01-01", False, x=3),
        _rec("drift", "2026-01-04", False, error="boom"),
        _rec("scoring", "2026-01-01", True, x=4),
    ])
    assert chosen["drift"]["x"] == 1
    assert chosen["scoring"]["x"] == 4


def test_section_renders_scalars_and_row_tables_and_embeds_the_json() -> None:
    rec = _rec("scoring", "2026-01-01", False, chunk_rows=50_000, nested={"a": 1.5},
               sizes=[{"rows": 10, "mlc_peak_mib": 1.0}, {"rows": 20, "pyfunc_peak_mib": 2.0}])
    text = run.section("scoring", rec)
    assert "| chunk_rows | 50,000 |" in text
    assert "| nested.a | 1.5 |" in text
    assert "| rows | mlc_peak_mib | pyfunc_peak_mib |" in text
    assert "| 20 | – | 2 |" in text
    assert "full size" in text
    assert json.loads(run._JSON_MARK.search(text).group(1)) == rec


def test_markdown_keeps_figures_of_benchmarks_not_rerun(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(run, "RESULTS", tmp_path / "results")  # no saved results: only the old file
    markdown = tmp_path / "RESULTS.md"
    run.write_markdown(markdown, [_rec("drift", "2026-01-01", False, tolerance=1e-6)])
    run.write_markdown(markdown, [_rec("scoring", "2026-01-02", True, chunk_rows=7)])
    text = markdown.read_text()
    assert "| tolerance | 1e-06 |" in text and "| chunk_rows | 7 |" in text
    assert "## lifecycle" in text and "## step_latency" in text  # every benchmark has a section


def test_a_failed_rerun_is_shown_beside_the_previous_figures(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(run, "RESULTS", tmp_path / "results")
    markdown = tmp_path / "RESULTS.md"
    run.write_markdown(markdown, [_rec("drift", "2026-01-01", False, tolerance=1e-6)])
    run.write_markdown(markdown, [_rec("drift", "2026-01-02", False, error="exit code 1: boom")])
    text = markdown.read_text()
    assert "| tolerance | 1e-06 |" in text and "failed:** exit code 1: boom" in text


def test_hand_written_notes_survive_regeneration(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(run, "RESULTS", tmp_path / "results")
    markdown = tmp_path / "RESULTS.md"
    run.write_markdown(markdown, [_rec("drift", "2026-01-01", False, tolerance=1e-6)])
    text = markdown.read_text().replace("<!-- notes -->\n", "<!-- notes -->\n## Findings\n\nWhy X is slow.\n")
    markdown.write_text(text)
    run.write_markdown(markdown, [_rec("scoring", "2026-01-02", False, chunk_rows=7)])
    again = markdown.read_text()
    assert again.count("Why X is slow.") == 1 and "| chunk_rows | 7 |" in again
