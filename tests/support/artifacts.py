"""Where tests keep what a person looks at after a run (the report's screenshot and page): the directory
``MLC_TEST_ARTIFACTS`` names, else ``test-artifacts/`` at the repository's root (git ignores it). Unlike
pytest's tmp dirs, it is neither renamed per run nor pruned after three."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def artifact_path(name: str) -> Path:
    """The path to keep the artifact ``name`` at (its directory is made; an earlier run's file is replaced)."""
    base = Path(os.environ.get("MLC_TEST_ARTIFACTS") or ROOT / "test-artifacts")
    path = base / name
    path.parent.mkdir(parents=True, exist_ok=True)
    return path
