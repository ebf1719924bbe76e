"""ISO-8601 durations as timers, canary windows and training timeouts read them."""

from __future__ import annotations

import pytest

from modelops_mlc.durations import iso_duration_seconds
from modelops_mlc.errors import UsageError


@pytest.mark.parametrize(("text", "seconds"), [("PT30S", 30), ("pt10m", 600), ("PT6H", 21600), ("P1D", 86400),
                                               ("P1W", 604800), ("PT0.5S", 0.5)])
def test_durations_read_as_seconds(text, seconds) -> None:
    assert iso_duration_seconds(text) == seconds


@pytest.mark.parametrize("text", ["6h", "PT", "P", "", "PT0S", "-PT1M", "10"])
def test_anything_else_is_a_usage_error(text) -> None:
    with pytest.raises(UsageError):
        iso_duration_seconds(text)
