"""run-test's metrics test without MLflow's plots: the same metrics and run records, no images."""

from __future__ import annotations

import numpy as np
import pytest

from modelops_mlc.jobs import metrics_test


def _artifacts(registry, run_id: str) -> set[str]:
    return {f.path for f in registry.client.list_artifacts(run_id)}


def test_no_plots_same_metrics_and_run_records(registry, breast_cancer, tmp_path) -> None:
    X, y, model = breast_cancer
    data = X.assign(target=y, group=np.where(X["mean texture"] > X["mean texture"].median(), "a", "b"))
    data_path = tmp_path / "test.csv"
    data.to_csv(data_path, index=False)
    registry.register("bc", estimator=model, input_example=X.head(2), tags={"protected_attribute": "group"},
                      assets={"TEST_DATA": data_path})

    full = metrics_test(registry, "bc")
    fast = metrics_test(registry, "bc", output_path=tmp_path / "pred.csv", plots=False)
    assert fast.metrics == full.metrics  # identical, not approximately
    assert fast.confusion_matrix == full.confusion_matrix and fast.task_type == full.task_type

    with_plots, without = _artifacts(registry, full.run_id), _artifacts(registry, fast.run_id)
    assert any(p.endswith(".png") for p in with_plots)
    assert without == {"confusion_matrix.json"}

    a, b = registry.client.get_run(full.run_id).data, registry.client.get_run(fast.run_id).data
    assert b.metrics == a.metrics  # MLflow's metric names plus the bias metrics
    assert "demographic_parity_difference" in b.metrics and "f1_score" in b.metrics
    assert b.params == a.params == {"data_uri": a.params["data_uri"], "data_sha256": a.params["data_sha256"],
                                    "target": "target", "rows": str(len(X))}
    assert b.tags["mlc.output_uri"] == fast.outputs[0].uri and "mlc.output_uri" not in a.tags
    assert b.tags["mlc.kind"] == "test" and b.tags["mlc.model_version"] == "1"
    assert registry.get_version("bc/1").test_results["run_id"] == fast.run_id


def test_no_plots_multiclass_and_regression(registry, tmp_path) -> None:
    from sklearn.datasets import load_diabetes, load_wine
    from sklearn.linear_model import LogisticRegression, Ridge

    Xw, yw = load_wine(return_X_y=True, as_frame=True)
    wine = LogisticRegression(max_iter=5000).fit(Xw, yw)
    Xw.assign(target=yw).to_csv(tmp_path / "wine.csv", index=False)
    registry.register("wine", estimator=wine, input_example=Xw.head(2), assets={"TEST_DATA": tmp_path / "wine.csv"})
    full, fast = metrics_test(registry, "wine"), metrics_test(registry, "wine", plots=False)
    assert fast.metrics == full.metrics and fast.confusion_matrix["labels"] == [0, 1, 2]
    assert not any(p.endswith(".png") for p in _artifacts(registry, fast.run_id))

    Xd, yd = load_diabetes(return_X_y=True, as_frame=True)
    Xd.assign(target=yd).to_csv(tmp_path / "diabetes.csv", index=False)
    registry.register("diabetes", estimator=Ridge().fit(Xd, yd), input_example=Xd.head(2),
                      assets={"TEST_DATA": tmp_path / "diabetes.csv"})
    full, fast = metrics_test(registry, "diabetes"), metrics_test(registry, "diabetes", plots=False)
    assert fast.metrics == full.metrics and set(fast.metrics) == {"rmse", "mae", "r2"}


def test_data_that_cannot_fit_the_model_fails_before_any_run(registry, breast_cancer, tmp_path) -> None:
    from modelops_mlc.errors import JobError

    X, y, model = breast_cancer
    registry.register("bc", estimator=model, input_example=X.head(2))
    (tmp_path / "bad.csv").write_text("target\n1\n0\n")  # no feature columns
    with pytest.raises(JobError, match="missing columns"):
        metrics_test(registry, "bc", data_path=tmp_path / "bad.csv", plots=False)
    assert registry.client.search_runs([registry.experiment_id], "tags.`mlc.kind` = 'test'") == []
