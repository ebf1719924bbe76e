"""Choosing a runtime for a model: match its service tag and the stage, then flavor and health.

Runtime tags that take part:

* ``stage`` — the stages the runtime serves (``QA``, ``PROD``, a comma list); required.
* ``tag`` / ``service`` / ``model_service`` — the model service tags it serves (comma list, ``*``
  for any). A runtime without one accepts any service but ranks below one that names it.

The choice is deterministic: most tags matched, then healthy before unknown, then by name.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel

from modelops_mlc.errors import NoRuntimeError
from modelops_mlc.runtimes.catalog import Runtime, RuntimeCatalog

if TYPE_CHECKING:
    from modelops_mlc.config import Settings

__all__ = ["SERVICE_TAG_KEYS", "RuntimeMatch", "find_runtime", "rank_runtimes"]

SERVICE_TAG_KEYS = ("tag", "service", "model_service")
_HEALTH_RANK = {"healthy": 0, "unknown": 1, "unhealthy": 2}


class RuntimeMatch(BaseModel):
    """The chosen runtime, its mode, why it was chosen and why the others were not."""

    runtime: Runtime
    mode: Literal["batch", "online"]
    explanation: str
    refused: dict[str, str]


def _values(raw: str) -> list[str]:
    return [v.strip() for v in raw.split(",") if v.strip()]


def _lookup(tags: dict[str, str], keys: tuple[str, ...]) -> str | None:
    lowered = {k.lower(): v for k, v in tags.items()}
    for key in keys:
        if key in lowered:
            return lowered[key]
    return None


def _assess(
    rt: Runtime, model_tag: str | None, stage: str, flavors: list[str]
) -> tuple[int, list[str]] | str:
    """Either (score, reasons it fits) or the reason it is refused."""
    fits: list[str] = []
    score = 0
    stages = _lookup(rt.tags, ("stage",))
    if stages is None:
        return f"has no stage tag (wants stage={stage})"
    if stage.lower() not in {s.lower() for s in _values(stages)}:
        return f"serves stage={stages}, not {stage}"
    score += 1
    fits.append(f"stage={stage}")

    services = _lookup(rt.tags, SERVICE_TAG_KEYS)
    if services is None or "*" in _values(services):
        fits.append("accepts any model service tag")
    elif model_tag and model_tag in _values(services):
        score += 1
        fits.append(f"serves tag {model_tag}")
    elif not model_tag:
        return f"serves tag {services} and the model has no service tag"
    else:
        return f"serves tag {services}, not {model_tag}"

    if rt.flavors and flavors:
        common = [f for f in rt.flavors if f in flavors]
        if not common:
            return f"runs flavors {', '.join(rt.flavors)}; the model has {', '.join(sorted(flavors))}"
        fits.append(f"flavor {common[0]}")
    if rt.status == "unhealthy":
        return f"unhealthy ({rt.status_reason or 'marked unhealthy'})"
    fits.append(rt.status)
    return score, fits


def rank_runtimes(
    runtimes: list[Runtime], model_tag: str | None, stage: str, flavors: list[str]
) -> tuple[list[tuple[Runtime, int, list[str]]], dict[str, str]]:
    """Eligible runtimes best first, and the refusal reason of every other one."""
    eligible: list[tuple[Runtime, int, list[str]]] = []
    refused: dict[str, str] = {}
    for rt in runtimes:
        verdict = _assess(rt, model_tag, stage, flavors)
        if isinstance(verdict, str):
            refused[rt.name] = verdict
        else:
            eligible.append((rt, verdict[0], verdict[1]))
    eligible.sort(key=lambda e: (-e[1], _HEALTH_RANK.get(e[0].status, 3), e[0].name))
    return eligible, refused


def find_runtime(
    settings: "Settings", model_tag: str | None, stage: str, flavors: list[str] | set[str] | None
) -> RuntimeMatch:
    """Pick the runtime a model version with ``model_tag`` and ``flavors`` deploys to at ``stage``."""
    runtimes = RuntimeCatalog(settings).list()
    wanted = f"tag={model_tag or '(none)'} stage={stage}"
    if not runtimes:
        raise NoRuntimeError(
            f"no runtime for {wanted}: no runtime is registered",
            hint="`mlc runtime add NAME --tag stage=QA` (batch) or `mlc runtime serve NAME --port P --tag stage=QA`",
        )
    eligible, refused = rank_runtimes(runtimes, model_tag, stage, sorted(flavors or []))
    if not eligible:
        reasons = "; ".join(f"{name}: {why}" for name, why in refused.items())
        raise NoRuntimeError(f"no runtime for {wanted}: {reasons}", reasons=refused)
    best, _, fits = eligible[0]
    explanation = f"runtime {best.name} ({best.mode}) chosen: {', '.join(fits)}"
    if len(eligible) > 1:
        explanation += f"; preferred over {', '.join(e[0].name for e in eligible[1:])} (tags matched, health, name)"
    if refused:
        explanation += "; refused " + "; ".join(f"{n}: {why}" for n, why in refused.items())
    return RuntimeMatch(runtime=best, mode=best.mode, explanation=explanation, refused=refused)
