"""Checks every generated file passes before it is written: JSON Schemas (jsonschema), the KServe
InferenceService schema (the CRD's openAPIV3Schema, schemas/), Prometheus's rule file format and
Grafana's dashboard model (grafana-foundation-sdk)."""

from __future__ import annotations

import copy
import functools
import json
from pathlib import Path
from typing import Any

from modelops_mlc.errors import MlcError

__all__ = ["PlanInvalid", "check", "check_dashboard", "check_inference_service", "strict"]

SCHEMAS = Path(__file__).with_name("schemas")


class PlanInvalid(MlcError):
    """A generated file does not validate: a bug of the plan, never written."""

    exit_code = 70


def strict(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` with unknown fields refused wherever Kubernetes would refuse them under strict field
    validation (an object with properties that neither preserves unknown fields nor allows extra ones)."""
    schema = copy.deepcopy(schema)

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if ("properties" in node and "additionalProperties" not in node
                    and not node.get("x-kubernetes-preserve-unknown-fields")):
                node["additionalProperties"] = False
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(schema)
    return schema


def check(what: str, document: Any, schema: dict[str, Any]) -> None:
    """Raise PlanInvalid naming the first place ``document`` breaks ``schema`` and the rule it breaks, never the
    offending value (it may be a secret, such as a password in a URI)."""
    import jsonschema

    validator = jsonschema.Draft202012Validator(schema)
    error = jsonschema.exceptions.best_match(validator.iter_errors(document))
    if error is not None:
        path = [str(p) for p in error.absolute_path]
        if error.validator == "additionalProperties" and isinstance(error.instance, dict):
            known = error.schema.get("properties", {}) if isinstance(error.schema, dict) else {}
            path.append(",".join(sorted(str(k) for k in error.instance if k not in known)))  # field names only
        rule = json.dumps({error.validator: error.validator_value}, default=str)  # the schema's words, not the data's
        raise PlanInvalid(f"{what} does not validate at {'/'.join(path) or '(root)'}: it breaks the schema rule "
                          f"{rule if len(rule) <= 160 else error.validator}")


@functools.lru_cache(maxsize=1)
def _isvc_schema() -> dict[str, Any]:
    return strict(json.loads((SCHEMAS / "kserve-inferenceservice-v1beta1.json").read_text()))


def check_inference_service(document: dict[str, Any]) -> None:
    check("the KServe InferenceService", document, _isvc_schema())


def check_dashboard(document: dict[str, Any]) -> None:
    """The JSON loads as grafana-foundation-sdk's Dashboard model (panels and Prometheus queries typed by
    the SDK's plugin models) and loses nothing on the way (the model may add its defaults)."""
    from grafana_foundation_sdk.cog.encoder import JSONEncoder
    from grafana_foundation_sdk.cog.plugins import register_default_plugins
    from grafana_foundation_sdk.models.dashboard import Dashboard

    register_default_plugins()
    try:
        model = Dashboard.from_json(document)
        again = json.loads(json.dumps(model, cls=JSONEncoder))
    except Exception as exc:
        raise PlanInvalid(f"the Grafana dashboard does not load as a dashboard model: {exc}") from exc
    lost = _lost(document, again)
    if lost is not None:
        raise PlanInvalid(f"the Grafana dashboard's {lost} is not part of Grafana's dashboard model")
    for field in ("title", "uid", "panels", "schemaVersion"):
        if field not in document:
            raise PlanInvalid(f"the Grafana dashboard has no {field}")


def _lost(given: Any, loaded: Any, path: str = "") -> str | None:
    """The first place of ``given`` that ``loaded`` lacks or changed (None: all kept)."""
    if isinstance(given, dict) and isinstance(loaded, dict):
        for key, value in given.items():
            if key not in loaded:
                return f"{path}/{key}"
            found = _lost(value, loaded[key], f"{path}/{key}")
            if found:
                return found
        return None
    if isinstance(given, list) and isinstance(loaded, list) and len(given) == len(loaded):
        return next((f for i, (a, b) in enumerate(zip(given, loaded)) if (f := _lost(a, b, f"{path}[{i}]"))), None)
    return None if given == loaded else path or "(root)"


PROMETHEUS_RULES = {
    "type": "object", "required": ["groups"], "additionalProperties": False,
    "properties": {"groups": {"type": "array", "minItems": 1, "items": {
        "type": "object", "required": ["name", "rules"], "additionalProperties": False,
        "properties": {
            "name": {"type": "string", "minLength": 1},
            "interval": {"type": "string"},
            "rules": {"type": "array", "items": {
                "type": "object", "required": ["alert", "expr"], "additionalProperties": False,
                "properties": {
                    "alert": {"type": "string", "pattern": "^[a-zA-Z_][a-zA-Z0-9_]*$"},
                    "expr": {"type": "string", "minLength": 1},
                    "for": {"type": "string", "pattern": r"^([0-9]+(ms|s|m|h|d|w|y))+$"},
                    "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                    "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
                }}},
        }}}},
}
"""Prometheus's rule file format (alerting rules), as `promtool check rules` reads it."""
