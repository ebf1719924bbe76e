"""`mlc drift --model M CURRENT` reads the reference from the model's training data and checks its
outputs too; `--html` writes a self-contained report of the distributions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest


@pytest.fixture
def model(registry, tmp_path: Path) -> dict[str, Path | str]:
    import pandas as pd
    from sklearn.datasets import make_classification
    from sklearn.linear_model import LogisticRegression

    x, y = make_classification(n_samples=4000, n_features=4, n_informative=3, n_redundant=0, shuffle=False,
                               random_state=1)  # a, b, c informative, d noise; rows come ordered by class
    frame = pd.DataFrame(x, columns=["a", "b", "c", "d"]).assign(target=y).sample(frac=1.0, random_state=1)
    train, current = frame.iloc[:2000], frame.iloc[2000:].copy()
    current["c"] = current["c"] + 2.0  # the feature the model leans on most
    paths = {"train": tmp_path / "train.csv", "current": tmp_path / "current.csv"}
    train.to_csv(paths["train"], index=False)
    current.drop(columns=["target"]).to_csv(paths["current"], index=False)
    estimator = LogisticRegression().fit(train[["a", "b", "c", "d"]], train["target"])
    registry.register("drifty", estimator=estimator, tags={"target": "target"}, input_example=train[["a", "b", "c", "d"]].head(2),
                      assets={"TRAINING_DATA": str(paths["train"])})
    return paths


def test_drift_against_the_models_training_data_with_an_html_report(run_mlc, model, tmp_path: Path) -> None:
    report = tmp_path / "report" / "drift.html"
    r = run_mlc("drift", "--model", "drifty", model["current"], "--html", report, "--json")
    assert r.returncode == 0, r.stderr
    result = json.loads(r.stdout)
    assert [f["feature"] for f in result["features"]] == ["a", "b", "c", "d"]  # the signature's, not the target
    assert result["drifted_features"] == ["c"] and result["verdict"] == "retrain"
    assert result["prediction"]["test"] == "chi2" and result["prediction"]["psi"] > 0.1  # outputs moved with c
    page = report.read_text()
    assert page.startswith("<!DOCTYPE html>") and "Drift of current.csv for drifty" in page
    assert "<script src=" not in page and "Plotly.newPlot" in page  # plotly.js inlined: opens offline
    assert all(f"{name}: PSI" in page for name in "abcd")


@pytest.mark.parametrize("args, message", [
    (["only-one.csv"], "expected REFERENCE CURRENT, got 1 file(s)"),
    (["--model", "drifty", "a.csv", "b.csv", "c.csv"], "expected CURRENT, or REFERENCE CURRENT, got 3 file(s)"),
    (["--model", "drifty", "missing.csv"], "file not found: missing.csv"),
])
def test_bad_drift_input_is_one_line(run_mlc, args, message) -> None:
    r = run_mlc("drift", *args)
    assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr


def test_an_unknown_model_is_not_found(run_mlc, tmp_path: Path) -> None:
    current = tmp_path / "current.csv"
    current.write_text("a,b\n1,2\n")
    r = run_mlc("drift", "--model", "nobody", current)
    assert r.returncode == 4 and "not found" in r.stderr and "Traceback" not in r.stderr


def test_text_in_a_numeric_column_is_named_in_one_line(run_mlc, model, tmp_path: Path) -> None:
    """The model's outputs are checked on the current data: a value that is not a number in a column its
    signature calls double is named, not MLflow's schema message with the whole frame in it."""
    import pandas as pd

    bad = pd.read_csv(model["current"]).astype({"c": object})
    bad.loc[bad.index[3], "c"] = "high"
    path = tmp_path / "bad.csv"
    bad.to_csv(path, index=False)
    r = run_mlc("drift", "--model", "drifty", path)
    assert r.returncode != 0 and "Traceback" not in r.stderr
    assert r.stderr.splitlines()[0] == "error: current data: column 'c' (double) holds 'high' in row 3, not a number"
