"""`mlc model export --format onnx`: convert a version's scikit-learn model with skl2onnx, run the
ONNX file in onnxruntime on the version's test data, compare with the original, register the file.

Parity, stated: a classifier's labels must equal the original's on every row and its class
probabilities must be within ``Tolerance.proba_atol`` (absolute); a regressor's predictions must
satisfy ``|onnx - original| <= atol + rtol * |original|`` row by row. skl2onnx computes in float32,
which is what these bounds allow for. A file that fails the check is not registered.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

from pydantic import BaseModel

from modelops_mlc.errors import JobError, first_line
from modelops_mlc.jobs._data import read_frame, role_data
from modelops_mlc.registry.client import sha256_file
from modelops_mlc.registry.types import AssetInfo

if TYPE_CHECKING:
    import pandas as pd

    from modelops_mlc.registry import ModelVersionInfo, Registry

__all__ = ["EDGE_MODEL", "OnnxExport", "Tolerance", "export_onnx"]

EDGE_MODEL = "EDGE_MODEL"
SINGLE_INPUT = "input"


class Tolerance(BaseModel):
    """How close onnxruntime's predictions must be to the original's."""

    proba_atol: float = 1e-5
    rtol: float = 1e-5
    atol: float = 1e-4


class OnnxExport(BaseModel):
    """What an export did: the parity figures on the test data and the registered asset."""

    model_name: str
    version: int
    task_type: str
    rows: int
    data_uri: str
    inputs: list[str]
    tolerance: Tolerance
    label_mismatches: int | None = None
    max_abs_diff: float | None = None
    tolerance_used: float | None = None  # the largest difference over what its row allows (at most 1)
    opset: int
    size: int
    sha256: str
    asset: AssetInfo
    registered: bool
    skl2onnx_version: str
    onnxruntime_version: str


def _parts(est: Any, where: str) -> Iterator[tuple[str, Any]]:
    """(where, estimator) for every leaf of the pipelines, column transformers and unions in ``est``."""
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import FeatureUnion, Pipeline

    if isinstance(est, Pipeline):
        children = [(name, step) for name, step in est.steps]
    elif isinstance(est, ColumnTransformer):
        children = [(name, step) for name, step, _cols in getattr(est, "transformers_", est.transformers)]
    elif isinstance(est, FeatureUnion):
        children = list(est.transformer_list)
    else:
        yield where, est
        return
    for name, step in children:
        if step is None or isinstance(step, str):  # "passthrough", "drop"
            continue
        yield from _parts(step, f"step {name!r} of {where}" if where != "the model" else f"step {name!r}")


def _qualname(obj: Any) -> str:
    kind = type(obj)
    return f"{kind.__module__}.{kind.__qualname__}"


def _blocker(est: Any) -> str | None:
    """Where in ``est`` the first estimator without an skl2onnx converter sits, named with its class."""
    from skl2onnx._supported_operators import sklearn_operator_name_map

    for where, part in _parts(est, "the model"):
        if type(part) not in sklearn_operator_name_map:
            return f"{where} ({_qualname(part)})"
    return None


def _has_column_transformer(est: Any) -> bool:
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import FeatureUnion, Pipeline

    if isinstance(est, ColumnTransformer):
        return True
    if isinstance(est, Pipeline):
        return any(_has_column_transformer(s) for _n, s in est.steps)
    if isinstance(est, FeatureUnion):
        return any(_has_column_transformer(s) for _n, s in est.transformer_list)
    return False


def _feeds_and_types(est: Any, X: pd.DataFrame) -> tuple[list[tuple[str, Any]], dict[str, Any]]:
    """The ONNX graph's inputs and the arrays that feed them: one float tensor when every feature is
    numeric, else one column each (what column transformers select by name)."""
    import numpy as np
    import pandas as pd
    from skl2onnx.common.data_types import FloatTensorType, Int64TensorType, StringTensorType

    numeric = all(pd.api.types.is_numeric_dtype(X[c]) or pd.api.types.is_bool_dtype(X[c]) for c in X.columns)
    if numeric and not _has_column_transformer(est):
        return ([(SINGLE_INPUT, FloatTensorType([None, X.shape[1]]))],
                {SINGLE_INPUT: X.to_numpy(dtype=np.float32)})
    types: list[tuple[str, Any]] = []
    feeds: dict[str, Any] = {}
    for col in X.columns:
        name = re.sub(r"[^0-9A-Za-z_]", "_", str(col))
        series = X[col]
        if pd.api.types.is_float_dtype(series):
            types.append((name, FloatTensorType([None, 1])))
            feeds[name] = series.to_numpy(dtype=np.float32).reshape(-1, 1)
        elif pd.api.types.is_integer_dtype(series) or pd.api.types.is_bool_dtype(series):
            types.append((name, Int64TensorType([None, 1])))
            feeds[name] = series.to_numpy(dtype=np.int64).reshape(-1, 1)
        else:
            types.append((name, StringTensorType([None, 1])))
            feeds[name] = series.astype(str).to_numpy(dtype=object).reshape(-1, 1)
    return types, feeds


def _convert(info: ModelVersionInfo, est: Any, types: list[tuple[str, Any]]) -> Any:
    from skl2onnx import to_onnx
    from sklearn.base import is_classifier

    blocker = _blocker(est)
    if blocker is not None:
        raise JobError(f"cannot export {info.model_id} to ONNX: {blocker} has no ONNX converter in skl2onnx")
    try:
        # plain label and probability tensors rather than a list of {class: probability} maps
        return to_onnx(est, initial_types=types, options={"zipmap": False} if is_classifier(est) else None)
    except Exception as exc:
        named = re.search(r"type '<class '([\w.]+)'>'", str(exc))
        what = f"{named.group(1)} has no ONNX converter in skl2onnx" if named else first_line(exc)
        raise JobError(f"cannot export {info.model_id} to ONNX: {what}") from exc


def _check_parity(info: ModelVersionInfo, est: Any, X: pd.DataFrame, outputs: list[Any],
                  tol: Tolerance) -> tuple[str, dict[str, Any]]:
    """(task type, figures); JobError naming the figures when they are outside the tolerance."""
    import numpy as np
    from sklearn.base import is_classifier

    if is_classifier(est):
        expected = np.asarray(est.predict(X))
        labels = np.asarray(outputs[0]).reshape(expected.shape)
        mismatches = int((labels.astype(str) != expected.astype(str)).sum())
        figures: dict[str, Any] = {"label_mismatches": mismatches}
        problems = [f"{mismatches} of {len(X)} labels differ"] if mismatches else []
        if hasattr(est, "predict_proba") and len(outputs) > 1:
            diff = float(np.abs(np.asarray(outputs[1]) - est.predict_proba(X)).max())
            figures.update(max_abs_diff=diff, tolerance_used=diff / tol.proba_atol)
            if not diff <= tol.proba_atol:
                problems.append(f"probabilities differ by up to {diff:.3g} (allowed {tol.proba_atol:g})")
        task = "classification"
    else:
        expected = np.asarray(est.predict(X), dtype=float)
        got = np.asarray(outputs[0], dtype=float).reshape(expected.shape)
        diff = np.abs(got - expected)
        allowed = tol.atol + tol.rtol * np.abs(expected)
        over = int((diff > allowed).sum())
        figures = {"max_abs_diff": float(diff.max(initial=0.0)),
                   "tolerance_used": float((diff / allowed).max(initial=0.0))}
        problems = [f"{over} of {expected.size} predictions differ by more than atol {tol.atol:g} + rtol "
                    f"{tol.rtol:g} x |prediction| (up to {figures['max_abs_diff']:.3g})"] if over else []
        task = "regression"
    if problems:
        raise JobError(f"the ONNX export of {info.model_id} does not match the model on its test data: "
                       f"{'; '.join(problems)}; not registered")
    return task, figures


def export_onnx(
    registry: Registry,
    model_id: str,
    *,
    data_path: str | Path | None = None,
    target: str | None = None,
    tolerance: Tolerance | None = None,
) -> OnnxExport:
    """Export a scikit-learn version to ONNX, check it on ``data_path`` (default: its TEST_DATA
    asset) and register the file as its ``EDGE_MODEL`` asset. An export identical to the one
    already registered is left as it is (``registered=False``)."""
    import onnxruntime as ort
    import skl2onnx

    tol = tolerance or Tolerance()
    info = registry.get_version(model_id)
    if "sklearn" not in info.flavors:
        kinds = ", ".join(f for f in info.flavors if f != "python_function") or "python_function"
        raise JobError(f"cannot export {info.model_id} to ONNX: it is a {kinds} model, and the ONNX export "
                       f"converts scikit-learn models (flavor sklearn)")
    path, data_in = role_data(registry, info, "TEST_DATA", data_path, what="test data", given_as="--data")
    frame = read_frame(path, "test data")
    target = target or info.tags.get("target") or "target"
    features = info.input_columns() or [c for c in frame.columns if c != target]
    missing = [c for c in features if c not in frame.columns]
    if missing:
        raise JobError(f"test data does not match the signature of {info.model_id}: missing columns {', '.join(missing)}")
    X = frame[features]
    est = registry.load_sklearn(info.ref)
    types, feeds = _feeds_and_types(est, X)
    onx = _convert(info, est, types)
    content = onx.SerializeToString()
    try:
        session = ort.InferenceSession(content, providers=["CPUExecutionProvider"])
        outputs = session.run(None, feeds)
    except Exception as exc:
        raise JobError(f"onnxruntime cannot run the ONNX export of {info.model_id}: {first_line(exc)}") from exc
    task, figures = _check_parity(info, est, X, outputs, tol)

    with tempfile.TemporaryDirectory(prefix="mlc-onnx-") as tmp:
        file = Path(tmp) / f"{re.sub(r'[^0-9A-Za-z_.-]', '_', info.name)}-v{info.version}.onnx"
        file.write_bytes(content)
        digest = sha256_file(file)
        current = info.assets.get(EDGE_MODEL)
        registered = current is None or current.sha256 != digest
        asset = registry.add_asset(info.ref, EDGE_MODEL, file) if registered else current
    assert asset is not None
    return OnnxExport(
        model_name=info.name, version=info.version, task_type=task, rows=len(X), data_uri=data_in.uri,
        inputs=[name for name, _type in types], tolerance=tol, **figures,
        opset=max((o.version for o in onx.opset_import if o.domain in ("", "ai.onnx")), default=0),
        size=len(content), sha256=digest, asset=asset, registered=registered,
        skl2onnx_version=skl2onnx.__version__, onnxruntime_version=ort.__version__,
    )
