"""Several processes opening one fresh sqlite registry at once all get a working registry.

MLflow migrates a fresh sqlite file on first open; without the lock in ``Registry.client`` the
worker daemon and the CLI starting together failed with "table _alembic_tmp_... already exists".
"""

from __future__ import annotations

import multiprocessing as mp
import os
from pathlib import Path

OPENERS = 4


def _open_registry(home: str, barrier, results) -> None:
    os.environ["MLC_HOME"] = home
    from modelops_mlc.config import load_settings
    from modelops_mlc.registry import Registry

    registry = Registry(load_settings())
    barrier.wait(timeout=120)
    try:
        registry.client.create_registered_model(f"m-{os.getpid()}")
        results.put("ok")
    except Exception as exc:  # reported back to the test, which names it
        results.put(f"{type(exc).__name__}: {exc}")


def test_processes_opening_a_fresh_registry_together_all_succeed(tmp_path: Path, monkeypatch) -> None:
    ctx = mp.get_context("spawn")
    barrier, results = ctx.Barrier(OPENERS), ctx.Queue()
    procs = [ctx.Process(target=_open_registry, args=(str(tmp_path), barrier, results)) for _ in range(OPENERS)]
    for proc in procs:
        proc.start()
    outcomes = [results.get(timeout=240) for _ in procs]
    for proc in procs:
        proc.join(timeout=60)
    assert outcomes == ["ok"] * OPENERS

    monkeypatch.setenv("MLC_HOME", str(tmp_path))
    from modelops_mlc.config import load_settings
    from modelops_mlc.registry import Registry

    names = {m.name for m in Registry(load_settings()).client.search_registered_models()}
    assert len(names) == OPENERS
