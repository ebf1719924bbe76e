"""A loaded model version and the request codecs of the model server.

Requests (KServe V2 tensors, MLflow ``dataframe_split`` / ``dataframe_records`` / ``inputs`` /
``instances``) are decoded into a :class:`Batch`, checked against the signature and predicted.
For scikit-learn models with numeric signatures the hot path feeds a float64 matrix straight to
the estimator (checked against the pyfunc path on the input example at load time); everything
else goes through ``mlflow.pyfunc`` with a pandas frame and MLflow's schema enforcement.

This module is imported by the server only; it imports numpy (and MLflow when loading).
"""

from __future__ import annotations

import json
import logging
import math
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from modelops_mlc.errors import first_line
from modelops_mlc.registry.imports import import_mlflow_stack
from modelops_mlc.registry.quiet import quiet_mlflow
from modelops_mlc.runtimes.modelinfo import NUMERIC_TYPES, ColumnSpec, normalise_example
from modelops_mlc.serialize import json_safe

if TYPE_CHECKING:
    from modelops_mlc.config import Settings

__all__ = ["Batch", "InputError", "Predictor", "dumps", "loads", "parse_invocations", "parse_v2"]

log = logging.getLogger(__name__)

try:  # orjson is several times faster at both ends of the hot path
    import orjson as _orjson
except ImportError:  # pragma: no cover - optional
    _orjson = None


class InputError(Exception):
    """A request the model cannot take: answered with ``status`` (4xx) and ``reason``."""

    def __init__(self, reason: str, status: int = 400) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


def loads(body: bytes) -> Any:
    if not body:
        raise InputError("empty request body")
    try:
        return _orjson.loads(body) if _orjson else json.loads(body)
    except ValueError as exc:
        raise InputError(f"request body is not valid JSON: {first_line(exc)}") from None


def dumps(obj: Any) -> bytes:
    if _orjson:
        return _orjson.dumps(obj, default=json_safe, option=_orjson.OPT_SERIALIZE_NUMPY)
    return json.dumps(obj, default=json_safe).encode()


@dataclass
class Batch:
    """Decoded request rows: row-major ``rows`` (with ``columns`` names or positional) or ``cols``."""

    columns: list[str] | None = None
    rows: Any = None
    cols: dict[str, Any] | None = None

    def __len__(self) -> int:
        if self.cols is not None:
            return len(next(iter(self.cols.values()))) if self.cols else 0
        return len(self.rows) if self.rows is not None else 0


# -- request decoding ---------------------------------------------------------------------------
_V2_NUMERIC = {"BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64", "FP16", "FP32", "FP64"}


def _flat(data: list[Any]) -> list[Any]:
    """V2 data may be nested row-major lists; flatten them in order."""
    if not data or not isinstance(data[0], list):
        return data
    out: list[Any] = []

    def walk(items: list[Any]) -> None:
        for item in items:
            if isinstance(item, list):
                walk(item)
            else:
                out.append(item)

    walk(data)
    return out


def _tensor(inp: Any, i: int) -> tuple[str, list[int], str, Any]:
    if not isinstance(inp, dict):
        raise InputError(f"inputs[{i}] must be an object with name, shape, datatype and data")
    name, shape, datatype, data = inp.get("name"), inp.get("shape"), inp.get("datatype"), inp.get("data")
    if not isinstance(name, str) or not name:
        raise InputError(f"inputs[{i}].name must be a non-empty string")
    if not isinstance(shape, list) or not shape or not all(isinstance(d, int) and d >= 0 for d in shape):
        raise InputError(f"input {name!r}: shape must be a list of non-negative integers")
    if not isinstance(datatype, str) or (datatype.upper() not in _V2_NUMERIC and datatype.upper() != "BYTES"):
        raise InputError(f"input {name!r}: unknown datatype {datatype!r}")
    if not isinstance(data, list):
        raise InputError(f"input {name!r}: data must be a list")
    if len(shape) > 2:
        raise InputError(f"input {name!r}: shape {shape} has more than 2 dimensions")
    return name, shape, datatype.upper(), data


