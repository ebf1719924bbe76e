"""workers/variables.py and docs/process-contract.md name the same topics, codes and variables."""

from __future__ import annotations

import re
from pathlib import Path

from workers import variables as v

CONTRACT = Path(__file__).resolve().parents[3] / "docs" / "process-contract.md"


def _topic_table(text: str) -> list[tuple[str, str]]:
    """Every body row of the table headed ``| topic | ...`` as (first cell, rest of the row)."""
    lines = iter(text.splitlines())
    for line in lines:
        if re.match(r"^\|\s*topic\s*\|", line):
            break
    else:
        raise AssertionError("no topic table in docs/process-contract.md")
    next(lines)  # the |---| line
    rows = []
    for line in lines:
        if not line.startswith("|"):
            break
        first, _, rest = line.strip("|").partition("|")
        rows.append((first.strip(), rest))
    return rows


def _topic_rows() -> dict[str, str]:
    return {first.strip("`"): rest for first, rest in _topic_table(CONTRACT.read_text())}


def _constants() -> set[str]:
    return {value for name, value in vars(v).items() if name.isupper() and isinstance(value, str)}


def test_every_topic_of_the_contract_is_a_builtin_and_back() -> None:
    documented = [first for first, _ in _topic_table(CONTRACT.read_text())]
    assert sorted(documented) == sorted(f"`{topic}`" for topic in v.BUILTIN_TOPICS)


def test_every_variable_the_contract_names_for_a_topic_is_a_constant() -> None:
    known = _constants() | set(v.METRIC_NAMES)
    for topic, row in _topic_rows().items():
        names = set(re.findall(r"`([A-Za-z_]+)`", row))
        words = {n for n in names if n.isupper() or n in v.METRIC_NAMES}
        missing = words - known
        assert not missing, f"{topic}: {sorted(missing)} missing from workers/variables.py"


def test_error_codes_match() -> None:
    text = CONTRACT.read_text()
    documented = set(re.findall(r"`(MLC_[A-Z_]+)`", text.split("Error codes:")[1].split("\n\n")[0]))
    assert documented == set(v.ERROR_CODES)
    assert "MLC_ERROR_CODE" in text and "MLC_ERROR_MESSAGE" in text
