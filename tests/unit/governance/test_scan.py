"""The security scan: a pickle whose __reduce__ calls os.system is found, wherever it hides; a
clean MLflow model passes; requirements must be pinned and known; the report is recorded."""

from __future__ import annotations

import json
import os
import pickle
import shutil
from pathlib import Path

import pytest

from modelops_mlc.governance.scan import check_requirements, scan_directory, scan_version


class Malicious:
    """Unpickling this runs a shell command (never unpickled here)."""

    def __reduce__(self):
        return (os.system, ("echo pwned > /tmp/mlc-scan-test-pwned",))


@pytest.fixture(scope="module")
def model_template(tmp_path_factory: pytest.TempPathFactory, breast_cancer) -> Path:
    """An MLflow scikit-learn model directory; its requirements pinned to what is installed (MLflow
    would otherwise infer them by loading the model in a subprocess, which takes seconds)."""
    from importlib.metadata import version

    import mlflow.sklearn

    _, _, model = breast_cancer
    path = tmp_path_factory.mktemp("scan-template") / "clean"
    pins = [f"{name}=={version(name)}" for name in ("mlflow", "scikit-learn", "cloudpickle", "numpy")]
    mlflow.sklearn.save_model(model, str(path), serialization_format="cloudpickle", pip_requirements=pins)
    return path


@pytest.fixture
def clean_model(tmp_path: Path, model_template: Path) -> Path:
    return Path(shutil.copytree(model_template, tmp_path / "clean"))


@pytest.fixture
def malicious_model(tmp_path: Path, clean_model: Path) -> Path:
    """The clean model with its model.pkl replaced by the malicious pickle: the MLmodel still reads."""
    path = tmp_path / "malicious"
    shutil.copytree(clean_model, path)
    (path / "model.pkl").write_bytes(pickle.dumps(Malicious()))
    return path


def test_the_clean_model_passes(clean_model: Path) -> None:
    report = scan_directory(clean_model)
    assert report.passed, report.summary()
    assert report.files_scanned == 1  # model.pkl; MLmodel, yaml and json files are not pickles
    assert any(r.startswith("scikit-learn==") for r in report.requirements)
    assert report.scanner.startswith("picklescan ")


def test_the_malicious_pickle_is_found(malicious_model: Path) -> None:
    report = scan_directory(malicious_model)
    assert not report.passed
    assert [(f.kind, f.file) for f in report.findings] == [("unsafe-pickle", "model.pkl")]
    assert "system" in report.findings[0].detail
    assert "unsafe-pickle in model.pkl" in report.summary()
    assert not Path("/tmp/mlc-scan-test-pwned").exists()


def test_a_pickle_under_another_name_is_found_by_its_first_bytes(clean_model: Path) -> None:
    (clean_model / "weights.txt").write_bytes(pickle.dumps(Malicious(), protocol=4))
    assert [(f.kind, f.file) for f in scan_directory(clean_model).findings] == [("unsafe-pickle", "weights.txt")]


def test_requirements_must_be_pinned_and_known() -> None:
    lines = ["# comment", "", "scikit-learn==1.5.0", "pandas>=2", "numpyy==1.0", "mlflow", "pkg @ https://x/y.whl",
             "-r other.txt", "not a requirement ==="]
    findings = check_requirements(lines, "requirements.txt", known=lambda name: name != "numpyy")
    assert [(f.kind, f.detail.split()[0]) for f in findings] == [
        ("unpinned-requirement", "pandas>=2"),
        ("unknown-package", "numpyy"),
        ("unpinned-requirement", "mlflow"),
        ("unpinned-requirement", "pkg"),
        ("bad-requirement", "pip"),
        ("bad-requirement", "'not"),
    ]


def test_a_declared_package_nobody_installed_is_unknown(clean_model: Path) -> None:
    req = clean_model / "requirements.txt"
    req.write_text(req.read_text().rstrip("\n") + "\nscikit-learnn==1.0.0\n")
    [finding] = scan_directory(clean_model).findings
    assert (finding.kind, finding.file) == ("unknown-package", "requirements.txt")
    assert "scikit-learnn" in finding.detail


def test_scan_version_records_the_report(registry, clean_model: Path, malicious_model: Path) -> None:
    import mlflow

    clean = registry.register("scan-clean", path=clean_model)
    bad = registry.register("scan-bad", path=malicious_model)

    passed = scan_version(registry, clean.model_id)
    failed = scan_version(registry, bad.model_id)
    assert passed.passed and not failed.passed
    assert registry.get_version(clean.model_id).tags["security_scan"] == "passed"
    tags = registry.get_version(bad.model_id).tags
    assert tags["security_scan"] == "failed" and tags["security_scan_run"] == failed.run_id
    run = registry.client.get_run(failed.run_id)
    assert run.data.metrics["findings"] == 1 and run.data.tags["mlc.kind"] == "scan"
    with registry.mlflow_context():
        recorded = json.loads(Path(mlflow.artifacts.download_artifacts(
            run_id=failed.run_id, artifact_path="scan_report.json")).read_text())
    assert recorded["findings"][0]["kind"] == "unsafe-pickle" and recorded["model_id"] == "scan-bad/1"
