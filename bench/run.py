"""Run the benchmarks, each in its own process, and regenerate bench/RESULTS.md.

Each benchmark is ``python -m bench.NAME [--smoke]`` and prints one JSON line of figures; this
relays the lines to stdout, keeps them in bench/results/ (gitignored) and rewrites RESULTS.md
from the newest full-size result of every benchmark (a smoke result where no full one exists).
RESULTS.md embeds each result's JSON, so figures of benchmarks not re-run survive a fresh checkout,
and keeps the hand-written analysis between its ``<!-- notes -->`` markers.
Benchmarks that need a Camunda engine get ``--engine-url``: the one given, else a local engine
this runner starts once on a free port and stops at the end.

Usage: python -m bench.run [--smoke] [--only NAME ...] [--engine-url URL] [--markdown PATH] [--render]
"""

from __future__ import annotations

import argparse
import ast
import datetime as dt
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any, Iterator

from bench._common import RESULTS

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
MARKDOWN = BENCH / "RESULTS.md"

# name -> (needs an engine, extra smoke arguments when the benchmark has no --smoke of its own)
BENCHMARKS: dict[str, tuple[bool, list[str]]] = {
    "startup": (False, []),
    "worker_throughput": (True, ["--smoke"]),
    "worker_throughput_io": (True, ["--smoke"]),
    "step_latency": (True, []),
    "serving": (False, []),
    "serving_workers": (False, []),
    "drift": (False, []),
    "scoring": (False, []),
    "lifecycle": (True, []),
    "monitor_scale": (True, []),
}
TIMEOUT_S = {"smoke": 600, "full": 3 * 3600}
_JSON_MARK = re.compile(r"<!-- bench-json (\{.*\}) -->")
_NOTES = re.compile(r"<!-- notes -->\n(.*?)<!-- /notes -->", re.S)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def local_engine() -> Iterator[str]:
    """A throwaway local engine (jar, H2 in a temp dir) for the run; yields its REST URL."""
    from modelops_mlc.config import Settings
    from modelops_mlc.engine.local import LocalEngine

    with tempfile.TemporaryDirectory(prefix="mlc-bench-engine-") as tmp:
        settings = Settings(home=Path(tmp), engine_port=_free_port())
        engine = LocalEngine(settings)
        engine.start(timeout=300)
        try:
            yield settings.engine_url
        finally:
            engine.stop()


def _module_doc(name: str) -> str:
    path = BENCH / f"{name}.py"
    try:
        doc = ast.get_docstring(ast.parse(path.read_text())) or ""
    except (OSError, SyntaxError):
        return ""
    return " ".join(doc.strip().split("\n\n")[0].split())


def _accepts(name: str, flag: str) -> bool:
    path = BENCH / f"{name}.py"
    return path.exists() and f'"{flag}"' in path.read_text()


def command(name: str, smoke: bool, engine_url: str | None) -> list[str]:
    needs_engine, smoke_args = BENCHMARKS[name]
    cmd = [sys.executable, "-m", f"bench.{name}"]
    if smoke:
        cmd += ["--smoke"] if _accepts(name, "--smoke") else smoke_args
    if needs_engine and engine_url and _accepts(name, "--engine-url"):
        cmd += ["--engine-url", engine_url]
    return cmd


