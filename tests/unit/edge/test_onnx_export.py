"""`mlc model export --format onnx` on real models in a real MLflow registry: parity on the version's
test data, the EDGE_MODEL asset (once), and the one-line error for what cannot be converted."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from modelops_mlc.edge import EDGE_MODEL, export_onnx
from modelops_mlc.errors import JobError


class ClipOutliers(BaseEstimator, TransformerMixin):
    """A user's own transformer: skl2onnx has no converter for it."""

    def fit(self, X, y=None):
        return self

    def transform(self, X):
        return np.clip(X, -3, 3)


def _test_data(tmp_path, X, y):
    path = tmp_path / "test.csv"
    X.assign(target=y).to_csv(path, index=False)
    return path


def test_classifier_export_matches_and_is_registered_once(registry, breast_cancer, tmp_path, run_mlc) -> None:
    X, y, model = breast_cancer
    registry.register("bc", estimator=model, input_example=X.head(2), assets={"TEST_DATA": _test_data(tmp_path, X, y)})

    r = run_mlc("model", "export", "bc/1", "--format", "onnx", "--json")
    assert r.returncode == 0, r.stderr
    first = json.loads(r.stdout)
    assert first["task_type"] == "classification" and first["rows"] == len(X)
    assert first["label_mismatches"] == 0 and first["max_abs_diff"] <= first["tolerance"]["proba_atol"] == 1e-5
    assert first["tolerance_used"] <= 1
    assert first["registered"] is True

    info = registry.get_version("bc/1")
    asset = info.assets[EDGE_MODEL]
    assert asset.sha256 == first["sha256"] and asset.copied
    onnx_file = registry.asset_path(info, EDGE_MODEL, verify=True)
    session = ort.InferenceSession(str(onnx_file), providers=["CPUExecutionProvider"])
    labels, proba = session.run(None, {session.get_inputs()[0].name: X.to_numpy(np.float32)})
    assert np.array_equal(labels, model.predict(X))
    assert np.abs(proba - model.predict_proba(X)).max() <= 1e-5

    again = export_onnx(registry, "bc/1")
    assert again.registered is False and again.sha256 == first["sha256"]
    after = registry.get_version("bc/1").assets
    assert after[EDGE_MODEL] == asset  # the same record: not added a second time
    assert sorted(after) == ["EDGE_MODEL", "TEST_DATA"]


def test_regressor_export_within_the_stated_tolerance(registry, tmp_path) -> None:
    from sklearn.datasets import load_diabetes
    from sklearn.linear_model import Ridge

    X, y = load_diabetes(return_X_y=True, as_frame=True)
    model = make_pipeline(StandardScaler(), Ridge()).fit(X, y)
    registry.register("diab", estimator=model, input_example=X.head(2))
    result = export_onnx(registry, "diab", data_path=_test_data(tmp_path, X, y))
    assert result.task_type == "regression" and result.rows == len(X) and result.label_mismatches is None
    assert 0 < result.max_abs_diff and result.tolerance_used <= 1  # float32 inside: close, not equal
    onnx_file = registry.asset_path("diab/1", EDGE_MODEL)
    session = ort.InferenceSession(str(onnx_file), providers=["CPUExecutionProvider"])
    (got,) = session.run(None, {"input": X.to_numpy(np.float32)})
    np.testing.assert_allclose(got.ravel(), model.predict(X), rtol=1e-5, atol=1e-4)
    assert registry.get_version("diab/1").assets[EDGE_MODEL].sha256 == result.sha256


def test_a_custom_transformer_blocks_the_export_with_its_name(registry, breast_cancer, tmp_path, run_mlc) -> None:
    X, y, _ = breast_cancer
    model = make_pipeline(StandardScaler(), ClipOutliers(), LogisticRegression(max_iter=1000)).fit(X, y)
    registry.register("clipped", estimator=model, input_example=X.head(2),
                      assets={"TEST_DATA": _test_data(tmp_path, X, y)})

    # the CLI unpickles the pipeline, so it must import this module, as a user's would import theirs
    r = run_mlc("model", "export", "clipped/1", "--format", "onnx", env={"PYTHONPATH": str(Path(__file__).parent)})
    assert r.returncode != 0 and "Traceback" not in r.stderr
    message = (r.stderr + r.stdout).strip()
    assert len(message.splitlines()) == 1, message
    assert "step 'clipoutliers'" in message and "ClipOutliers" in message and "no ONNX converter" in message
    assert EDGE_MODEL not in registry.get_version("clipped/1").assets

    r = run_mlc("model", "export", "clipped/1", "--format", "tflite")
    assert r.returncode != 0 and "allowed formats are onnx" in r.stderr + r.stdout


def test_a_model_that_is_not_scikit_learn_is_refused(registry, tmp_path) -> None:
    import mlflow.pyfunc

    class Doubler(mlflow.pyfunc.PythonModel):
        def predict(self, context, model_input, params=None):
            return model_input * 2

    path = tmp_path / "doubler"
    mlflow.pyfunc.save_model(path, python_model=Doubler())
    registry.register("doubler", path=path)
    with pytest.raises(JobError, match="cannot export doubler/1 to ONNX: it is a python_function model"):
        export_onnx(registry, "doubler", data_path=tmp_path)
