"""Fixtures of the runtime unit tests: a small fitted scikit-learn model and a pyfunc stand-in."""

from __future__ import annotations

from typing import Any

import pytest


class StubPyfunc:
    """What the server needs of an MLflow pyfunc model, around a fitted estimator."""

    def __init__(self, model: Any, columns: list[str]) -> None:
        self.model = model
        self.columns = columns

    def get_raw_model(self) -> Any:
        return self.model

    def predict(self, frame: Any) -> Any:
        missing = [c for c in self.columns if c not in frame.columns]
        if missing:
            from mlflow.exceptions import MlflowException

            raise MlflowException(f"Model is missing inputs {missing}.")
        return self.model.predict(frame[self.columns].astype(float))


@pytest.fixture(scope="session")
def small_model():
    """(X, fitted LogisticRegression, column names) on 6 columns of the breast cancer data."""
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression

    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    X = X.iloc[:, :6]
    X.columns = [c.replace(" ", "_") for c in X.columns]
    model = LogisticRegression(max_iter=5000).fit(X, y)
    return X, model, list(X.columns)


@pytest.fixture
def make_predictor(small_model):
    from modelops_mlc.runtimes.modelinfo import ColumnSpec
    from modelops_mlc.runtimes.predictor import Predictor

    X, model, cols = small_model

    def make(name: str = "bc", version: str = "1", *, int_column: bool = False) -> Predictor:
        inputs = [ColumnSpec(c, "long" if int_column and i == 0 else "double") for i, c in enumerate(cols)]
        data = X.head(3).to_numpy().copy()
        if int_column:
            data[:, 0] = data[:, 0].round()
        example = {"columns": cols, "data": data.tolist()}
        return Predictor(name, version, StubPyfunc(model, cols), inputs, example, ["python_function", "sklearn"])

    return make
