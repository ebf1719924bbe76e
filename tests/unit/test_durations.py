"""ISO-8601 durations as timers, canary windows and training timeouts read them, and the short form
(`7d`, `1h30m`) the CLI's --since, --every and --older-than and the retention setting take."""

from __future__ import annotations

import pytest

from modelops_mlc.durations import duration_seconds, iso_duration_seconds
from modelops_mlc.errors import UsageError


@pytest.mark.parametrize(("text", "seconds"), [("PT30S", 30), ("pt10m", 600), ("PT6H", 21600), ("P1D", 86400),
                                               ("P1W", 604800), ("PT0.5S", 0.5)])
def test_durations_read_as_seconds(text, seconds) -> None:
    assert iso_duration_seconds(text) == seconds


@pytest.mark.parametrize("text", ["6h", "PT", "P", "", "PT0S", "-PT1M", "10"])
def test_anything_else_is_a_usage_error(text) -> None:
    with pytest.raises(UsageError):
        iso_duration_seconds(text)


@pytest.mark.parametrize(("text", "seconds"), [("30s", 30), ("15m", 900), ("1h30m", 5400), ("1.5h", 5400),
                                               ("7d", 604800), ("2w", 1209600), (" 1D 12H ", 129600), ("P30D", 2592000),
                                               ("PT6H", 21600)])
def test_short_and_iso_durations_read_as_seconds(text, seconds) -> None:
    assert duration_seconds(text) == seconds


@pytest.mark.parametrize("text", ["", "d", "7", "7x", "0s", "0d0h", "-1d", "1,5h", "a month", "PT0S", "P"])
def test_anything_else_is_not_a_duration(text) -> None:
    with pytest.raises(UsageError, match="is not a (positive )?duration|ISO-8601"):
        duration_seconds(text)