def _json_line(stdout: str) -> dict[str, Any] | None:
    for line in reversed(stdout.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                value = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(value, dict):
                return value
    return None


def _stamp(name: str, figures: dict[str, Any], smoke: bool) -> dict[str, Any]:
    """The common fields emit() adds, for benchmarks that print bare figures."""
    line = {"bench": name, "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "cores": os.cpu_count(), "smoke": smoke}
    line.update({k: v for k, v in figures.items() if k != "bench"})
    return line


def run_one(name: str, smoke: bool, engine_url: str | None) -> dict[str, Any]:
    """Run one benchmark; its JSON line (with the common fields), or a line with ``error``."""
    if not (BENCH / f"{name}.py").exists():
        return _stamp(name, {"error": "not built"}, smoke)
    cmd = command(name, smoke, engine_url)
    RESULTS.mkdir(exist_ok=True)
    log = RESULTS / f"{name}{'-smoke' if smoke else ''}.log"
    started = time.perf_counter()
    limit = TIMEOUT_S["smoke" if smoke else "full"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        stdout, stderr = proc.communicate(timeout=limit)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGINT)  # lets the benchmark stop the servers and engines it started
        try:
            stdout, stderr = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            stdout, stderr = proc.communicate()
        log.write_text(f"$ {' '.join(cmd)}\n--- stdout\n{stdout}\n--- stderr\n{stderr}")
        return _stamp(name, {"error": f"timed out after {limit}s (log: {log.relative_to(ROOT)})"}, smoke)
    log.write_text(f"$ {' '.join(cmd)}\n--- stdout\n{stdout}\n--- stderr\n{stderr}")
    figures = _json_line(stdout)
    if proc.returncode != 0 or figures is None:
        tail = (stderr.strip().splitlines() or [f"exit code {proc.returncode}"])[-1]
        return _stamp(name, {"error": f"exit code {proc.returncode}: {tail} (log: {log.relative_to(ROOT)})"}, smoke)
    line = _stamp(name, figures, smoke)
    line["bench_seconds"] = round(time.perf_counter() - started, 1)
    (RESULTS / f"{name}{'-smoke' if smoke else ''}.json").write_text(json.dumps(line, indent=2) + "\n")
    return line


# -- RESULTS.md --------------------------------------------------------------------------------

def _previous(markdown: Path) -> list[dict[str, Any]]:
    if not markdown.exists():
        return []
    found = []
    for match in _JSON_MARK.finditer(markdown.read_text()):
        try:
            found.append(json.loads(match.group(1)))
        except json.JSONDecodeError:
            continue
    return found


def _saved() -> list[dict[str, Any]]:
    found = []
    for path in sorted(RESULTS.glob("*.json")) if RESULTS.exists() else []:
        try:
            value = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        if isinstance(value, dict) and value.get("bench"):
            found.append(value)
    return found


def choose(records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per benchmark: the newest full-size result, else the newest smoke result, else the newest error
    (the first of equals)."""
    best: dict[str, dict[str, Any]] = {}

    def rank(rec: dict[str, Any]) -> tuple[int, int, str]:
        return (0 if "error" in rec else 1, 0 if rec.get("smoke") else 1, str(rec.get("date", "")))

    for rec in records:
        name = str(rec["bench"])
        if name not in best or rank(rec) > rank(best[name]):
            best[name] = rec
    return best


def _cell(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        text = f"{value:.4g}" if abs(value) < 1e6 else f"{value:,.0f}"
    elif isinstance(value, int) and not isinstance(value, bool):
        text = f"{value:,}" if abs(value) >= 10_000 else str(value)
    elif isinstance(value, (list, dict)):
        text = json.dumps(value)
    else:
        text = str(value)
    return text.replace("|", "\\|").replace("\n", " ")


def _flatten(figures: dict[str, Any], prefix: str = "") -> tuple[list[tuple[str, Any]], list[tuple[str, list]]]:
    scalars: list[tuple[str, Any]] = []
    tables: list[tuple[str, list]] = []
    for key, value in figures.items():
        full = f"{prefix}{key}"
        if isinstance(value, dict):
            inner, inner_tables = _flatten(value, f"{full}.")
            scalars += inner
            tables += inner_tables
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            tables.append((full, value))
        else:
            scalars.append((full, value))
    return scalars, tables


def section(name: str, rec: dict[str, Any] | None, failed: dict[str, Any] | None = None) -> str:
    doc = _module_doc(name)
    lines = [f"## {name}", ""]
    if doc:
        lines += [doc, ""]
    if rec is None:
        lines += [f"_{'not run yet'}._", ""]
        return "\n".join(lines)
    size = "smoke sizes (not the full benchmark)" if rec.get("smoke") else "full size"
    lines += [f"Run {rec.get('date', '?')} on {rec.get('cores', '?')} cores, {size}.", ""]
    if "error" in rec:
        lines += [f"**Not measured:** {rec['error']}", ""]
    if failed is not None and failed is not rec:
        lines += [f"**The latest run ({failed.get('date', '?')}) failed:** {failed['error']}. "
                  "The figures below are from the run before.", ""]
    figures = {k: v for k, v in rec.items() if k not in ("bench", "date", "cores", "smoke", "error")}
    scalars, tables = _flatten(figures)
    if scalars:
        lines += ["| figure | value |", "|---|---|"]
        lines += [f"| {key} | {_cell(value)} |" for key, value in scalars]
        lines.append("")
    for key, rows in tables:
        columns: list[str] = []
        for row in rows:
            columns += [c for c in row if c not in columns]
        lines += [f"**{key}**", "", "| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
        lines += ["| " + " | ".join(_cell(row.get(c)) for c in columns) + " |" for row in rows]
        lines.append("")
    lines += [f"<!-- bench-json {json.dumps(rec)} -->", ""]
    return "\n".join(lines)


def _notes(markdown: Path) -> str:
    """The hand-written analysis kept between the notes markers of the previous RESULTS.md."""
    match = _NOTES.search(markdown.read_text()) if markdown.exists() else None
    return match.group(1) if match else ""


def render(chosen: dict[str, dict[str, Any]], failed: dict[str, dict[str, Any]] | None = None,
           notes: str = "") -> str:
    today = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d")
    head = [
        "# Benchmark results",
        "",
        f"Regenerated by `python -m bench.run` (`make bench`; `make bench-smoke` for tiny sizes) on {today}, "
        f"on a machine with {os.cpu_count()} cores. Each benchmark runs ours and its peer in the same run; "
        "each section says when it ran and whether at full or smoke size. Figures are wall-clock on a "
        "shared machine: compare within a run, not across runs.",
        "",
        "<!-- notes -->",
        notes.strip() + "\n" if notes.strip() else "",
        "<!-- /notes -->",
        "",
    ]
    names = list(BENCHMARKS) + sorted(n for n in chosen if n not in BENCHMARKS)
    failed = failed or {}
    body = [section(name, chosen.get(name), failed.get(name)) for name in names]
    return "\n".join(head + body).rstrip() + "\n"


def write_markdown(markdown: Path, fresh: list[dict[str, Any]]) -> None:
    chosen = choose(fresh + _saved() + _previous(markdown))  # on a tie the first seen wins
    markdown.parent.mkdir(parents=True, exist_ok=True)
    failed = {str(r["bench"]): r for r in fresh if "error" in r and (BENCH / f"{r['bench']}.py").exists()}
    markdown.write_text(render(chosen, failed, _notes(markdown)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, to check the benchmarks still run")
    parser.add_argument("--only", nargs="+", metavar="NAME", choices=list(BENCHMARKS), help="run only these")
    parser.add_argument("--engine-url", help="engine for the benchmarks that need one (default: start a local one)")
    parser.add_argument("--markdown", type=Path, default=MARKDOWN, help="where to write RESULTS.md")
    parser.add_argument("--render", action="store_true", help="run nothing: rewrite RESULTS.md from saved results")
    args = parser.parse_args()
    if args.render:
        write_markdown(args.markdown, [])
        print(f"bench: wrote {args.markdown}", file=sys.stderr)
        return

    names = args.only or list(BENCHMARKS)
    fresh: list[dict[str, Any]] = []
    with ExitStack() as stack:
        engine_url = args.engine_url
        wanted = [n for n in names if BENCHMARKS[n][0] and (BENCH / f"{n}.py").exists()]
        if wanted and not engine_url:
            print(f"bench: starting a local engine for {', '.join(wanted)}", file=sys.stderr, flush=True)
            try:
                engine_url = stack.enter_context(local_engine())
            except Exception as exc:  # the engine benchmarks then start their own or report why not
                print(f"bench: cannot start a local engine: {exc}", file=sys.stderr, flush=True)
        for name in names:
            print(f"bench: {name}{' (smoke)' if args.smoke else ''} ...", file=sys.stderr, flush=True)
            line = run_one(name, args.smoke, engine_url)
            print(json.dumps(line), flush=True)
            status = f"failed: {line['error']}" if "error" in line else f"done in {line.get('bench_seconds')}s"
            print(f"bench: {name} {status}", file=sys.stderr, flush=True)
            fresh.append(line)
    write_markdown(args.markdown, fresh)
    print(f"bench: wrote {args.markdown}", file=sys.stderr)
    built_failures = [r for r in fresh if "error" in r and (BENCH / f"{r['bench']}.py").exists()]
    sys.exit(1 if built_failures else 0)


if __name__ == "__main__":
    main()