def parse_v2(body: Any, columns: list[str] | None) -> Batch:
    """Decode a KServe V2 (Open Inference Protocol) infer request."""
    if not isinstance(body, dict):
        raise InputError("V2 infer request must be a JSON object with 'inputs'")
    inputs = body.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise InputError("V2 infer request needs a non-empty 'inputs' list")
    tensors = [_tensor(inp, i) for i, inp in enumerate(inputs)]
    if len(tensors) == 1:
        name, shape, datatype, data = tensors[0]
        flat = _flat(data)
        expected = math.prod(shape)
        if len(flat) != expected:
            raise InputError(f"input {name!r}: shape {shape} needs {expected} values, got {len(flat)}")
        is_column = columns is not None and name in columns and (len(shape) == 1 or shape[1] == 1)
        if not is_column:
            if len(shape) == 1:
                if columns is not None and len(columns) == 1:
                    return Batch(cols={columns[0]: flat})
                shape = [1, shape[0]]  # one row
            if datatype != "BYTES":
                try:
                    arr = np.asarray(flat, dtype=np.float64).reshape(shape)
                except (ValueError, TypeError):
                    raise InputError(f"input {name!r}: datatype {datatype} but data holds non-numeric values") from None
                return Batch(columns=None, rows=arr)
            return Batch(columns=None, rows=[flat[r * shape[1] : (r + 1) * shape[1]] for r in range(shape[0])])
    cols: dict[str, Any] = {}
    n = None
    for name, shape, _datatype, data in tensors:
        if len(shape) == 2 and shape[1] != 1:
            raise InputError(f"input {name!r}: a named column must have shape [n] or [n, 1], got {shape}")
        flat = _flat(data)
        if len(flat) != shape[0]:
            raise InputError(f"input {name!r}: shape {shape} needs {shape[0]} values, got {len(flat)}")
        if n is not None and shape[0] != n:
            raise InputError(f"inputs have different lengths ({n} and {shape[0]} for {name!r})")
        n = shape[0]
        cols[name] = flat
    return Batch(cols=cols)


def _records(records: list[Any], what: str) -> Batch:
    names: list[str] = []
    seen: set[str] = set()
    for i, rec in enumerate(records):
        if not isinstance(rec, dict):
            raise InputError(f"{what}[{i}] must be an object of column values")
        for k in rec:
            if k not in seen:
                seen.add(k)
                names.append(k)
    return Batch(columns=names, rows=[[rec.get(c) for c in names] for rec in records])


_FORMATS = ("dataframe_split", "dataframe_records", "inputs", "instances")


def parse_invocations(body: Any, columns: list[str] | None) -> Batch:
    """Decode an MLflow scoring-protocol JSON body (``POST /invocations``)."""
    if not isinstance(body, dict):
        raise InputError(
            "request must be a JSON object with one of the keys dataframe_split, dataframe_records, inputs, instances"
        )
    keys = [k for k in _FORMATS if k in body]
    if len(keys) != 1:
        raise InputError(
            "request must have exactly one of the keys dataframe_split, dataframe_records, inputs, instances; "
            f"got {sorted(body.keys())}"
        )
    key = keys[0]
    value = body[key]
    if key == "dataframe_split":
        if not isinstance(value, dict) or not isinstance(value.get("data"), list):
            raise InputError("dataframe_split must be an object with 'data' (a list of rows) and optional 'columns'")
        cols = value.get("columns")
        if cols is not None and (not isinstance(cols, list) or not all(isinstance(c, str) for c in cols)):
            raise InputError("dataframe_split.columns must be a list of strings")
        return Batch(columns=cols, rows=value["data"])
    if key == "dataframe_records":
        if not isinstance(value, list):
            raise InputError("dataframe_records must be a list of objects")
        return _records(value, key)
    if isinstance(value, dict):
        if not all(isinstance(v, list) for v in value.values()):
            raise InputError(f"{key} as an object must map column names to lists of values")
        lengths = {len(v) for v in value.values()}
        if len(lengths) > 1:
            raise InputError(f"{key}: columns have different lengths {sorted(lengths)}")
        return Batch(cols=value)
    if not isinstance(value, list):
        raise InputError(f"{key} must be a list of rows or an object of columns")
    if value and isinstance(value[0], dict):
        return _records(value, key)
    if value and not isinstance(value[0], list):
        if columns is not None and len(columns) == 1:
            return Batch(cols={columns[0]: value})
        return Batch(columns=None, rows=[value])
    return Batch(columns=None, rows=value)


# -- the loaded model ---------------------------------------------------------------------------
def _v2_datatype(arr: np.ndarray) -> str:
    kind, size = arr.dtype.kind, arr.dtype.itemsize
    if kind == "f":
        return {2: "FP16", 4: "FP32"}.get(size, "FP64")
    if kind == "i":
        return {1: "INT8", 2: "INT16", 4: "INT32"}.get(size, "INT64")
    if kind == "u":
        return {1: "UINT8", 2: "UINT16", 4: "UINT32"}.get(size, "UINT64")
    if kind == "b":
        return "BOOL"
    return "BYTES"


