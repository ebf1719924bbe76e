"""The Registry against a real MLflow sqlite registry in a temporary MLC_HOME."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from modelops_mlc.errors import ModelNotFoundError, NotFoundError, RegistryError, UsageError
from modelops_mlc.registry import ModelRef, parse_model_id


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_parse_model_id() -> None:
    assert parse_model_id("fraud") == ("fraud", None, None)
    assert parse_model_id("fraud/3") == ("fraud", 3, None)
    assert parse_model_id("fraud@champion") == ("fraud", None, "champion")
    assert parse_model_id("team/fraud") == ("team/fraud", None, None)
    assert parse_model_id("team/fraud/2") == ("team/fraud", 2, None)
    with pytest.raises(UsageError):
        parse_model_id("")
    with pytest.raises(UsageError):
        parse_model_id("fraud@")


def test_register_estimator_with_tags_assets_and_resolve(registry, breast_cancer, bc_csv, tmp_path) -> None:
    X, y, model = breast_cancer
    info = registry.register(
        "bc", estimator=model, input_example=X.head(3),
        tags={"run_test": True, "TAG": "fraud-svc", "target": "target"},
        assets={"TEST_DATA": bc_csv},
    )
    assert (info.name, info.version) == ("bc", 1)
    assert info.tags == {"run_test": "true", "TAG": "fraud-svc", "target": "target"}
    assert info.flag("run_test") and not info.flag("jira")
    assert "sklearn" in info.flavors and "python_function" in info.flavors
    assert info.input_columns() == list(X.columns)
    assert info.run_id and info.created_at is not None

    asset = info.assets["TEST_DATA"]
    assert asset.copied and asset.sha256 == _sha(bc_csv) and asset.size == bc_csv.stat().st_size
    local = registry.asset_path("bc/1", "TEST_DATA", verify=True)
    assert local is not None and local.read_bytes() == bc_csv.read_bytes()
    assert str(registry.settings.home) in str(local)  # artifacts live under MLC_HOME
    assert registry.asset_path("bc", "REFERENCE_DATA") is None

    second = registry.register("bc", estimator=model, input_example=X.head(3))
    assert second.version == 2
    assert registry.resolve("bc") == ModelRef(name="bc", version=2)
    assert registry.resolve("bc/1").version == 1
    registry.set_alias("bc", "champion", 1)
    assert registry.resolve("bc@champion").version == 1
    assert registry.get_version("bc@champion").aliases == ["champion"]

    models = registry.list_models()
    assert [(m.name, m.latest_version, m.versions, m.aliases) for m in models] == [("bc", 2, 2, {"champion": 1})]
    versions = registry.list_versions("bc")
    assert [(v.version, v.aliases) for v in versions] == [(2, []), (1, ["champion"])]

    loaded = registry.load_pyfunc("bc@champion")
    assert list(loaded.predict(X.head(5))) == list(model.predict(X.head(5)))
    # nothing was written relative to the working directory, and MLflow's globals are as before
    assert not (tmp_path / "mlruns").exists()


def test_register_from_run_and_from_directory(registry, breast_cancer, tmp_path) -> None:
    import mlflow.sklearn

    X, _, model = breast_cancer
    with registry.start_run("by-hand") as run:
        mlflow.sklearn.log_model(model, name="model", input_example=X.head(2), pip_requirements=["scikit-learn"])
    from_run = registry.register("bc", run_id=run.info.run_id, tags={"framework": "sklearn"})
    assert from_run.version == 1 and from_run.run_id == run.info.run_id and "sklearn" in from_run.flavors

    saved = tmp_path / "saved-model"
    mlflow.sklearn.save_model(model, str(saved), input_example=X.head(2), pip_requirements=["scikit-learn"])
    from_dir = registry.register("bc", path=saved)
    assert from_dir.version == 2 and "sklearn" in from_dir.flavors
    assert from_dir.input_columns() == list(X.columns)
    assert list(registry.load_pyfunc("bc/2").predict(X.head(3))) == list(model.predict(X.head(3)))


def test_aliases_move_together_or_not_at_all(registry, breast_cancer) -> None:
    X, _, model = breast_cancer
    for _ in range(3):
        registry.register("bc", estimator=model)
    assert registry.move_aliases("bc", {"champion": 1, "challenger": 2}) == {"champion": 1, "challenger": 2}
    assert registry.move_aliases("bc", {"champion": 2, "challenger": 3}) == {"champion": 2, "challenger": 3}
    with pytest.raises(ModelNotFoundError, match="no version 9"):
        registry.move_aliases("bc", {"champion": 3, "challenger": 9})
    assert registry.resolve("bc@champion").version == 2  # untouched: the bad target was caught first
    with pytest.raises(UsageError):
        registry.set_alias("bc", "7", 1)


def test_unknown_model_version_alias(registry, breast_cancer) -> None:
    _, _, model = breast_cancer
    with pytest.raises(ModelNotFoundError, match="model 'nope' not found"):
        registry.resolve("nope")
    with pytest.raises(ModelNotFoundError, match="not found"):
        registry.get_version("nope@champion")
    registry.register("bc", estimator=model)
    with pytest.raises(ModelNotFoundError, match=r"has no version 5 \(latest is 1\)"):
        registry.resolve("bc/5")
    with pytest.raises(ModelNotFoundError, match="has no alias 'champion'"):
        registry.resolve("bc@champion")
    with pytest.raises(NotFoundError, match="run 'feedbeef' not found"):
        registry.register("bc", run_id="feedbeef")


def test_model_tags_and_run_facts_for_workers(registry, breast_cancer) -> None:
    """What the workers read through the SDK instead of MLflow's client: a registered model's own tags,
    a run's artifacts and its experiment."""
    X, _, model = breast_cancer
    with pytest.raises(ModelNotFoundError, match="model 'nope' not found"):
        registry.model_tags("nope")
    info = registry.register("bc", estimator=model, input_example=X.head(2), tags={"risk_tier": "LOW"})
    assert registry.model_tags("bc") == {}  # a version tag is not the registered model's
    registry.client.set_registered_model_tag("bc", "risk_tier", "HIGH")
    assert registry.model_tags("bc") == {"risk_tier": "HIGH"}
    assert info.run_id and "model_card.md" not in registry.run_artifacts(info.run_id)
    registry.client.log_text(info.run_id, "# card", "model_card.md")
    registry.client.log_text(info.run_id, "{}", "cards/old.json")
    assert {"model_card.md", "cards"} <= set(registry.run_artifacts(info.run_id))
    assert registry.run_artifacts(info.run_id, "cards") == ["cards/old.json"]
    assert registry.run_experiment_id(info.run_id) == registry.experiment_id


