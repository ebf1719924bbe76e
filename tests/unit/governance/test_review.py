"""Separation of duties: the submitter of a version cannot approve it, and the approver must be known."""

from __future__ import annotations

from modelops_mlc.governance import separation_of_duties_refusal


def test_the_submitter_is_refused_whatever_the_case() -> None:
    refusal = separation_of_duties_refusal(enforced=True, submitter="alice", approver="Alice", model="churn", version=3)
    assert refusal == "Separation of duties: Alice submitted churn/3 and cannot approve it; another reviewer must"


def test_someone_else_may_approve() -> None:
    assert separation_of_duties_refusal(enforced=True, submitter="alice", approver="bob", model="churn", version=3) is None


def test_an_unknown_approver_is_refused_only_when_enforced() -> None:
    assert "must be known" in separation_of_duties_refusal(enforced=True, submitter="alice", approver=None, model="m")
    assert separation_of_duties_refusal(enforced=False, submitter="alice", approver="alice") is None
