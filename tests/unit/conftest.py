"""Shared by the unit tests: a real MLflow sqlite registry per test, copied from a session template
(creating MLflow's tables takes seconds; copying the file takes milliseconds)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def mlflow_db_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from mlflow import MlflowClient

    db = tmp_path_factory.mktemp("mlflow-template") / "mlflow.db"
    client = MlflowClient(tracking_uri=f"sqlite:///{db}", registry_uri=f"sqlite:///{db}")
    client.search_experiments()
    client.search_registered_models()
    return db


@pytest.fixture
def registry(settings, mlflow_db_template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from modelops_mlc.registry import Registry

    monkeypatch.chdir(tmp_path)  # anything written relative to the cwd (./mlruns) would show up here
    shutil.copyfile(mlflow_db_template, settings.home / "mlflow.db")
    return Registry(settings)


@pytest.fixture(scope="session")
def breast_cancer():
    """(X, y, fitted model) on scikit-learn's bundled breast cancer data."""
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(X, y)
    return X, y, model


@pytest.fixture
def bc_csv(breast_cancer, tmp_path: Path) -> Path:
    X, y, _ = breast_cancer
    path = tmp_path / "bc-test.csv"
    X.assign(target=y).to_csv(path, index=False)
    return path
