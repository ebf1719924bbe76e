"""The SDK's small shared helpers: one line of an error, plain JSON data, quiet MLflow."""

from __future__ import annotations

import datetime as dt
import enum
import json
import logging
import math
import threading
import warnings

import numpy as np
import pandas as pd

from modelops_mlc.errors import MlcError, first_line
from modelops_mlc.registry.quiet import quiet_mlflow
from modelops_mlc.serialize import json_safe


def test_first_line_of_exceptions_and_text() -> None:
    assert first_line(ValueError("\n  bad value  \nTraceback ...")) == "bad value"
    assert first_line(KeyError()) == "KeyError"
    assert first_line(MlcError("one\ntwo")) == "one"
    assert first_line(KeyError("x"), typed=True) == "KeyError: 'x'"
    assert first_line(AssertionError(), typed=True) == "AssertionError"
    assert first_line("") == ""
    assert first_line("first\nsecond") == "first"


def test_first_line_limit_counts_the_ellipsis() -> None:
    assert first_line("abcdefghij", 8) == "abcde..."
    assert first_line("abc", 8) == "abc"
    assert len(first_line(ValueError("x" * 1000), 400, typed=True)) == 400


class _Colour(enum.Enum):
    RED = "red"


def test_json_safe_gives_what_a_strict_parser_reads() -> None:
    value = {
        "nan": math.nan, "inf": -math.inf, "np_float": np.float64(2.5), "np_nan": np.float32("nan"),
        "np_int": np.int64(4), "np_bool": np.bool_(True), "array": np.array([[1.0, np.nan]]),
        "date": dt.date(2020, 1, 2), "at": dt.datetime(2020, 1, 2, 3, 4, tzinfo=dt.timezone.utc),
        "nat": pd.NaT, "dt64": np.datetime64("2020-01-01"), "enum": _Colour.RED,
        "tuple": (1, "x"), 7: {np.int64(2): 3}, "other": object,
    }
    safe = json_safe(value)
    assert safe == {
        "nan": None, "inf": None, "np_float": 2.5, "np_nan": None, "np_int": 4, "np_bool": True,
        "array": [[1.0, None]], "date": "2020-01-02", "at": "2020-01-02T03:04:00+00:00", "nat": None,
        "dt64": "2020-01-01", "enum": "red", "tuple": [1, "x"], "7": {"2": 3}, "other": "<class 'object'>",
    }
    assert type(safe["np_float"]) is float and type(safe["np_int"]) is int
    json.dumps(safe, allow_nan=False)
    assert json.dumps({"n": np.int64(3)}, default=json_safe) == '{"n": 3}'


def test_quiet_mlflow_restores_levels_and_filters_after_overlapping_blocks() -> None:
    logger = logging.getLogger("mlflow")
    before_level, before_filters = logger.level, list(warnings.filters)
    inside, leave = threading.Event(), threading.Event()

    def other_thread() -> None:
        with quiet_mlflow():
            inside.set()
            leave.wait(5)

    thread = threading.Thread(target=other_thread)
    with quiet_mlflow():
        thread.start()
        inside.wait(5)
        assert logger.level == logging.ERROR
    assert logger.level == logging.ERROR  # the other block is still open
    leave.set()
    thread.join(5)
    assert logger.level == before_level and warnings.filters == before_filters
