"""The plan's thresholds and where each one lives.

Drift and accuracy thresholds are lifecycle rules: the engine runs them as the DMN decision
``mlc-monitor-criteria`` (bpmn/mlc-monitor-criteria.dmn). The plan does not copy them: it reads the
DMN and names the rule that carries each threshold, or says that no rule does. Error-rate
thresholds concern the serving path, whose figures are the model servers' Prometheus counters:
they become Prometheus alert rules (monitoring/alerts.yaml).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, replace
from pathlib import Path

from pydantic import BaseModel

__all__ = ["MONITOR_DECISION", "THRESHOLDS", "Threshold", "ThresholdHome", "locate", "tier_matches"]

MONITOR_DECISION = "mlc-monitor-criteria"
_DMN = "{https://www.omg.org/spec/DMN/20191111/MODEL/}"


@dataclass(frozen=True)
class Threshold:
    id: str
    metric: str  # psi, accuracy_drop, error_rate
    op: str  # ">" or ">="
    value: float
    action: str  # monitor, investigate, retrain, alert, page
    dmn_input: str | None = None  # the DMN input the rule tests (None: not a DMN threshold)
    dmn_verdict: str | None = None  # the verdict the DMN gives for this action

    @property
    def condition(self) -> str:
        """``PSI above 0.25``, ``error rate above 5%``."""
        name = {"psi": "PSI", "accuracy_drop": "accuracy drop", "error_rate": "error rate"}[self.metric]
        shown = f"{self.value:.0%}" if self.metric != "psi" else f"{self.value:g}"
        return f"{name} {'from' if self.op == '>=' else 'above'} {shown}"

    @property
    def words(self) -> str:
        return f"{self.condition} -> {self.action}"


THRESHOLDS: tuple[Threshold, ...] = (
    Threshold("psi_monitor", "psi", ">=", 0.1, "monitor", "MONITOR_MAX_PSI", "notify"),
    Threshold("psi_investigate", "psi", ">", 0.2, "investigate", "MONITOR_MAX_PSI", "investigate"),
    Threshold("psi_retrain", "psi", ">", 0.25, "retrain", "MONITOR_MAX_PSI", "retrain"),
    Threshold("accuracy_investigate", "accuracy_drop", ">", 0.05, "investigate", "MONITOR_ACCURACY_DROP", "investigate"),
    Threshold("accuracy_retrain", "accuracy_drop", ">", 0.10, "retrain", "MONITOR_ACCURACY_DROP", "retrain"),
    Threshold("error_rate_alert", "error_rate", ">", 0.01, "alert"),
    Threshold("error_rate_page", "error_rate", ">", 0.05, "page"),
)


class ThresholdHome(BaseModel):
    """Where a threshold takes effect."""

    id: str
    words: str  # with the figure that takes effect for the plan's risk tier (the DMN's, where it sets one)
    condition: str | None = None  # words without the action: "PSI above 0.2" (None: a plan.json of an older mlc)
    action: str | None = None
    value: float | None = None  # the figure in ``words`` (None: a plan.json of an older mlc)
    home: str  # dmn, prometheus, none
    where: str  # "mlc-monitor-criteria rule rule_psi_retrain", "monitoring/alerts.yaml MlcErrorRateHigh", ...
    note: str | None = None


def _rules(dmn: Path) -> list[tuple[str, dict[str, str], str | None]]:
    """(rule id, input expression -> entry text, verdict) of the monitor decision."""
    root = ET.parse(dmn).getroot()
    decision = next(d for d in root.iter(f"{_DMN}decision") if d.get("id") == MONITOR_DECISION)
    table = decision.find(f"{_DMN}decisionTable")
    assert table is not None
    inputs = [(i.findtext(f"{_DMN}inputExpression/{_DMN}text") or "").strip() for i in table.findall(f"{_DMN}input")]
    outputs = [o.get("name") for o in table.findall(f"{_DMN}output")]
    found = []
    for rule in table.findall(f"{_DMN}rule"):
        entries = [(e.findtext(f"{_DMN}text") or "").strip() for e in rule.findall(f"{_DMN}inputEntry")]
        outs = [(e.findtext(f"{_DMN}text") or "").strip().strip('"') for e in rule.findall(f"{_DMN}outputEntry")]
        verdict = dict(zip(outputs, outs)).get("verdict")
        found.append((rule.get("id") or "", dict(zip(inputs, entries)), verdict))
    return found


def _values(text: str) -> list[str]:
    """The comma-separated items of a FEEL unary-test list (quoted strings kept whole)."""
    items, current, quoted = [], "", False
    for ch in text:
        if ch == '"':
            quoted = not quoted
        if ch == "," and not quoted:
            items.append(current.strip())
            current = ""
        else:
            current += ch
    return [*items, current.strip()] if current.strip() else items


def tier_matches(entry: str, risk_tier: str | None) -> bool:
    """Whether a DMN input entry on RISK_TIER (``-``, ``"HIGH"``, ``"MEDIUM", null``, ``not("HIGH", "LOW")``)
    matches ``risk_tier`` (None: no tier)."""
    text = entry.strip()
    if text in ("", "-"):
        return True
    if text.startswith("not(") and text.endswith(")"):
        return not tier_matches(text[4:-1], risk_tier)
    wanted = "null" if risk_tier is None else f'"{risk_tier}"'
    return wanted in _values(text)


def locate(bpmn_dir: Path | None, risk_tier: str) -> list[ThresholdHome]:
    """Each threshold and the DMN rule (for ``risk_tier``) or alert rule that applies it."""
    dmn = bpmn_dir / f"{MONITOR_DECISION}.dmn" if bpmn_dir else None
    rules = _rules(dmn) if dmn is not None and dmn.is_file() else None
    homes = []

    def home(t: Threshold, home: str, where: str = "", note: str | None = None) -> ThresholdHome:
        return ThresholdHome(id=t.id, words=t.words, condition=t.condition, action=t.action, value=t.value, home=home,
                             where=where, note=note)

    for t in THRESHOLDS:
        if t.dmn_input is None:
            alert = "MlcErrorRateHigh" if t.action == "alert" else "MlcErrorRatePage"
            homes.append(home(t, "prometheus", f"monitoring/alerts.yaml alert {alert}"))
            continue
        if rules is None:
            homes.append(home(t, "none", note=f"{MONITOR_DECISION}.dmn not found, so it could not be checked"))
            continue
        expected = f"{t.op} {t.value:g}"
        match = next((rid for rid, entries, verdict in rules
                      if verdict == t.dmn_verdict and entries.get(t.dmn_input) == expected
                      and all(tier_matches(text, risk_tier) if name == "RISK_TIER" else text in ("", "-")
                              for name, text in entries.items() if name != t.dmn_input)), None)
        other = next(((rid, entries[t.dmn_input]) for rid, entries, verdict in rules
                      if verdict == t.dmn_verdict and tier_matches(entries.get("RISK_TIER", "-"), risk_tier)
                      and entries.get(t.dmn_input, "-") not in ("", "-")), None)
        if match:
            homes.append(home(t, "dmn", f"{MONITOR_DECISION} rule {match}"))
        elif other:
            rid, entry = other
            homes.append(home(_figure(t, entry) or t, "dmn", f"{MONITOR_DECISION} rule {rid}",
                              note=f"risk tier {risk_tier}: the decision tests {t.dmn_input} {entry} instead of the "
                                   f"default {expected}"))
        else:
            homes.append(home(t, "none", note=f"no rule of {MONITOR_DECISION} gives {t.dmn_verdict} for {t.dmn_input} "
                                              f"{expected}: the monitor does not act on it until the decision has such a rule"))
    return homes


def _figure(t: Threshold, entry: str) -> Threshold | None:
    """``t`` with the comparison of a DMN input entry (``> 0.15``), or None when the entry is no such comparison."""
    op, _, number = entry.strip().partition(" ")
    try:
        value = float(number)
    except ValueError:
        return None
    return replace(t, op=op, value=value) if op in (">", ">=") else None
