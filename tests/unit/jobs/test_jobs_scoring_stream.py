"""Batch scoring with reading, predicting and writing overlapped: the input's hash, the output's
content and hash, and a failure part-way through the stream."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from modelops_mlc.errors import JobError
from modelops_mlc.jobs import score


def _sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_many_chunks_keep_row_order_and_hashes(registry, breast_cancer, tmp_path, suffix) -> None:
    X, _, model = breast_cancer
    registry.register("bc", estimator=model, input_example=X.head(2))
    data = pd.concat([X] * 8, ignore_index=True).assign(customer_id=lambda d: [f"c{i}" for i in range(len(d))])
    src = tmp_path / f"input{suffix}"
    data.to_parquet(src) if suffix == ".parquet" else data.to_csv(src, index=False)
    out = tmp_path / "scored.parquet"

    result = score(registry, "bc", src, out, chunk_rows=64, log_run=False)

    assert result.rows == len(data) and result.chunks >= len(data) // 64
    assert result.inputs[1].sha256 == _sha256(src)
    assert result.output_sha256 == result.outputs[0].sha256 == _sha256(out)
    scored = pq.read_table(out)
    assert scored.schema.names == [*data.columns, "prediction"]
    assert scored.column("customer_id").to_pylist() == list(data["customer_id"])
    assert np.array_equal(scored.column("prediction").to_numpy(), model.predict(data[X.columns]))
    np.testing.assert_array_equal(scored.select(list(X.columns)).to_pandas().to_numpy(), data[X.columns].to_numpy())


def test_a_bad_value_late_in_the_file_fails_cleanly(registry, breast_cancer, tmp_path) -> None:
    X, _, model = breast_cancer
    registry.register("bc", estimator=model, input_example=X.head(2))
    data = pd.concat([X] * 40, ignore_index=True).astype({"mean radius": object})  # several CSV blocks
    data.loc[len(data) - 1, "mean radius"] = "not a number"
    src = tmp_path / "input.csv"
    data.to_csv(src, index=False)
    out = tmp_path / "scored.parquet"

    with pytest.raises(JobError, match=r"scoring input.csv failed after [1-9]\d* rows: .*not a number"):
        score(registry, "bc", src, out, chunk_rows=64, log_run=False)
    assert not out.exists() and not out.with_name(out.name + ".part").exists()
