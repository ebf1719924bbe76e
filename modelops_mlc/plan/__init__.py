"""`mlc plan`: a team's requirements -> a validated MLOps setup (tracking, registry schema, deployment,
monitoring, retraining, PLAN.md), and `mlc plan apply` to make it real on the running stack.

Importing this package is light: pydantic only; the registry, the engine, jsonschema and Grafana's
SDK are imported by the functions that use them.
"""

from modelops_mlc.plan.apply import ApplyResult, ApplyStep, apply_plan, read_plan
from modelops_mlc.plan.inputs import PlanInputs, load_inputs, read_yaml
from modelops_mlc.plan.outputs import Plan, PlanFiles, build_plan, write_plan
from modelops_mlc.plan.rules import RULES, Decisions, PlanConflict, Rule, decide
from modelops_mlc.plan.schema import SCHEMA_TAG, check_version_metadata
from modelops_mlc.plan.thresholds import THRESHOLDS, Threshold, ThresholdHome, locate

__all__ = [
    "RULES",
    "SCHEMA_TAG",
    "THRESHOLDS",
    "ApplyResult",
    "ApplyStep",
    "Decisions",
    "Plan",
    "PlanConflict",
    "PlanFiles",
    "PlanInputs",
    "Rule",
    "Threshold",
    "ThresholdHome",
    "apply_plan",
    "build_plan",
    "check_version_metadata",
    "decide",
    "load_inputs",
    "locate",
    "read_plan",
    "read_yaml",
    "write_plan",
]
