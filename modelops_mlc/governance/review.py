"""Who may approve a review: separation of duties, shared by the CLI and the ticket path (the
engine enforces the same rule with a task listener on the review task, see bpmn/README.md)."""

from __future__ import annotations

__all__ = ["SEPARATION_OF_DUTIES_PREFIX", "separation_of_duties_refusal"]

SEPARATION_OF_DUTIES_PREFIX = "Separation of duties:"


def _same(a: str | None, b: str | None) -> bool:
    return bool(a and b) and str(a).strip().lower() == str(b).strip().lower()


def separation_of_duties_refusal(
    *, enforced: bool, submitter: str | None, approver: str | None, model: str | None = None, version: object = None
) -> str | None:
    """The refusal to show when ``approver`` may not approve what ``submitter`` submitted, else None."""
    if not enforced:
        return None
    what = f"{model}/{version}" if model and version is not None else (model or "this model")
    if not approver:
        return f"{SEPARATION_OF_DUTIES_PREFIX} the approver of {what} must be known; claim the task (or pass --user) first"
    if _same(submitter, approver):
        return (f"{SEPARATION_OF_DUTIES_PREFIX} {approver} submitted {what} and cannot approve it; "
                "another reviewer must")
    return None
