"""The model server's request bodies, fuzzed: a real `mlc runtime serve` on loopback hosting real
MLflow models answers whatever it is sent with a 2xx or a 4xx that says what is wrong, never a
5xx, and logs no traceback.

The server is Starlette without an OpenAPI document, so there is no schema for schemathesis to
work from: the bodies are drawn by hypothesis strategies shaped after the protocols.
"""

from __future__ import annotations

import json
import math

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.fuzz.conftest import examples

pytestmark = pytest.mark.slow

# -- strategies -------------------------------------------------------------------------------
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12),
    st.sampled_from(["a", "b", "1.5", "", "NaN", "inf", "1e999", "2024-01-01"]),
)
json_values = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner, max_size=5),
    max_leaves=25,
)
names = st.one_of(st.text(max_size=10), st.sampled_from(["x", "kind", "count", "score", "mean radius"]))
shapes = st.one_of(st.lists(st.integers(min_value=-2, max_value=12), max_size=4), json_values)
datatypes = st.one_of(st.sampled_from(["FP64", "FP32", "INT64", "BOOL", "BYTES", "fp64", "UINT8", "FP16", "STRING"]),
                      json_values)


def _rows(cells: st.SearchStrategy) -> st.SearchStrategy:
    return st.lists(st.lists(cells, max_size=10), max_size=6)


@st.composite
def v2_bodies(draw: st.DrawFn) -> object:
    def tensor() -> dict:
        t = {"name": draw(names), "shape": draw(shapes), "datatype": draw(datatypes),
             "data": draw(st.one_of(_rows(scalars), st.lists(scalars, max_size=20), json_values))}
        for key in draw(st.sets(st.sampled_from(sorted(t)), max_size=2)):
            del t[key]
        return t

    body: dict = {"inputs": [tensor() for _ in range(draw(st.integers(0, 4)))]}
    if draw(st.booleans()):
        body["id"] = draw(st.one_of(st.text(max_size=300), json_values))
    if draw(st.booleans()):
        body["parameters"] = draw(json_values)
    return draw(st.one_of(st.just(body), json_values))


@st.composite
def invocation_bodies(draw: st.DrawFn, columns: list[str]) -> object:
    cols = st.one_of(st.lists(st.sampled_from(columns), max_size=len(columns) + 1), st.lists(names, max_size=4),
                     json_values)
    cells = st.one_of(scalars, st.floats(-1e3, 1e3))
    key = draw(st.sampled_from(["dataframe_split", "dataframe_records", "instances", "inputs"]))
    if key == "dataframe_split":
        value = {"columns": draw(cols), "data": draw(st.one_of(_rows(cells), json_values))}
        if draw(st.booleans()):
            value["index"] = draw(json_values)
    elif key == "dataframe_records" or draw(st.booleans()):
        value = draw(st.lists(st.dictionaries(st.one_of(st.sampled_from(columns), names), cells, max_size=6),
                              max_size=5))
    else:
        value = draw(st.one_of(_rows(cells), st.dictionaries(st.one_of(st.sampled_from(columns), names),
                                                             st.lists(cells, max_size=5), max_size=6), json_values))
    body = {key: value}
    if draw(st.booleans()):
        body[draw(st.sampled_from(["params", "instances", "extra"]))] = draw(json_values)
    return draw(st.one_of(st.just(body), json_values))


def _encode(body: object) -> bytes:
    """JSON as Python writes it: NaN and Infinity included (invalid JSON the server must refuse)."""
    return json.dumps(body, allow_nan=True).encode()


csv_bodies = st.one_of(
    st.binary(max_size=200),
    st.text(max_size=300).map(str.encode),
    st.builds(lambda header, rows: (",".join(header) + "\n" + "\n".join(",".join(r) for r in rows)).encode(),
              st.lists(names, max_size=10), st.lists(st.lists(st.sampled_from(["1", "x", "", "2.5", '"', "nan"]),
                                                              max_size=10), max_size=5)),
)


