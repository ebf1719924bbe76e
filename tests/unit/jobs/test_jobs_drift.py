"""Drift: PSI, KS and chi-squared per feature against numpy/pandas/scipy computed here."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from modelops_mlc.errors import JobError, MissingDataError
from modelops_mlc.jobs import drift


def _shares(counts: np.ndarray) -> np.ndarray:
    p = counts / counts.sum()
    smallest = p[p > 0].min()
    return np.where(p == 0, smallest / 1e6 if smallest <= 1e-4 else 1e-4, p)


def _psi(ref_counts, cur_counts) -> float:
    r, c = _shares(np.asarray(ref_counts, float)), _shares(np.asarray(cur_counts, float))
    return float(np.sum((c - r) * np.log(c / r)))


def _quantile_psi(ref: np.ndarray, cur: np.ndarray, bins: int = 10) -> float:
    edges = np.quantile(ref, np.linspace(0, 1, bins + 1))[1:-1]
    cuts = [-np.inf, *edges, np.inf]
    ref_counts = pd.Series(pd.cut(ref, cuts, right=True, duplicates="drop")).value_counts(sort=False).to_numpy()
    cur_counts = pd.Series(pd.cut(cur, cuts, right=True, duplicates="drop")).value_counts(sort=False).to_numpy()
    return _psi(ref_counts, cur_counts)


@pytest.fixture(scope="module")
def frames() -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(7)
    n, m = 4000, 3000
    ref = pd.DataFrame({
        "same": rng.normal(0, 1, n),
        "small": rng.normal(0, 1, n),
        "medium": rng.normal(0, 1, n),
        "large": rng.normal(0, 1, n),
        "ints": rng.integers(0, 5, n),
        "with_nan": np.where(rng.random(n) < 0.1, np.nan, rng.normal(0, 1, n)),
        "color": rng.choice(["red", "green", "blue"], n, p=[0.5, 0.3, 0.2]),
    })
    cur = pd.DataFrame({
        "same": rng.normal(0, 1, m),
        "small": rng.normal(0.33, 1, m),
        "medium": rng.normal(0.47, 1, m),
        "large": rng.normal(1.2, 1, m),
        "ints": rng.integers(0, 6, m),
        "with_nan": np.where(rng.random(m) < 0.3, np.nan, rng.normal(0.1, 1, m)),
        "color": rng.choice(["red", "green", "blue", "black"], m, p=[0.3, 0.3, 0.2, 0.2]),
    })
    return ref, cur


def test_numeric_statistics_match_scipy_and_oracle(frames) -> None:
    ref, cur = frames
    result = drift(ref, cur)
    table = {f.feature: f for f in result.features}
    assert list(table) == list(ref.columns)
    for name in ["same", "small", "medium", "large", "ints", "with_nan"]:
        r, c = ref[name].dropna().to_numpy(), cur[name].dropna().to_numpy()
        ks = stats.ks_2samp(r, c, method="asymp")
        row = table[name]
        assert row.kind == "numeric" and row.test == "ks"
        assert row.statistic == pytest.approx(ks.statistic, abs=1e-12), name
        if ks.pvalue >= 0.01:  # scipy's asymptotic p-value exactly where decisions are made
            assert row.p_value == pytest.approx(ks.pvalue, rel=1e-6), name
        else:  # an approximation of the same distribution far out in the tail
            assert row.p_value < 0.01 and row.p_value == pytest.approx(ks.pvalue, rel=0.1), name
        assert row.psi == pytest.approx(_quantile_psi(r, c), rel=1e-9), name
    assert table["with_nan"].reference_missing == pytest.approx(ref["with_nan"].isna().mean())
    assert table["with_nan"].current_missing == pytest.approx(cur["with_nan"].isna().mean())
    assert result.reference_rows == 4000 and result.current_rows == 3000


def test_categorical_uses_psi_and_chi_squared(frames) -> None:
    ref, cur = frames
    row = {f.feature: f for f in drift(ref, cur).features}["color"]
    cats = sorted(set(ref.color) | set(cur.color))
    rc = ref.color.value_counts().reindex(cats, fill_value=0).to_numpy()
    cc = cur.color.value_counts().reindex(cats, fill_value=0).to_numpy()
    chi2, p, _, _ = stats.chi2_contingency(np.vstack([rc, cc]), correction=False)
    assert row.kind == "categorical" and row.test == "chi2"
    assert row.statistic == pytest.approx(chi2) and row.p_value == pytest.approx(p, abs=1e-300)
    assert row.psi == pytest.approx(_psi(rc, cc))


def test_verdicts_follow_thresholds(frames) -> None:
    ref, cur = frames
    result = drift(ref, cur)
    for f in result.features:
        if f.psi > 0.25:
            expected = "retrain"
        elif f.psi > 0.2:
            expected = "investigate"
        elif f.psi >= 0.1 or f.p_value < 0.05:
            expected = "notify"
        else:
            expected = "ok"
        assert f.verdict == expected, f
        assert f.drifted == (f.psi >= 0.1 or f.p_value < 0.05)
    verdicts = {f.feature: f.verdict for f in result.features}
    assert verdicts["same"] == "ok" and verdicts["large"] == "retrain"
    assert verdicts["small"] == "notify" and verdicts["medium"] == "investigate"
    assert result.verdict == "retrain"
    assert "same" not in result.drifted_features and "large" in result.drifted_features

    calm = drift(ref[["same"]], ref[["same"]].sample(frac=1.0, random_state=1))
    assert calm.verdict == "ok" and calm.features[0].psi == pytest.approx(0.0, abs=1e-12)
    relaxed = drift(ref, cur, psi_thresholds=(5.0, 6.0, 7.0), ks_alpha=0.0)
    assert relaxed.verdict == "ok" and relaxed.drifted_features == []


def test_uniform_binning_matches_numpy_histogram(frames) -> None:
    ref, cur = frames
    row = drift(ref[["large"]], cur[["large"]], binning="uniform", bins=30).features[0]
    edges = np.histogram_bin_edges(np.concatenate([ref.large, cur.large]), bins=30)
    expected = _psi(np.histogram(ref.large, edges)[0], np.histogram(cur.large, edges)[0])
    assert row.psi == pytest.approx(expected, rel=1e-9)


def test_wide_data_and_files(tmp_path) -> None:
    rng = np.random.default_rng(3)
    ref = pd.DataFrame(rng.normal(size=(2000, 120)), columns=[f"f{i}" for i in range(120)])
    cur = pd.DataFrame(rng.normal(0.05, 1.1, size=(1500, 120)), columns=ref.columns).assign(only_current=1)
    ref.to_parquet(tmp_path / "ref.parquet")
    cur.to_csv(tmp_path / "cur.csv", index=False)
    result = drift(tmp_path / "ref.parquet", tmp_path / "cur.csv")
    assert len(result.features) == 120 and result.skipped_features == {"only_current": "only in current"}
    for f in result.features[::17]:
        ks = stats.ks_2samp(ref[f.feature], cur[f.feature], method="asymp")
        assert f.statistic == pytest.approx(ks.statistic, abs=1e-12)
    assert all(i.sha256 for i in result.inputs)
    picked = drift(tmp_path / "ref.parquet", tmp_path / "cur.csv", features=["f1", "f2"])
    assert [f.feature for f in picked.features] == ["f1", "f2"]


def test_bad_inputs(tmp_path) -> None:
    with pytest.raises(MissingDataError, match="reference data not found"):
        drift(tmp_path / "none.csv", tmp_path / "none.csv")
    with pytest.raises(JobError, match="share no feature"):
        drift(pd.DataFrame({"a": [1.0]}), pd.DataFrame({"b": [1.0]}))
    with pytest.raises(JobError, match="not in both"):
        drift(pd.DataFrame({"a": [1.0]}), pd.DataFrame({"a": [1.0]}), features=["a", "z"])