class Predictor:
    """One model version loaded in the server, with its signature and prediction paths."""

    def __init__(self, name: str, version: str, pyfunc_model: Any, inputs: list[ColumnSpec] | None,
                 example: dict[str, Any] | None = None, flavors: list[str] | None = None) -> None:
        self.name = name
        self.version = version
        self.pyfunc = pyfunc_model
        self.inputs = inputs
        self.columns: list[str] | None = [c.name for c in inputs] if inputs else None  # type: ignore[misc]
        self.example = example
        self.flavors = flavors or []
        self._col_index = {c: i for i, c in enumerate(self.columns or [])}
        self._int_idx = [i for i, c in enumerate(inputs or []) if c.type in ("long", "integer")]
        self._bool_idx = [i for i, c in enumerate(inputs or []) if c.type == "boolean"]
        self.raw: Any = None
        self.fast = False
        self.batchable = False  # several requests' rows may share one model call (fast path only)
        self._try_fast_path()

    # loading ---------------------------------------------------------------------------------
    @classmethod
    def load(cls, settings: "Settings", name: str, version: str) -> "Predictor":
        """Download and load ``models:/name/version`` (raises on any failure)."""
        import_mlflow_stack()
        import mlflow.artifacts
        import mlflow.pyfunc
        from mlflow.models import Model

        from modelops_mlc.registry import Registry
        from modelops_mlc.registry.client import signature_dict
        from modelops_mlc.runtimes.modelinfo import signature_columns

        with Registry(settings).mlflow_context():
            local = mlflow.artifacts.download_artifacts(f"models:/{name}/{version}")
        meta = Model.load(local)
        inputs = signature_columns(signature_dict(meta.signature))
        example = None
        try:
            raw_example = meta.load_input_example(local)
            if raw_example is not None:
                example = _example_from_object(raw_example, inputs)
        except Exception as exc:
            log.debug("cannot read the input example of %s/%s: %s", name, version, exc)
        with quiet_mlflow():
            model = mlflow.pyfunc.load_model(local)
        return cls(name, str(version), model, inputs, example, sorted(meta.flavors))

    def _try_fast_path(self) -> None:
        if "sklearn" not in self.flavors:
            return
        if self.inputs is not None and not all(c.type in NUMERIC_TYPES for c in self.inputs):
            return
        try:
            raw = self.pyfunc.get_raw_model()
        except Exception:
            return
        if not hasattr(raw, "predict"):
            return
        # the matrix has no column names by design; sklearn would warn on every request
        warnings.filterwarnings("ignore", message="X does not have valid feature names")
        if self.example and self.example.get("data"):
            # prove the matrix path gives what the pyfunc path gives on the example
            try:
                batch = Batch(columns=self.example.get("columns"), rows=self.example["data"])
                fast = np.asarray(raw.predict(self._matrix(batch)))
                slow = np.asarray(self._predict_pyfunc(batch))
                if fast.shape != slow.shape or not np.array_equal(fast, slow):
                    log.info("%s/%s: matrix path differs from pyfunc on the example; using pyfunc", self.name, self.version)
                    return
            except Exception as exc:
                log.info("%s/%s: matrix path unavailable (%s); using pyfunc", self.name, self.version, exc)
                return
        from sklearn import config_context

        self._sklearn_config = config_context
        self.raw = raw
        self.fast = True
        self.batchable = self._rows_independent()

    def _rows_independent(self) -> bool:
        """Whether stacking requests' rows into one model call gives each row what it gets alone (the
        micro-batcher relies on it); shown on the example, twice over, against its rows one by one."""
        if not (self.example and self.example.get("data")):
            return False
        try:
            one = self.matrix(Batch(columns=self.example.get("columns"), rows=self.example["data"]))
            alone = [np.asarray(self.predict_matrix(one[i:i + 1])) for i in range(len(one))]
            stacked = np.asarray(self.predict_matrix(np.vstack([one, one])))
        except Exception as exc:
            log.info("%s/%s: requests are not batched (%s)", self.name, self.version, first_line(exc))
            return False
        expected = np.concatenate(alone * 2)
        if stacked.shape != expected.shape or not np.array_equal(stacked, expected):
            log.info("%s/%s: rows predicted together differ from rows alone; requests are not batched",
                     self.name, self.version)
            return False
        return True

    # prediction ------------------------------------------------------------------------------
    def predict(self, batch: Batch) -> Any:
        """Predictions for ``batch``; InputError for anything the caller got wrong."""
        if self.fast:
            return self.predict_matrix(self.matrix(batch))  # matrix() refuses an empty request
        if len(batch) == 0:
            raise InputError("the request holds no rows")
        return self._predict_pyfunc(batch)

    def matrix(self, batch: Batch) -> np.ndarray:
        """The fast path's checked input matrix of ``batch`` (InputError for what the caller got wrong)."""
        if len(batch) == 0:
            raise InputError("the request holds no rows")
        return self._matrix(batch)

    def predict_matrix(self, matrix: np.ndarray) -> Any:
        """The fast path: the raw model on a matrix from ``matrix()`` (or several stacked)."""
        try:
            with self._sklearn_config(assume_finite=True):  # _matrix rejected null, NaN and inf: no 2nd scan
                return self.raw.predict(matrix)
        except (ValueError, TypeError) as exc:
            raise InputError(f"model rejected the input: {first_line(exc)}", 422) from None

    def _predict_pyfunc(self, batch: Batch) -> Any:
        import pandas as pd
        from mlflow.exceptions import MlflowException

        try:
            if batch.cols is not None:
                frame = pd.DataFrame(batch.cols)
            else:
                rows = batch.rows
                names = batch.columns or self.columns
                if isinstance(rows, np.ndarray) or (rows and isinstance(rows[0], list)):
                    width = rows.shape[1] if isinstance(rows, np.ndarray) else len(rows[0])
                    if names is not None and width != len(names):
                        raise InputError(f"rows have {width} values, expected {len(names)} ({', '.join(names)})")
                frame = pd.DataFrame(rows, columns=names)
        except InputError:
            raise
        except (ValueError, TypeError) as exc:
            raise InputError(f"cannot build a frame from the request: {first_line(exc)}") from None
        try:
            return self.pyfunc.predict(frame)
        except MlflowException as exc:  # a schema failure wraps the reason, after a dump of the data
            raise InputError(first_line(exc.__context__ or exc, 400)) from None
        except (ValueError, TypeError, KeyError) as exc:
            raise InputError(f"model rejected the input: {first_line(exc, 400, typed=True)}", 422) from None

    def _matrix(self, batch: Batch) -> np.ndarray:
        cols = self.columns
        if batch.cols is not None:
            if cols is None:
                raise InputError("this model has no signature: send rows, not named columns")
            missing = [c for c in cols if c not in batch.cols]
            if missing:
                raise InputError(f"missing input column(s): {', '.join(missing)}")
            arrays = []
            for c in cols:
                try:
                    arrays.append(np.asarray(batch.cols[c], dtype=np.float64))
                except (ValueError, TypeError):
                    raise InputError(self._bad_value(c, batch.cols[c])) from None
                if arrays[-1].ndim != 1:
                    raise InputError(f"column {c!r} must be a flat list of values")
            if len({a.shape[0] for a in arrays}) > 1:
                raise InputError("input columns have different lengths")
            arr = np.column_stack(arrays)
        else:
            rows = batch.rows
            if isinstance(rows, np.ndarray):
                arr = rows
            else:
                if not isinstance(rows, list):
                    raise InputError("rows must be a list of lists")
                try:
                    arr = np.asarray(rows, dtype=np.float64)
                except (ValueError, TypeError):
                    raise InputError(self._diagnose(rows, batch.columns)) from None
            if arr.ndim == 1:
                arr = arr.reshape(1, -1)
            if arr.ndim != 2:
                raise InputError(f"rows must be a 2-dimensional list, got {arr.ndim} dimensions")
            if cols is not None:
                if batch.columns is not None and batch.columns != cols:
                    if arr.shape[1] != len(batch.columns):
                        raise InputError(f"rows have {arr.shape[1]} values but {len(batch.columns)} columns are named")
                    given = {c: i for i, c in enumerate(batch.columns)}
                    missing = [c for c in cols if c not in given]
                    if missing:
                        raise InputError(f"missing input column(s): {', '.join(missing)}")
                    arr = arr[:, [given[c] for c in cols]]
                elif arr.shape[1] != len(cols):
                    raise InputError(f"rows have {arr.shape[1]} values, expected {len(cols)} ({', '.join(cols)})")
        finite = np.isfinite(arr)
        if not finite.all():
            j = int(np.flatnonzero(~finite.all(axis=0))[0])
            i = int(np.flatnonzero(~finite[:, j])[0])
            label = cols[j] if cols is not None else f"#{j}"
            raise InputError(f"column {label!r}: the value in row {i} is null, NaN or infinite")
        if self._int_idx:
            sub = arr[:, self._int_idx]
            bad = np.flatnonzero(np.any(sub != np.floor(sub), axis=0))
            if bad.size:
                c = self.inputs[self._int_idx[bad[0]]]  # type: ignore[index]
                raise InputError(f"column {c.name!r} ({c.type}) holds non-integer values")
        if self._bool_idx:
            sub = arr[:, self._bool_idx]
            bad = np.flatnonzero(np.any((sub != 0) & (sub != 1), axis=0))
            if bad.size:
                c = self.inputs[self._bool_idx[bad[0]]]  # type: ignore[index]
                raise InputError(f"column {c.name!r} (boolean) holds non-boolean values")
        return arr

    def _bad_value(self, column: str, values: Any) -> str:
        for i, v in enumerate(values if isinstance(values, list) else [values]):
            try:
                float(v)
            except (TypeError, ValueError):
                kind = self.inputs[self._col_index[column]].type if self.inputs else "number"
                return f"column {column!r} ({kind}): value {v!r} in row {i} is not a number"
        return f"column {column!r}: values are not numbers"

    def _diagnose(self, rows: list[Any], names: list[str] | None) -> str:
        names = names or self.columns
        width = None
        for r, row in enumerate(rows):
            if not isinstance(row, list):
                return f"row {r} is not a list of values"
            if width is None:
                width = len(row)
            elif len(row) != width:
                return f"row {r} has {len(row)} values, row 0 has {width}"
            for j, v in enumerate(row):
                if isinstance(v, (list, dict)):
                    return f"row {r}, column {j}: nested values are not allowed"
                try:
                    float(v)
                except (TypeError, ValueError):
                    col = names[j] if names and j < len(names) else f"#{j}"
                    kind = self.inputs[self._col_index[col]].type if self.inputs and col in self._col_index else "number"
                    return f"column {col!r} ({kind}): value {v!r} in row {r} is not a number"
        return "rows could not be read as numbers"

    # metadata --------------------------------------------------------------------------------
    def v2_inputs(self) -> list[dict[str, Any]]:
        if not self.inputs:
            return []
        return [
            {"name": c.name, "datatype": _MLFLOW_TO_V2.get(c.type, "BYTES"), "shape": [-1, 1]} for c in self.inputs
        ]


