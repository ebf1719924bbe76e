"""Fixtures of the fault suite: real processes killed for real, on loopback.

Every scenario has a short form, which runs in ``make test``, and may have a full form (marker
``faults``), which runs only under ``-m faults`` (``make test-faults``). Each test fills in a
:class:`~tests.faults.support.Scenario` (instances started, completed, lost; effects duplicated;
incidents; peak memory) and the session writes them all as one JSON summary
(``MLC_RELIABILITY_REPORT``, default ``$MLC_HOME/reliability/faults.json``, or
``.mlc/reliability/faults.json`` without ``MLC_HOME``); docs/reliability.md shows one as a table.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.faults.support import Scenario, write_summary
from tests.support.markers import skip_unless_selected

ROOT = Path(__file__).resolve().parents[2]
_SCENARIOS: list[Scenario] = []


HERE = Path(__file__).resolve().parent
TIMEOUT_S = 1800  # a scenario restarts engines and servers: on a loaded machine it outlasts the suite's 600 s


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The full forms (marker ``faults``) only when asked for with ``-m faults`` (make test-faults)."""
    for item in items:
        if HERE in Path(str(item.fspath)).parents and not item.get_closest_marker("timeout"):
            item.add_marker(pytest.mark.timeout(TIMEOUT_S))
    skip_unless_selected(config, items, "faults", "full fault scenario: `make test-faults`")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    report = yield
    if report.when == "call":
        item.stash[_OUTCOME] = report.outcome
    return report


_OUTCOME = pytest.StashKey[str]()


@pytest.fixture
def scenario(request: pytest.FixtureRequest) -> Iterator[Scenario]:
    """The figures of this test's scenario, kept for the session's JSON summary."""
    found = Scenario(name=request.node.name, form="full" if request.node.get_closest_marker("faults") else "short")
    yield found
    found.outcome = request.node.stash.get(_OUTCOME, "error")
    _SCENARIOS.append(found)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if not _SCENARIOS:
        return
    default = Path(os.environ.get("MLC_HOME") or ROOT / ".mlc") / "reliability" / "faults.json"
    write_summary(Path(os.environ.get("MLC_RELIABILITY_REPORT") or default), "faults", _SCENARIOS)
