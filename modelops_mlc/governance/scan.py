"""The security scan of a model directory: unsafe pickle content (picklescan) and the declared
requirements (unpinned or unknown packages).

    report = scan_directory(Path("model/"))
    report.passed, report.findings, report.summary()

A requirement is *unpinned* when it names no exact version (``==``/``===``) and *unknown* when no
distribution of that name is installed where the scan runs: nobody here has vouched for it, and
a typo-squatted name would be one.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel, Field

from modelops_mlc.errors import RegistryError, first_line

if TYPE_CHECKING:
    from modelops_mlc.registry import ModelVersionInfo, Registry

__all__ = ["REQUIREMENT_FILES", "SCAN_TAG", "Finding", "ScanReport", "check_requirements", "installed", "scan_directory",
           "scan_version"]

SCAN_TAG = "security_scan"  # version tag: passed / failed, with the run in security_scan_run

REQUIREMENT_FILES = ("requirements.txt",)  # what an MLflow model directory declares for pip
# Files the pickle scanner reads: pickles by name, archives that may hold pickles (zip, PyTorch,
# numpy, skops), and any file that starts like a pickle of protocol 2 or later, whatever its name.
PICKLE_SUFFIXES = frozenset({".pkl", ".pickle", ".joblib", ".dat", ".data", ".bin", ".pt", ".pth", ".ckpt",
                             ".npy", ".npz", ".zip", ".7z", ".skops"})


class Finding(BaseModel):
    """One problem the scan found."""

    kind: str  # unsafe-pickle / unreadable-pickle / unpinned-requirement / unknown-package / bad-requirement
    file: str  # relative to the scanned directory
    detail: str

    def line(self) -> str:
        return f"{self.kind} in {self.file}: {self.detail}"


class ScanReport(BaseModel):
    """What the scan looked at and found; it passes when it found nothing."""

    scanner: str
    model_id: str | None = None
    run_id: str | None = None  # the MLflow run holding scan_report.json
    files_scanned: int = 0
    requirements: list[str] = Field(default_factory=list)
    findings: list[Finding] = Field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.findings

    def summary(self, limit: int = 10) -> str:
        """One line per finding (at most ``limit``), for a ticket."""
        if self.passed:
            return f"no findings in {self.files_scanned} files scanned"
        lines = [f.line() for f in self.findings[:limit]]
        if len(self.findings) > limit:
            lines.append(f"... and {len(self.findings) - limit} more")
        return "; ".join(lines)


def installed(name: str) -> bool:
    """Whether a distribution called ``name`` is installed in this environment."""
    from importlib.metadata import PackageNotFoundError, distribution

    try:
        distribution(name)
    except PackageNotFoundError:
        return False
    return True


def check_requirements(lines: Iterable[str], file: str, *, known: Callable[[str], bool] = installed) -> list[Finding]:
    """Findings for pip requirement lines: unparseable, unpinned, or naming an unknown package."""
    from packaging.requirements import InvalidRequirement, Requirement

    findings: list[Finding] = []
    for raw in lines:
        text = raw.split(" #", 1)[0].strip()
        if not text or text.startswith("#"):
            continue
        if text.startswith("-"):  # -r other.txt, --index-url ...: pip options are not package pins
            findings.append(Finding(kind="bad-requirement", file=file, detail=f"pip option {text!r} is not allowed"))
            continue
        try:
            req = Requirement(text)
        except InvalidRequirement as exc:
            findings.append(Finding(kind="bad-requirement", file=file, detail=f"{text!r}: {exc}"))
            continue
        if req.url:
            findings.append(Finding(kind="unpinned-requirement", file=file, detail=f"{req.name} comes from a URL"))
        elif not any(s.operator in ("==", "===") and "*" not in s.version for s in req.specifier):
            findings.append(Finding(kind="unpinned-requirement", file=file,
                                    detail=f"{text} names no exact version (use {req.name}==X.Y.Z)"))
        if not known(req.name):
            findings.append(Finding(kind="unknown-package", file=file,
                                    detail=f"{req.name} is not a package known to this environment"))
    return findings


def scan_directory(root: Path, *, known: Callable[[str], bool] = installed) -> ScanReport:
    """Scan every file under ``root`` for dangerous pickle imports and check its requirement files."""
    from picklescan.scanner import scan_file_path

    report = ScanReport(scanner=_scanner_name())
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = path.relative_to(root).as_posix()
        if path.name in REQUIREMENT_FILES:
            lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
            report.requirements += [ln.strip() for ln in lines if ln.strip() and not ln.startswith("#")]
            report.findings += check_requirements(lines, rel, known=known)
            continue
        if not _may_hold_pickle(path):
            continue
        result = scan_file_path(str(path))
        if result.scanned_files:
            report.files_scanned += 1
        if result.scan_err:
            report.findings.append(Finding(kind="unreadable-pickle", file=rel,
                                           detail="the scanner could not parse this pickle"))
        for g in result.globals:
            if getattr(g.safety, "value", g.safety) == "dangerous":
                report.findings.append(Finding(kind="unsafe-pickle", file=rel,
                                               detail=f"imports {g.module}.{g.name}"))
    return report


def _may_hold_pickle(path: Path) -> bool:
    import zipfile

    if path.suffix.lower() in PICKLE_SUFFIXES:
        return True
    with path.open("rb") as f:
        head = f.read(2)
    return (len(head) == 2 and head[0] == 0x80 and 2 <= head[1] <= 5) or zipfile.is_zipfile(path)


def _scanner_name() -> str:
    from importlib.metadata import version

    return f"picklescan {version('picklescan')}"


def scan_version(registry: "Registry", model_id: str, *, run_tags: Mapping[str, str] | None = None) -> ScanReport:
    """Download a registered version's files, scan them, and record the report: an MLflow run
    (``scan_report.json``, metric ``findings``) and the version tags ``security_scan`` and
    ``security_scan_run``.

    ``run_tags`` go on the run; when they carry a worker task's key (``mlc.dedupe_key``), the report
    a finished run of that task holds is the result (a redelivered task logs no second scan run),
    and a run its killed delivery left RUNNING is marked KILLED."""
    import mlflow

    from modelops_mlc.jobs.runs import DEDUPE_TAG, settle_task_runs
    from modelops_mlc.registry.quiet import quiet_mlflow

    info = registry.get_version(model_id)
    key = (run_tags or {}).get(DEDUPE_TAG)
    done = settle_task_runs(registry, key, "scan") if key else []
    if done:
        with registry.mlflow_context(), quiet_mlflow():
            report = ScanReport.model_validate(mlflow.artifacts.load_dict(f"runs:/{done[0].info.run_id}/scan_report.json"))
        report.run_id = done[0].info.run_id
    else:
        report = _scan_files(registry, info)
        with registry.start_run(f"scan-{info.name}-v{info.version}", {
            "mlc.kind": "scan", "mlc.model_name": info.name, "mlc.model_version": info.version, **(run_tags or {}),
        }) as run:
            report.run_id = run.info.run_id
            mlflow.log_metric("findings", len(report.findings))
            mlflow.log_metric("files_scanned", report.files_scanned)
            mlflow.log_dict(report.model_dump(mode="json"), "scan_report.json")
    registry.set_tags(info.ref, {SCAN_TAG: "passed" if report.passed else "failed", f"{SCAN_TAG}_run": report.run_id})
    return report


def _scan_files(registry: "Registry", info: "ModelVersionInfo") -> ScanReport:
    import mlflow

    from modelops_mlc.registry.quiet import quiet_mlflow

    with tempfile.TemporaryDirectory(prefix="mlc-scan-") as tmp:
        try:
            with registry.mlflow_context(), quiet_mlflow():
                local = mlflow.artifacts.download_artifacts(artifact_uri=info.uri, dst_path=tmp)
        except Exception as exc:
            raise RegistryError(f"cannot download {info.model_id} to scan it: {first_line(exc)}") from exc
        report = scan_directory(Path(local))
    report.model_id = info.model_id
    return report
