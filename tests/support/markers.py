"""Long test forms that run only when their marker is selected (``-m NAME``, a make target)."""

from __future__ import annotations

import pytest


def skip_unless_selected(config: pytest.Config, items: list[pytest.Item], marker: str, reason: str) -> None:
    """Skip the items marked ``marker`` unless ``-m`` names it (call from pytest_collection_modifyitems)."""
    if marker in (config.getoption("markexpr") or ""):
        return
    skip = pytest.mark.skip(reason=reason)
    for item in items:
        if item.get_closest_marker(marker):
            item.add_marker(skip)
