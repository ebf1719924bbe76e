"""`mlc model ...` and `mlc drift` through the real command line. Each call is a subprocess that
imports MLflow, so independent calls run concurrently and the scenario is one test."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd


def _all(run_mlc, commands: list[tuple]) -> list:
    with ThreadPoolExecutor(max_workers=4) as pool:
        return list(pool.map(lambda args: run_mlc(*args), commands))


def _ok(proc) -> dict:
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_model_commands_and_bad_input(run_mlc, registry, breast_cancer, bc_csv, tmp_path) -> None:
    import mlflow.sklearn

    from modelops_mlc.jobs import metrics_test

    X, _, model = breast_cancer
    registry.register("bc", estimator=model, input_example=X.head(2), assets={"TEST_DATA": bc_csv})
    metrics_test(registry, "bc")
    saved = tmp_path / "saved"
    mlflow.sklearn.save_model(model, str(saved), input_example=X.head(2), pip_requirements=["scikit-learn"])
    rng = np.random.default_rng(0)
    pd.DataFrame({"a": rng.normal(size=500), "c": rng.choice(["x", "y"], 500)}).to_csv(tmp_path / "ref.csv", index=False)
    pd.DataFrame({"a": rng.normal(1, 1, 400), "c": rng.choice(["x", "y"], 400)}).to_csv(tmp_path / "cur.csv", index=False)
    empty = tmp_path / "not-a-model"
    empty.mkdir()
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "MLmodel").write_text(": : [not yaml")

    bad = {
        ("model", "show", "nope"): (4, "model 'nope' not found"),
        ("model", "show", "bc/9"): (4, "model 'bc' has no version 9 (latest is 1)"),
        ("model", "tag", "bc@champion", "a=b"): (4, "model 'bc' has no alias 'champion'"),
        ("model", "asset", "bc", f"TEST_DATA={tmp_path / 'missing.csv'}"): (2, "file not found"),
        ("model", "register", "x", "--path", empty): (1, "no MLmodel file"),
        ("model", "register", "x", "--path", tmp_path / "broken"): (1, "unreadable MLmodel"),
    }
    register_call = ("model", "register", "fraud", "--path", saved, "--tag", "run_test=true",
                     "--asset", f"TEST_DATA={bc_csv}", "--json")
    first = _all(run_mlc, [register_call, *bad])

    reg = _ok(first[0])
    assert reg["name"] == "fraud" and reg["version"] == 1 and reg["tags"] == {"run_test": "true"}
    assert reg["assets"]["TEST_DATA"]["copied"] is True and "sklearn" in reg["flavors"]
    for (args, (code, message)), proc in zip(bad.items(), first[1:]):
        assert proc.returncode == code, (args, proc.returncode, proc.stderr)
        lines = [line for line in proc.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and message in lines[0], (args, proc.stderr)
        assert "Traceback" not in proc.stderr and proc.stdout == ""

    listed, shown, tagged, asset, alias, drifted, snap, offline = _all(run_mlc, [
        ("model", "list", "--json"),
        ("model", "show", "bc"),
        ("model", "tag", "fraud/1", "jira=true", "train=false", "--json"),
        ("model", "asset", "fraud", f"REFERENCE_DATA={bc_csv}", "--no-copy", "--json"),
        ("model", "alias", "bc", "champion=1", "--json"),
        ("drift", tmp_path / "ref.csv", tmp_path / "cur.csv", "--json"),
        ("model", "snapshot", "fraud", "--tag", "run_test=true", "--no-signal", "--json"),
        ("model", "snapshot", "bc"),  # the test's engine URL has nothing listening
    ])
    assert [m["name"] for m in _ok(listed)] == ["bc", "fraud"]
    assert shown.returncode == 0 and "latest test" in shown.stdout and "roc_auc" in shown.stdout
    assert "TEST_DATA" in shown.stdout and "versions of bc" in shown.stdout
    assert _ok(tagged)["tags"]["jira"] == "true"
    assert _ok(asset)["copied"] is False and _ok(asset)["uri"] == str(bc_csv.resolve())
    assert _ok(alias)["aliases"] == {"champion": 1}
    report = _ok(drifted)
    assert report["verdict"] == "retrain" and [f["feature"] for f in report["features"]] == ["a", "c"]
    snapped = _ok(snap)
    assert snapped["tags"]["snapshot"] == "true" and snapped["signal"] is None
    import getpass

    assert snapped["variables"] == {"MODEL_ID": "fraud", "MODEL_VERSION": 1, "SUBMITTED_BY": getpass.getuser()}
    assert offline.returncode != 0 and "Traceback" not in offline.stderr and offline.stderr.count("error:") == 1
    assert registry.get_version("bc/1").flag("snapshot")  # marked before the signal was attempted
    assert registry.get_version("fraud").tags["jira"] == "true"
