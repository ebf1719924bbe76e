import datetime as dt

from modelops_mlc.engine.variables import from_engine, to_engine


def test_python_values_get_camunda_types() -> None:
    typed = to_engine({"b": True, "i": 3, "l": 2**40, "f": 0.5, "s": "x", "n": None, "j": {"a": [1, 2]}})
    assert typed["b"] == {"value": True, "type": "Boolean"}
    assert typed["i"] == {"value": 3, "type": "Integer"}
    assert typed["l"] == {"value": 2**40, "type": "Long"}
    assert typed["f"] == {"value": 0.5, "type": "Double"}
    assert typed["s"] == {"value": "x", "type": "String"}
    assert typed["n"] == {"value": None, "type": "Null"}
    assert typed["j"] == {"value": '{"a": [1, 2]}', "type": "Json"}


def test_dates_carry_a_zone() -> None:
    typed = to_engine({"d": dt.datetime(2026, 1, 2, 3, 4, 5, 678000)})
    assert typed["d"] == {"value": "2026-01-02T03:04:05.678+0000", "type": "Date"}


def test_round_trip_through_engine_shape() -> None:
    values = {"b": False, "i": 7, "f": 1.25, "s": "y", "j": {"k": "v"}, "n": None}
    assert from_engine(to_engine(values)) == values