# -- the checks -------------------------------------------------------------------------------
def _check(resp: httpx.Response) -> None:
    assert resp.status_code < 500, f"{resp.status_code}: {resp.text[:500]}"
    if resp.status_code >= 400:
        error = resp.json()["error"]
        assert isinstance(error, str) and error.strip() and "Traceback" not in error
        assert "\n" not in error, error


@pytest.fixture(scope="module")
def http(served):
    with httpx.Client(base_url=served.runtime.endpoint, timeout=60) as client:
        yield client
    log = served.log_text()
    assert "Traceback" not in log, log[-5000:]


V2_PATHS = ["/v2/models/bc/infer", "/v2/models/bc/versions/1/infer", "/v2/models/mixed/infer",
            "/v2/models/mixed/versions/1/infer", "/v2/models/bc/versions/9/infer", "/v2/models/none/infer"]


@examples(40)
@given(path=st.sampled_from(V2_PATHS), body=v2_bodies())
def test_v2_infer_bodies(http, path, body):
    _check(http.post(path, content=_encode(body), headers={"content-type": "application/json"}))


@examples(40)
@given(model=st.sampled_from(["bc", "mixed"]), data=st.data())
def test_invocations_json_bodies(http, served, model, data):
    columns = served.numeric_columns if model == "bc" else served.mixed_columns
    body = data.draw(invocation_bodies(columns))
    _check(http.post("/invocations", params={"model": model}, content=_encode(body),
                     headers={"content-type": "application/json"}))


@examples(25)
@given(model=st.sampled_from(["bc", "mixed"]), body=csv_bodies)
def test_invocations_csv_bodies(http, model, body):
    _check(http.post("/invocations", params={"model": model}, content=body, headers={"content-type": "text/csv"}))


@examples(25)
@given(path=st.sampled_from(V2_PATHS + ["/invocations?model=bc", "/invocations?model=mixed", "/invocations",
                                        "/v2/models/bc/feedback"]),
       body=st.binary(max_size=300), ctype=st.sampled_from(["application/json", "text/csv", "text/plain", "",
                                                            "application/json; charset=latin-1"]))
def test_raw_bytes_and_content_types(http, path, body, ctype):
    _check(http.post(path, content=body, headers={"content-type": ctype} if ctype else {}))


def test_the_valid_forms_still_answer(http, served):
    """The fuzzing above proves nothing if the server refuses everything: each format predicts."""
    X = served.stack.X.head(3)
    rows = X.to_numpy().tolist()
    v2 = http.post("/v2/models/bc/infer", json={"inputs": [
        {"name": "x", "shape": [3, len(served.numeric_columns)], "datatype": "FP64", "data": sum(rows, [])}]})
    assert v2.status_code == 200 and len(v2.json()["outputs"][0]["data"]) == 3
    forms = [
        {"dataframe_split": {"columns": served.numeric_columns, "data": rows}},
        {"dataframe_records": X.to_dict(orient="records")},
        {"instances": rows},
        {"inputs": X.to_dict(orient="list")},
    ]
    for body in forms:
        resp = http.post("/invocations", params={"model": "bc"}, json=body)
        assert resp.status_code == 200 and len(resp.json()["predictions"]) == 3, (body, resp.text)
    mixed = {"dataframe_records": [{"kind": "a", "count": 3, "score": 0.5}, {"kind": "z", "count": 1, "score": -1.0}]}
    resp = http.post("/invocations", params={"model": "mixed"}, json=mixed)
    assert resp.status_code == 200 and len(resp.json()["predictions"]) == 2, resp.text
    csv = X.to_csv(index=False).encode()
    resp = http.post("/invocations", params={"model": "bc"}, content=csv, headers={"content-type": "text/csv"})
    assert resp.status_code == 200 and len(resp.json()["predictions"]) == 3, resp.text
    assert not math.isnan(float(resp.json()["predictions"][0]))
