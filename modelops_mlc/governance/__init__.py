"""Governance of the path to production: the security scan of a model's files, and the review
rules (who may approve what) the processes and the CLI share. Pure code, no engine."""

from __future__ import annotations

from modelops_mlc.governance.review import (
    SEPARATION_OF_DUTIES_PREFIX,
    separation_of_duties_refusal,
)
from modelops_mlc.governance.scan import Finding, ScanReport, check_requirements, scan_directory

__all__ = [
    "SEPARATION_OF_DUTIES_PREFIX",
    "Finding",
    "ScanReport",
    "check_requirements",
    "scan_directory",
    "separation_of_duties_refusal",
]
