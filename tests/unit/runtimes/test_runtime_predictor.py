"""Request decoding and signature checks of the model server's predictor (no MLflow, no HTTP)."""

from __future__ import annotations

import numpy as np
import pytest

from modelops_mlc.runtimes.predictor import Batch, InputError, parse_invocations, parse_v2


def test_fast_path_is_taken_and_equals_model_predict(make_predictor, small_model):
    X, model, cols = small_model
    pred = make_predictor()
    assert pred.fast
    rows = X.head(20)
    expected = model.predict(rows)
    got = pred.predict(Batch(columns=cols, rows=rows.to_numpy().tolist()))
    assert np.array_equal(got, expected)
    # column order in the request does not matter when the columns are named
    shuffled = list(reversed(cols))
    got = pred.predict(Batch(columns=shuffled, rows=rows[shuffled].to_numpy().tolist()))
    assert np.array_equal(got, expected)
    got = pred.predict(Batch(cols={c: rows[c].tolist() for c in cols}))
    assert np.array_equal(got, expected)


def test_pyfunc_path_gives_the_same(make_predictor, small_model):
    X, model, cols = small_model
    pred = make_predictor()
    pred.fast = False
    rows = X.head(10)
    assert np.array_equal(pred.predict(Batch(columns=cols, rows=rows.to_numpy().tolist())), model.predict(rows))


def test_v2_single_tensor_and_named_columns(small_model):
    X, _, cols = small_model
    rows = X.head(4).to_numpy()
    flat = {"inputs": [{"name": "x", "shape": [4, 6], "datatype": "FP64", "data": rows.ravel().tolist()}]}
    batch = parse_v2(flat, cols)
    assert isinstance(batch.rows, np.ndarray) and batch.rows.shape == (4, 6)
    nested = {"inputs": [{"name": "x", "shape": [4, 6], "datatype": "FP64", "data": rows.tolist()}]}
    assert np.array_equal(parse_v2(nested, cols).rows, rows)
    named = {"inputs": [{"name": c, "shape": [4], "datatype": "FP64", "data": X[c].head(4).tolist()} for c in cols]}
    assert parse_v2(named, cols).cols == {c: X[c].head(4).tolist() for c in cols}


@pytest.mark.parametrize(
    "body, fragment",
    [
        ([], "JSON object"),
        ({}, "non-empty 'inputs'"),
        ({"inputs": [{"name": "x", "shape": [2, 6], "datatype": "FP64", "data": [1, 2, 3]}]}, "needs 12 values"),
        ({"inputs": [{"name": "x", "shape": [1, 6], "datatype": "FLOAT99", "data": [1] * 6}]}, "unknown datatype"),
        ({"inputs": [{"name": "x", "shape": "1x6", "datatype": "FP64", "data": [1] * 6}]}, "shape"),
        ({"inputs": [{"name": "x", "shape": [1, 6], "datatype": "FP64", "data": ["a"] * 6}]}, "non-numeric"),
        ({"inputs": ["x"]}, "must be an object"),
        ({"inputs": [{"name": "a", "shape": [2], "datatype": "FP64", "data": [1, 2]},
                     {"name": "b", "shape": [3], "datatype": "FP64", "data": [1, 2, 3]}]}, "different lengths"),
    ],
)
def test_v2_bad_requests(body, fragment, small_model):
    with pytest.raises(InputError) as info:
        parse_v2(body, small_model[2])
    assert info.value.status == 400
    assert fragment in info.value.reason


def test_invocations_formats(small_model):
    X, _, cols = small_model
    rows = X.head(3)
    split = parse_invocations({"dataframe_split": {"columns": cols, "data": rows.to_numpy().tolist()}}, cols)
    assert split.columns == cols and len(split) == 3
    records = parse_invocations({"dataframe_records": rows.to_dict(orient="records")}, cols)
    assert records.columns == cols and len(records) == 3
    inputs_cols = parse_invocations({"inputs": rows.to_dict(orient="list")}, cols)
    assert inputs_cols.cols is not None and len(inputs_cols) == 3
    inputs_rows = parse_invocations({"inputs": rows.to_numpy().tolist()}, cols)
    assert inputs_rows.columns is None and len(inputs_rows) == 3
    instances = parse_invocations({"instances": rows.to_dict(orient="records")}, cols)
    assert instances.columns == cols


@pytest.mark.parametrize(
    "body, fragment",
    [
        ({"rows": []}, "exactly one of"),
        ({"dataframe_split": {}, "inputs": []}, "exactly one of"),
        ({"dataframe_split": [1, 2]}, "dataframe_split must be an object"),
        ({"dataframe_records": {"a": 1}}, "list of objects"),
        ({"inputs": {"a": [1, 2], "b": [1]}}, "different lengths"),
        ("text", "JSON object"),
    ],
)
def test_invocations_bad_requests(body, fragment, small_model):
    with pytest.raises(InputError) as info:
        parse_invocations(body, small_model[2])
    assert fragment in info.value.reason


def test_signature_checks_name_the_problem(make_predictor, small_model):
    X, _, cols = small_model
    pred = make_predictor(int_column=True)
    assert pred.fast
    row = X.head(1).to_numpy().tolist()[0]
    row[0] = round(row[0])
    with pytest.raises(InputError, match="missing input column"):
        pred.predict(Batch(columns=cols[:3], rows=[row[:3]]))
    with pytest.raises(InputError, match="expected 6"):
        pred.predict(Batch(columns=None, rows=[row[:4]]))
    bad = list(row)
    bad[2] = "abc"
    with pytest.raises(InputError, match=f"column '{cols[2]}'.*'abc'"):
        pred.predict(Batch(columns=cols, rows=[bad]))
    with pytest.raises(InputError, match="row 1 has 5 values"):
        pred.predict(Batch(columns=cols, rows=[row, row[:5]]))
    with pytest.raises(InputError, match="non-integer"):
        pred.predict(Batch(columns=cols, rows=[[0.5, *row[1:]]]))
    with pytest.raises(InputError, match="no rows"):
        pred.predict(Batch(columns=cols, rows=[]))
    nulls = list(row)
    nulls[0] = None
    with pytest.raises(InputError, match=f"column '{cols[0]}': the value in row 0 is null"):
        pred.predict(Batch(columns=cols, rows=[nulls]))


def test_no_fast_path_when_matrix_and_pyfunc_disagree(small_model):
    from modelops_mlc.runtimes.modelinfo import ColumnSpec
    from modelops_mlc.runtimes.predictor import Predictor

    X, model, cols = small_model

    class Disagreeing:
        def get_raw_model(self):
            return model

        def predict(self, frame):
            return 1 - model.predict(frame[cols])

    example = {"columns": cols, "data": X.head(3).to_numpy().tolist()}
    pred = Predictor("m", "1", Disagreeing(), [ColumnSpec(c, "double") for c in cols], example, ["sklearn"])
    assert not pred.fast