def test_bad_files_and_unreadable_models(registry, breast_cancer, tmp_path) -> None:
    _, _, model = breast_cancer
    with pytest.raises(UsageError, match="model directory not found"):
        registry.register("bc", path=tmp_path / "missing")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(RegistryError, match="no MLmodel"):
        registry.register("bc", path=empty)
    garbage = tmp_path / "garbage"
    garbage.mkdir()
    (garbage / "MLmodel").write_text("{{{ not yaml :::\n  - [")
    with pytest.raises(RegistryError, match="unreadable MLmodel"):
        registry.register("bc", path=garbage)
    with pytest.raises(UsageError, match="exactly one"):
        registry.register("bc")
    with pytest.raises(UsageError, match="file not found"):
        registry.register("bc", estimator=model, assets={"TEST_DATA": tmp_path / "nope.csv"})
    assert registry.list_models() == []  # nothing half-registered

    registry.register("bc", estimator=model)
    with pytest.raises(UsageError, match="file not found"):
        registry.add_asset("bc", "TEST_DATA", tmp_path / "nope.csv")
    with pytest.raises(UsageError, match="bad asset role"):
        registry.add_asset("bc", "test data", tmp_path)
    with pytest.raises(UsageError, match="reserved"):
        registry.set_tags("bc", {"mlc.asset.TEST_DATA": "x"})

    # a registered version whose artifacts disappeared cannot be loaded
    import shutil
    from urllib.parse import urlparse

    uri = registry.client.get_model_version_download_uri("bc", "1")
    shutil.rmtree(urlparse(uri).path)
    with pytest.raises(RegistryError, match="cannot load model bc/1"):
        registry.load_pyfunc("bc/1")


def test_asset_references_and_tags(registry, breast_cancer, bc_csv) -> None:
    _, _, model = breast_cancer
    registry.register("bc", estimator=model)
    ref = registry.add_asset("bc", "reference_data", bc_csv, copy=False)
    assert not ref.copied and ref.uri == str(bc_csv.resolve()) and ref.sha256 == _sha(bc_csv)
    remote = registry.add_asset("bc", "TRAINING_DATA", "s3://bucket/train.parquet")
    assert remote.uri == "s3://bucket/train.parquet" and remote.sha256 is None and not remote.copied
    info = registry.get_version("bc")
    assert set(info.assets) == {"REFERENCE_DATA", "TRAINING_DATA"}
    assert registry.asset_path(info, "REFERENCE_DATA") == bc_csv.resolve()
    assert not any(k.startswith("mlc.asset") for k in info.tags)

    info = registry.set_tags("bc/1", {"jira": False, "train": "true"})
    assert info.tags["jira"] == "false" and info.flag("train")
    info = registry.set_tags("bc/1", {"jira": None})
    assert "jira" not in info.tags


def test_snapshot_marks_or_creates(registry, breast_cancer, bc_csv) -> None:
    _, _, model = breast_cancer
    registry.register("bc", estimator=model, assets={"TEST_DATA": bc_csv})
    registry.register("bc", estimator=model)
    snap = registry.snapshot("bc", tags={"run_test": True})
    assert snap.version == 2 and snap.tags["snapshot"] == "true" and snap.tags["run_test"] == "true"
    assert "snapshot_at" in snap.tags
    first = registry.snapshot("bc", version=1)
    assert first.version == 1 and first.flag("snapshot")
    fresh = registry.snapshot("bc", version=1, new=True)
    assert fresh.version == 3 and fresh.source == first.source
    assert fresh.tags["mlc.copied_from"] == "1" and "TEST_DATA" in fresh.assets
    with pytest.raises(ModelNotFoundError):
        registry.snapshot("bc", version=10)


def test_mlflow_global_uri_is_restored(registry, breast_cancer, monkeypatch) -> None:
    import mlflow

    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///elsewhere.db")
    before = mlflow.get_tracking_uri()
    _, _, model = breast_cancer
    registry.register("bc", estimator=model)
    assert mlflow.get_tracking_uri() == before
    assert os.environ["MLFLOW_TRACKING_URI"] == "sqlite:///elsewhere.db"
