"""What a metrics test records in MLflow: MLflow's metrics (checked against sklearn.metrics), each
logged once to the evaluation run and linked once to the version's LoggedModel."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn import metrics as skm

from modelops_mlc.jobs import metrics_test


def _logged_model_metrics(registry, model_id: str, run_id: str) -> list[tuple[str, float]]:
    logged = registry.client.get_logged_model(model_id)
    return sorted((m.key, m.value) for m in logged.metrics if m.run_id == run_id)


def _check_records(registry, run_id: str, model_id: str) -> dict[str, float]:
    run = registry.client.get_run(run_id)
    metrics = run.data.metrics
    for key in metrics:
        assert len(registry.client.get_metric_history(run_id, key)) == 1, key
    assert _logged_model_metrics(registry, model_id, run_id) == sorted(
        (k, v) for k, v in metrics.items() if k not in ("demographic_parity_difference", "equal_opportunity_difference"))
    assert [m.model_id for m in run.inputs.model_inputs] == [model_id]
    [dataset] = run.inputs.dataset_inputs
    [tag] = json.loads(run.data.tags["mlflow.datasets"])
    assert tag["model"] == model_id and tag["name"] == dataset.dataset.name
    return metrics


@pytest.mark.parametrize("plots", [False, True])
def test_classifier_metrics_logged_once_and_linked(registry, breast_cancer, bc_csv, plots: bool) -> None:
    X, y, model = breast_cancer
    registry.register("bc", estimator=model, input_example=X.head(2), assets={"TEST_DATA": bc_csv})
    model_id = registry.load_pyfunc("bc/1").model_id
    assert model_id

    result = metrics_test(registry, "bc", plots=plots)
    logged = _check_records(registry, result.run_id, model_id)

    pred, proba = model.predict(X), model.predict_proba(X)[:, 1]
    expected = {"accuracy_score": skm.accuracy_score(y, pred), "f1_score": skm.f1_score(y, pred),
                "precision_score": skm.precision_score(y, pred), "recall_score": skm.recall_score(y, pred),
                "roc_auc": skm.roc_auc_score(y, proba), "log_loss": skm.log_loss(y, model.predict_proba(X)),
                "example_count": len(X)}
    for key, value in expected.items():
        assert logged[key] == pytest.approx(value, abs=1e-9), key
    assert result.metrics["f1"] == logged["f1_score"] and result.metrics["roc_auc"] == logged["roc_auc"]


def test_regressor_metrics_logged_once_and_linked(registry, tmp_path) -> None:
    from sklearn.datasets import load_diabetes
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = load_diabetes(return_X_y=True, as_frame=True)
    ridge = make_pipeline(StandardScaler(), Ridge()).fit(X, y)
    X.assign(target=y).to_csv(tmp_path / "diabetes.csv", index=False)
    registry.register("diabetes", estimator=ridge, input_example=X.head(2),
                      assets={"TEST_DATA": tmp_path / "diabetes.csv"})
    model_id = registry.load_pyfunc("diabetes/1").model_id

    result = metrics_test(registry, "diabetes", plots=False)
    logged = _check_records(registry, result.run_id, model_id)

    pred = ridge.predict(X)
    expected = {"mean_squared_error": skm.mean_squared_error(y, pred),
                "root_mean_squared_error": np.sqrt(skm.mean_squared_error(y, pred)),
                "mean_absolute_error": skm.mean_absolute_error(y, pred), "r2_score": skm.r2_score(y, pred),
                "max_error": skm.max_error(y, pred)}
    for key, value in expected.items():
        assert logged[key] == pytest.approx(value, rel=1e-9), key
    assert result.metrics == {"rmse": logged["root_mean_squared_error"], "mae": logged["mean_absolute_error"],
                              "r2": logged["r2_score"]}


def test_repeated_tests_do_not_read_the_logged_model(registry, breast_cancer, bc_csv, monkeypatch) -> None:
    """Reading the LoggedModel loads every metric ever linked to it, so back test N would cost more
    than back test N-1; the metrics test links to it without reading it, and the process's cached
    model keeps its id."""
    from mlflow import MlflowClient

    from modelops_mlc.registry.client import set_model_cache_size

    X, _, model = breast_cancer
    registry.register("bc", estimator=model, input_example=X.head(2), assets={"TEST_DATA": bc_csv})
    reads: list[str] = []
    real = MlflowClient.get_logged_model
    monkeypatch.setattr(MlflowClient, "get_logged_model",
                        lambda self, model_id, *a, **kw: reads.append(model_id) or real(self, model_id, *a, **kw))
    set_model_cache_size(1)
    try:
        runs = [metrics_test(registry, "bc", plots=False).run_id for _ in range(3)]
        model_id = registry.load_pyfunc(registry.get_version("bc/1")).model_id
    finally:
        set_model_cache_size(0)
    assert reads == [] and model_id
    linked = {m.run_id for m in real(registry.client, model_id).metrics}
    assert linked == set(runs)
