"""bpmn/mlc-canary-slo.dmn as the process and Camunda Modeler read it (the engine's verdicts are in
tests/integration/canary/test_canary_slo_decision.py)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

DMN = "{https://www.omg.org/spec/DMN/20191111/MODEL/}"
FILE = Path(__file__).resolve().parents[3] / "bpmn" / "mlc-canary-slo.dmn"


def test_decision_table_shape():
    root = ET.parse(FILE).getroot()
    (decision,) = root.findall(f"{DMN}decision")
    assert decision.get("id") == "mlc-canary-slo"
    table = decision.find(f"{DMN}decisionTable")
    assert table.get("hitPolicy") == "FIRST"
    inputs = [i.find(f"{DMN}inputExpression/{DMN}text").text for i in table.findall(f"{DMN}input")]
    assert inputs == ["CANARY_REQUESTS", "CANARY_ERROR_RATE", "CANARY_P99_MS", "CANARY_ACCURACY"]
    assert [o.get("name") for o in table.findall(f"{DMN}output")] == ["promote", "reason"]
    rules = table.findall(f"{DMN}rule")
    assert all(len(r.findall(f"{DMN}inputEntry")) == 4 and len(r.findall(f"{DMN}outputEntry")) == 2 for r in rules)
    verdicts = [r.findall(f"{DMN}outputEntry")[0].find(f"{DMN}text").text for r in rules]
    assert verdicts == ["false"] * (len(rules) - 1) + ["true"]  # every failure rule before the one promotion
    assert "too_few_requests" in [r.get("id").removeprefix("rule_") for r in rules]
    assert root.find("{https://www.omg.org/spec/DMN/20191111/DMNDI/}DMNDI") is not None
