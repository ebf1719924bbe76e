"""Training (default refit and a declared entrypoint) and chunked batch scoring."""

from __future__ import annotations

import hashlib
import textwrap

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from modelops_mlc.errors import JobError, MissingDataError, UsageError
from modelops_mlc.jobs import score, train


def test_train_refits_parent_and_registers_child(registry, breast_cancer, bc_csv) -> None:
    from sklearn.base import clone

    X, y, model = breast_cancer
    registry.register("bc", estimator=model, input_example=X.head(2),
                      tags={"train": True, "run_test": True, "TAG": "svc"},
                      assets={"TRAINING_DATA": bc_csv, "TEST_DATA": bc_csv})
    result = train(registry, "bc", seed=3)
    assert (result.version, result.parent_version) == (2, 1)
    assert result.entrypoint == "modelops_mlc.jobs.train:refit" and result.rows == len(X)
    child = registry.get_version("bc/2")
    assert child.run_id == result.run_id
    assert child.tags["mlc.parent_version"] == "1" and child.tags["train"] == "false"
    assert child.tags["run_test"] == "true" and child.tags["TAG"] == "svc"
    assert set(child.assets) == {"TRAINING_DATA", "TEST_DATA"}

    sha = hashlib.sha256(bc_csv.read_bytes()).hexdigest()
    run = registry.client.get_run(result.run_id)
    assert run.data.params["seed"] == "3" and run.data.params["training_data_sha256"] == sha
    assert run.data.tags["mlc.pkg.scikit-learn"] and run.data.tags["mlc.kind"] == "train"
    assert result.inputs[1].sha256 == sha and result.outputs[0].uri == "models:/bc/2"

    expected = clone(model).fit(X, y).predict(X)
    assert list(registry.load_pyfunc("bc/2").predict(X)) == list(expected)
    assert result.metrics["training_score"] == pytest.approx((expected == y).mean())


def test_train_with_entrypoint_and_bad_inputs(registry, breast_cancer, bc_csv, tmp_path, monkeypatch) -> None:
    X, y, model = breast_cancer
    (tmp_path / "my_training.py").write_text(textwrap.dedent("""
        from sklearn.ensemble import RandomForestClassifier

        def fit(data, target, seed):
            model = RandomForestClassifier(n_estimators=5, random_state=seed)
            model.fit(data.drop(columns=[target]), data[target])
            return {"model": model, "metrics": {"oob_like": 0.5}, "params": {"n_estimators": 5}}

        def broken(data):
            raise ValueError("no convergence")
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    registry.register("bc", estimator=model, input_example=X.head(2), tags={"entrypoint": "my_training:fit"})

    with pytest.raises(MissingDataError, match="no TRAINING_DATA"):
        train(registry, "bc")
    with pytest.raises(MissingDataError, match="not found"):
        train(registry, "bc", training_data=tmp_path / "absent.csv")

    result = train(registry, "bc", training_data=bc_csv, seed=11)
    assert result.entrypoint == "my_training:fit" and result.metrics["oob_like"] == 0.5
    assert result.params == {"n_estimators": "5"}
    child = registry.get_version(f"bc/{result.version}")
    assert child.assets["TRAINING_DATA"].sha256 == hashlib.sha256(bc_csv.read_bytes()).hexdigest()
    assert registry.client.get_run(result.run_id).data.params["model.random_state"] == "11"

    with pytest.raises(JobError, match="no convergence"):
        train(registry, "bc/1", training_data=bc_csv, entrypoint="my_training:broken")
    with pytest.raises(UsageError, match="module:function"):
        train(registry, "bc/1", training_data=bc_csv, entrypoint="no_colon")
    with pytest.raises(JobError, match="cannot import"):
        train(registry, "bc/1", training_data=bc_csv, entrypoint="not_a_module_xyz:fit")


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_score_in_chunks(registry, breast_cancer, tmp_path, suffix) -> None:
    X, y, model = breast_cancer
    registry.register("bc", estimator=model, input_example=X.head(2))
    data = X.assign(customer_id=np.arange(len(X)))
    src = tmp_path / f"input{suffix}"
    data.to_parquet(src) if suffix == ".parquet" else data.to_csv(src, index=False)
    out = tmp_path / f"scored{suffix}"

    result = score(registry, "bc", src, out, chunk_rows=100)
    assert result.rows == len(X) and result.chunks >= -(-len(X) // 100)  # no chunk above 100 rows
    assert result.extra_columns == ["customer_id"]
    assert result.output_sha256 == hashlib.sha256(out.read_bytes()).hexdigest()
    assert result.outputs[0].sha256 == result.output_sha256 and result.inputs[1].rows == len(X)
    scored = pq.read_table(out).to_pandas() if suffix == ".parquet" else pd.read_csv(out)
    assert list(scored["customer_id"]) == list(range(len(X)))
    assert list(scored["prediction"]) == list(model.predict(X))
    assert not out.with_name(out.name + ".part").exists()
    run = registry.client.get_run(result.run_id)
    assert run.data.metrics["rows"] == len(X) and run.data.params["output_sha256"] == result.output_sha256


def test_score_schema_and_missing_input(registry, breast_cancer, tmp_path) -> None:
    X, _, model = breast_cancer
    registry.register("bc", estimator=model, input_example=X.head(2))
    short = tmp_path / "short.csv"
    X.drop(columns=["mean radius", "mean area"]).assign(extra=1).to_csv(short, index=False)
    with pytest.raises(JobError, match="missing columns mean radius, mean area; extra columns extra"):
        score(registry, "bc", short, tmp_path / "out.csv")
    assert not (tmp_path / "out.csv").exists()
    extra = tmp_path / "extra.csv"
    X.assign(extra=1).to_csv(extra, index=False)
    with pytest.raises(JobError, match="extra columns extra"):
        score(registry, "bc", extra, tmp_path / "out.csv", strict=True)
    with pytest.raises(MissingDataError, match="input file not found"):
        score(registry, "bc", tmp_path / "absent.csv", tmp_path / "out.csv")
