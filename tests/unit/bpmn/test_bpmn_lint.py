"""bpmn/*.bpmn are clean under bpmnlint's recommended rules and the Camunda 7.24 compatibility rules
Camunda Modeler applies (tests/bpmnlint/.bpmnlintrc); warnings count as failures.

bpmnlint is an npm package installed project-locally: `npm ci --prefix tests/bpmnlint` (node >= 20).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
LINT_DIR = ROOT / "tests" / "bpmnlint"
BPMNLINT = LINT_DIR / "node_modules" / ".bin" / "bpmnlint"
BPMN_FILES = sorted((ROOT / "bpmn").glob("*.bpmn"))

pytestmark = pytest.mark.skipif(
    shutil.which("node") is None or not BPMNLINT.exists(),
    reason="bpmnlint is not installed: run `npm ci --prefix tests/bpmnlint` (needs node >= 20)",
)


def test_there_are_processes_to_lint():
    assert len(BPMN_FILES) >= 3


@pytest.mark.parametrize("path", BPMN_FILES, ids=[p.name for p in BPMN_FILES])
def test_bpmnlint_recommended(path: Path):
    result = subprocess.run(
        [str(BPMNLINT), "--config", str(LINT_DIR / ".bpmnlintrc"), "--max-warnings=0", str(path)],
        cwd=LINT_DIR, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_bpmnlint_reports_a_broken_diagram(tmp_path: Path):
    """Guards the guard: a process with an unlabelled end event must fail the lint."""
    broken = tmp_path / "broken.bpmn"
    text = (ROOT / "bpmn" / "run_batch_job.bpmn").read_text(encoding="utf-8")
    broken.write_text(text.replace('name="Scored"', ""), encoding="utf-8")
    result = subprocess.run(
        [str(BPMNLINT), "--config", str(LINT_DIR / ".bpmnlintrc"), str(broken)],
        cwd=LINT_DIR, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode != 0
    assert "label-required" in result.stdout
