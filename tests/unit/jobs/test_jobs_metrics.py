"""The metrics test and champion/challenger, checked against sklearn.metrics computed here."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm

from modelops_mlc.errors import JobError, MissingDataError
from modelops_mlc.jobs import compare, metrics_test


def test_binary_classification_with_protected_attribute(registry, breast_cancer, tmp_path) -> None:
    X, y, model = breast_cancer
    group = np.where(X["mean radius"] > X["mean radius"].median(), "old", "young")
    data = X.assign(target=y, group=group)
    data_path = tmp_path / "test.csv"
    data.to_csv(data_path, index=False)
    registry.register("bc", estimator=model, input_example=X.head(3),
                      tags={"protected_attribute": "group"}, assets={"TEST_DATA": data_path})

    out = tmp_path / "out" / "predictions.csv"
    result = metrics_test(registry, "bc", output_path=out)

    pred = model.predict(X)
    proba = model.predict_proba(X)[:, 1]
    expected = {
        "accuracy": skm.accuracy_score(y, pred),
        "precision": skm.precision_score(y, pred),
        "recall": skm.recall_score(y, pred),
        "f1": skm.f1_score(y, pred),
        "roc_auc": skm.roc_auc_score(y, proba),
        "log_loss": skm.log_loss(y, model.predict_proba(X)),
    }
    frame = pd.DataFrame({"y": y, "p": pred, "g": group})
    selection = frame.groupby("g")["p"].mean()
    tpr = frame[frame.y == 1].groupby("g")["p"].mean()
    expected["demographic_parity_difference"] = selection.max() - selection.min()
    expected["equal_opportunity_difference"] = tpr.max() - tpr.min()

    assert result.task_type == "classification"
    assert set(result.metrics) == set(expected)
    for key, value in expected.items():
        assert result.metrics[key] == pytest.approx(value, abs=1e-9), key
    assert result.confusion_matrix == {"labels": [0, 1], "matrix": skm.confusion_matrix(y, pred).tolist()}
    assert result.rows == len(X)

    written = pd.read_csv(out)
    assert list(written["prediction"]) == list(pred)
    assert result.outputs[0].sha256 is not None and result.inputs[1].sha256 == registry.get_version("bc").assets["TEST_DATA"].sha256

    # results are kept on the version and logged on an evaluation run linked to it
    kept = registry.get_version("bc/1").test_results
    assert kept["run_id"] == result.run_id and kept["metrics"]["f1"] == pytest.approx(expected["f1"])
    run = registry.client.get_run(result.run_id)
    assert run.data.tags["mlc.model_name"] == "bc" and run.data.tags["mlc.model_version"] == "1"
    assert run.data.metrics["f1_score"] == pytest.approx(expected["f1"])
    assert run.data.metrics["demographic_parity_difference"] == pytest.approx(expected["demographic_parity_difference"])
    assert json.loads(json.dumps(result.model_dump(mode="json")))  # plain JSON for process variables


def test_multiclass_and_regression(registry, tmp_path) -> None:
    from sklearn.datasets import load_diabetes, load_wine
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    Xw, yw = load_wine(return_X_y=True, as_frame=True)
    wine = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500, C=0.05)).fit(Xw, yw)
    Xw.assign(target=yw).to_parquet(tmp_path / "wine.parquet")
    registry.register("wine", estimator=wine, input_example=Xw.head(2))
    res = metrics_test(registry, "wine", data_path=tmp_path / "wine.parquet")
    pred, proba = wine.predict(Xw), wine.predict_proba(Xw)
    assert res.metrics["accuracy"] == pytest.approx(skm.accuracy_score(yw, pred))
    assert res.metrics["f1"] == pytest.approx(skm.f1_score(yw, pred, average="weighted"))
    assert res.metrics["precision"] == pytest.approx(skm.precision_score(yw, pred, average="weighted"))
    assert res.metrics["roc_auc"] == pytest.approx(skm.roc_auc_score(yw, proba, multi_class="ovr", average="weighted"))
    assert res.confusion_matrix["labels"] == [0, 1, 2]

    Xd, yd = load_diabetes(return_X_y=True, as_frame=True)
    ridge = Ridge(alpha=0.5).fit(Xd, yd)
    Xd.assign(progression=yd).to_csv(tmp_path / "diabetes.csv", index=False)
    registry.register("diabetes", estimator=ridge, input_example=Xd.head(2), tags={"target": "progression"},
                      assets={"TEST_DATA": tmp_path / "diabetes.csv"})
    reg = metrics_test(registry, "diabetes")
    pred = ridge.predict(Xd)
    assert reg.task_type == "regression" and reg.confusion_matrix is None
    assert set(reg.metrics) == {"rmse", "mae", "r2"}
    assert reg.metrics["rmse"] == pytest.approx(np.sqrt(skm.mean_squared_error(yd, pred)))
    assert reg.metrics["mae"] == pytest.approx(skm.mean_absolute_error(yd, pred))
    assert reg.metrics["r2"] == pytest.approx(skm.r2_score(yd, pred))


def test_bad_test_data(registry, breast_cancer, tmp_path) -> None:
    X, y, model = breast_cancer
    registry.register("bc", estimator=model, input_example=X.head(2))
    with pytest.raises(MissingDataError, match="no TEST_DATA"):
        metrics_test(registry, "bc")
    with pytest.raises(MissingDataError, match="not found"):
        metrics_test(registry, "bc", data_path=tmp_path / "absent.csv")
    X.assign(label=y).to_csv(tmp_path / "no-target.csv", index=False)
    with pytest.raises(JobError, match="no target column 'target'"):
        metrics_test(registry, "bc", data_path=tmp_path / "no-target.csv")
    X.drop(columns=["mean radius", "worst area"]).assign(target=y).to_csv(tmp_path / "short.csv", index=False)
    with pytest.raises(JobError, match="missing columns mean radius, worst area"):
        metrics_test(registry, "bc", data_path=tmp_path / "short.csv")
    assert issubclass(MissingDataError, JobError)


def test_champion_challenger(registry, breast_cancer, bc_csv) -> None:
    from sklearn.tree import DecisionTreeClassifier

    X, y, strong = breast_cancer
    weak = DecisionTreeClassifier(max_depth=1, random_state=0).fit(X, y)
    registry.register("bc", estimator=weak, input_example=X.head(2), assets={"TEST_DATA": bc_csv})
    registry.register("bc", estimator=strong, input_example=X.head(2))
    registry.move_aliases("bc", {"champion": 1, "challenger": 2})

    result = compare(registry, "bc@champion", "bc@challenger")
    assert (result.champion_version, result.challenger_version) == (1, 2)
    assert result.primary_metric == "roc_auc" and result.winner == "challenger"
    table = {m.metric: m for m in result.metrics}
    champ_acc = skm.accuracy_score(y, weak.predict(X))
    chal_acc = skm.accuracy_score(y, strong.predict(X))
    acc = table["accuracy"]
    assert acc.champion == pytest.approx(champ_acc) and acc.challenger == pytest.approx(chal_acc)
    assert acc.abs_delta == pytest.approx(chal_acc - champ_acc)
    assert acc.rel_delta == pytest.approx((chal_acc - champ_acc) / champ_acc)
    assert acc.winner == "challenger"
    assert table["log_loss"].greater_is_better is False
    assert table["log_loss"].winner == "challenger"  # lower wins

    # thresholds follow mlflow.validate_evaluation_results: an unreachable bar keeps the champion
    strict = compare(registry, "bc/1", "bc/2", thresholds={"accuracy": {"min_absolute_change": 0.5}})
    assert strict.thresholds_passed is False and strict.winner == "champion" and strict.threshold_failures
    easy = compare(registry, "bc/1", "bc/2", thresholds={"accuracy": {"threshold": 0.9, "min_relative_change": 0.01}})
    assert easy.thresholds_passed is True and easy.winner == "challenger"
    reverse = compare(registry, "bc/2", "bc/1")
    assert reverse.winner == "champion"
    with pytest.raises(JobError, match="unknown metric"):
        compare(registry, "bc/1", "bc/2", thresholds={"speed": {"threshold": 1}})


def test_compare_without_data(registry, breast_cancer) -> None:
    X, _, model = breast_cancer
    registry.register("bc", estimator=model)
    registry.register("bc", estimator=model)
    with pytest.raises(MissingDataError, match="TEST_DATA"):
        compare(registry, "bc/1", "bc/2")
