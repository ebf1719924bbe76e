"""The MLC store's sqlite file under stress: locked by a long writer in another process, on a
read-only MLC_HOME, on a full one. Writers wait and succeed, or fail with one clear line and a
non-zero exit; the store is never corrupted and keeps what it held.

The read-only and full homes are real file systems (a tmpfs mounted, filled, remounted read-only),
which needs root; without it the read-only home is a directory the user may not write, and the
full one is skipped.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import mlc_command
from tests.faults.support import Scenario
from tests.support.home import home_env, home_settings
from tests.support.waiting import wait_for

UNREACHABLE = "http://127.0.0.1:9/engine-rest"
HOLDER = """
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN EXCLUSIVE")
conn.execute("UPDATE mlc_runtimes SET name = name")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
conn.execute("COMMIT")
"""


def _mlc(env: dict[str, str], *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*mlc_command(), *args], env=env, capture_output=True, text=True, timeout=timeout)


def _add(env: dict[str, str], name: str) -> None:
    """Add a runtime through the SDK (setting the scene; the CLI is what is under test)."""
    from modelops_mlc.runtimes.catalog import RuntimeCatalog

    RuntimeCatalog(home_settings(env)).add(name, {"stage": "QA"})


def _runtimes(db: Path) -> list[str]:
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        return sorted(r[0] for r in conn.execute("SELECT name FROM mlc_runtimes"))
    finally:
        conn.close()


def _one_clear_line(done: subprocess.CompletedProcess[str], words: str) -> None:
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    assert words in lines[0], lines[0]


def _hold_lock(db: Path, seconds: float) -> subprocess.Popen[str]:
    """A real second process holding sqlite's write lock on the store for ``seconds``."""
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(db), str(seconds)], stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
    return holder


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "home"
    path.mkdir()
    return path


def test_writers_wait_for_a_long_writer_and_succeed(home: Path, scenario: Scenario) -> None:
    env = home_env(home, UNREACHABLE)
    _add(env, "before")
    holder = _hold_lock(home / "mlc.db", 4)
    try:
        waiting = subprocess.Popen([*mlc_command(), "runtime", "add", "during", "--tag", "stage=QA"], env=env,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        out, err = waiting.communicate(timeout=60)
        assert holder.poll() is not None, "the writer finished while the lock was still held"
    finally:
        holder.wait(timeout=30)
    scenario.faults = ["sqlite store write-locked for 4 s by another process"]
    assert waiting.returncode == 0, err
    assert _runtimes(home / "mlc.db") == ["before", "during"]


@pytest.mark.faults
def test_a_writer_locked_out_too_long_fails_with_one_clear_line(home: Path, scenario: Scenario) -> None:
    from modelops_mlc.store.base import SQLITE_BUSY_TIMEOUT_S

    env = home_env(home, UNREACHABLE)
    _add(env, "before")
    holder = _hold_lock(home / "mlc.db", SQLITE_BUSY_TIMEOUT_S + 15)
    try:
        done = _mlc(env, "runtime", "add", "during", "--tag", "stage=QA")
    finally:
        holder.wait(timeout=120)
    scenario.faults = [f"sqlite store write-locked for {SQLITE_BUSY_TIMEOUT_S + 15} s by another process"]
    _one_clear_line(done, "is locked by another writer")
    assert _runtimes(home / "mlc.db") == ["before"]
    _add(env, "after")


@pytest.fixture
def tmpfs(home: Path) -> Iterator[Path]:
    """``home`` as a 2 MiB tmpfs of its own (root only), unmounted afterwards."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small file system needs root")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(home)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield home
    finally:
        subprocess.run(["umount", "-l", str(home)], check=False)


def test_a_full_home_fails_with_one_clear_line_and_keeps_the_store(tmpfs: Path, scenario: Scenario) -> None:
    env = home_env(tmpfs, UNREACHABLE)
    _add(env, "before")
    filler = tmpfs / "filler"
    with filler.open("wb") as f:  # every free block, until the disk says no
        try:
            while True:
                f.write(b"\0" * 65536)
                f.flush()
        except OSError:
            pass
    done = _mlc(env, "runtime", "add", "full", "--tag", "stage=QA", "--tag", f"note={'x' * 20000}")
    scenario.faults = ["MLC_HOME file system full"]
    _one_clear_line(done, "has no space left")
    filler.unlink()
    assert _runtimes(tmpfs / "mlc.db") == ["before"]
    _add(env, "after")
    assert _runtimes(tmpfs / "mlc.db") == ["after", "before"]


def test_a_read_only_home_fails_with_one_clear_line_and_keeps_the_store(home: Path, scenario: Scenario) -> None:
    env = home_env(home, UNREACHABLE)
    _add(env, "before")
    if os.geteuid() == 0:  # root writes anywhere: make the home a read-only file system
        mounted = subprocess.run(["mount", "--bind", str(home), str(home)], capture_output=True, text=True)
        if mounted.returncode != 0:
            pytest.skip(f"cannot bind-mount here: {mounted.stderr.strip()}")
        undo = ["umount", "-l", str(home)]
        subprocess.run(["mount", "-o", "remount,bind,ro", str(home)], check=True)
    else:
        for path in [*home.iterdir(), home]:
            path.chmod(0o555 if path.is_dir() else 0o444)
        undo = ["chmod", "-R", "u+w", str(home)]
    try:
        scenario.faults = ["MLC_HOME read-only"]
        done = _mlc(env, "runtime", "add", "refused", "--tag", "stage=QA")
        _one_clear_line(done, "read-only")
        listed = _mlc(env, "runtime", "list", "--json")
        assert listed.returncode == 0, listed.stderr
        assert "before" in listed.stdout
    finally:
        subprocess.run(undo, check=True)
    wait_for(lambda: os.access(home, os.W_OK), timeout=10, what="the home writable again")
    assert _runtimes(home / "mlc.db") == ["before"]
