"""Bad input to the read-side commands: one line on stderr and the not-found or usage exit code."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize("args", [
    ("history", "nosuch"),
    ("lineage", "nosuch/2"),
    ("kpi", "--model-id", "nosuch"),
    ("report", "--model-id", "nosuch", "--out", "report"),
])
def test_unknown_model_is_one_line_and_exit_4(run_mlc, tmp_path, args) -> None:
    r = run_mlc(*args, cwd=tmp_path)
    assert r.returncode == 4, r.stderr
    assert "nosuch" in r.stderr and "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) <= 2
    assert not (tmp_path / "report").exists()


@pytest.mark.parametrize("command", [("kpi",), ("audit",), ("report", "--out", "report")])
def test_bad_since_is_a_usage_error(run_mlc, command) -> None:
    r = run_mlc(*command, "--since", "yesterday-ish")
    assert r.returncode == 2 and "--since" in r.stderr and "Traceback" not in r.stderr