_MLFLOW_TO_V2 = {"double": "FP64", "float": "FP32", "long": "INT64", "integer": "INT32", "boolean": "BOOL",
                 "string": "BYTES", "binary": "BYTES", "datetime": "BYTES"}


def _example_from_object(obj: Any, inputs: list[ColumnSpec] | None) -> dict[str, Any] | None:
    """Turn an input example as MLflow loads it (DataFrame, ndarray, dict, list) into {columns, data}."""
    if hasattr(obj, "to_dict") and hasattr(obj, "columns"):  # pandas DataFrame
        return {"columns": [str(c) for c in obj.columns], "data": obj.to_numpy().tolist()}
    if isinstance(obj, np.ndarray):
        return {"columns": [c.name for c in inputs] if inputs else None, "data": np.atleast_2d(obj).tolist()}
    return normalise_example(obj, inputs)


def outputs_v2(pred: Any) -> list[dict[str, Any]]:
    """Predictions as V2 output tensors (flattened row-major data)."""
    if hasattr(pred, "columns") and hasattr(pred, "to_numpy"):  # DataFrame: one tensor per column
        return [_tensor_out(str(c), pred[c].to_numpy()) for c in pred.columns]
    if hasattr(pred, "to_numpy"):  # Series
        pred = pred.to_numpy()
    if isinstance(pred, dict):
        return [_tensor_out(str(k), np.asarray(v)) for k, v in pred.items()]
    return [_tensor_out("predict", np.asarray(pred))]


def _tensor_out(name: str, arr: np.ndarray) -> dict[str, Any]:
    datatype = _v2_datatype(arr)
    if datatype == "BYTES":
        data: Any = [str(v) for v in arr.ravel().tolist()]
    else:
        data = np.ascontiguousarray(arr.ravel()) if _orjson else arr.ravel().tolist()
    return {"name": name, "datatype": datatype, "shape": list(arr.shape), "data": data}


def predictions_json(pred: Any) -> Any:
    """Predictions the way ``mlflow models serve`` writes them (records for frames)."""
    if hasattr(pred, "columns") and hasattr(pred, "to_dict"):
        return pred.to_dict(orient="records")
    if hasattr(pred, "to_numpy"):
        pred = pred.to_numpy()
    if isinstance(pred, np.ndarray):
        if pred.dtype.kind in "fiub" and _orjson:
            return np.ascontiguousarray(pred)
        return pred.tolist()
    return pred
