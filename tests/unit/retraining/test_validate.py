"""modelops_mlc.jobs.validate: what broken training data looks like, and what ordinary new data does."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from modelops_mlc.jobs.validate import validate_frames, validate_training_data


@pytest.fixture
def reference() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame({"age": rng.uniform(20, 70, 400), "income": rng.normal(50, 10, 400),
                         "region": rng.choice(["n", "s"], 400), "target": rng.integers(0, 2, 400)})


def test_new_rows_from_the_same_population_are_valid(reference) -> None:
    rng = np.random.default_rng(1)
    new = reference.sample(200, random_state=1).assign(income=lambda d: d["income"] + rng.normal(0, 3, len(d)))
    result = validate_frames(reference, new, target="target")
    assert (result.valid, result.problems) == (True, [])
    assert result.columns_checked == ["age", "income", "region", "target"]


def test_drift_within_a_span_is_not_broken(reference) -> None:
    shifted = reference.assign(age=reference["age"] + 30)  # far more than a drift check likes, but plausible
    assert validate_frames(reference, shifted, target="target").valid


def test_every_problem_is_named(reference) -> None:
    broken = reference.drop(columns=["region"]).assign(
        income=reference["income"] * 1000,  # a unit change
        age=reference["age"].mask(reference.index % 4 == 0),  # 25 % nulls
        target=reference["target"].astype(float).mask(reference.index == 3),
    )
    problems = validate_frames(reference, broken, target="target").problems
    assert problems[0] == "missing columns: region"
    assert "column 'age' is 25.0% null (training data: 0.0%)" in problems
    assert "target 'target' has 1 null labels" in problems
    [income] = [p for p in problems if p.startswith("column 'income'")]
    assert "100.0% of values outside the training range" in income


def test_a_numeric_column_that_turned_to_text_and_empty_data(reference) -> None:
    text = reference.assign(income=reference["income"].map(lambda v: f"{v:.0f} EUR"))
    [problem] = validate_frames(reference, text, target="target").problems
    assert problem.startswith("column 'income' is no longer numeric (") and problem.endswith("training data: float64)")
    empty = validate_frames(reference, reference.head(0), target="target")
    assert not empty.valid and empty.problems[0] == "the new data has no rows"
    assert validate_frames(reference, reference.drop(columns=["target"]), target="target").problems == [
        "missing columns: target"]


def test_against_the_registered_training_data(registry, reference, tmp_path) -> None:
    from sklearn.linear_model import LogisticRegression

    ref_path, new_path = tmp_path / "train.csv", tmp_path / "new.csv"
    reference.to_csv(ref_path, index=False)
    reference.drop(columns=["income"]).to_csv(new_path, index=False)
    x = reference[["age", "income"]]
    registry.register("val", estimator=LogisticRegression().fit(x, reference["target"]), input_example=x.head(2),
                      assets={"TRAINING_DATA": str(ref_path)})
    assert validate_training_data(registry, "val").valid  # its own data, checked for nulls and labels
    result = validate_training_data(registry, "val/1", new_path)
    assert result.problems == ["missing columns: income"]
    assert [d.role for d in result.inputs] == ["MODEL", "TRAINING_DATA", "NEW_TRAINING_DATA"]

