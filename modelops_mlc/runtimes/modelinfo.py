"""What deployment needs to know about a registered model version: service tag, flavors, input
columns (from the signature) and an input example for the smoke request.

Reads the registry through :class:`modelops_mlc.registry.Registry`; imports MLflow inside
functions only.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from modelops_mlc.errors import UsageError

if TYPE_CHECKING:
    from modelops_mlc.config import Settings

__all__ = [
    "ColumnSpec",
    "ModelVersionInfo",
    "describe_version",
    "example_rows",
    "parse_model_ref",
    "resolve_version",
    "signature_columns",
]

log = logging.getLogger(__name__)

SERVICE_TAG_KEYS = ("TAG", "tag", "model_service")
NUMERIC_TYPES = {"double", "float", "long", "integer", "boolean"}


@dataclass(frozen=True)
class ColumnSpec:
    """One input column of a model signature (MLflow ColSpec)."""

    name: str | None
    type: str
    required: bool = True


@dataclass
class ModelVersionInfo:
    name: str
    version: str
    tags: dict[str, str]
    service_tag: str | None
    flavors: list[str]
    inputs: list[ColumnSpec] | None  # None: no column signature (none, or a tensor signature)
    input_example: dict[str, Any] | None = None  # {"columns": [...], "data": [[...]]}
    source: str | None = None
    run_id: str | None = None

    @property
    def model_uri(self) -> str:
        return f"models:/{self.name}/{self.version}"


def _registry(settings: "Settings") -> Any:
    from modelops_mlc.registry import Registry

    return Registry(settings)


def parse_model_ref(model_id: str, version: str | int | None = None) -> str:
    """A model id for the registry: ``name``/``name/version``/``name@alias``, or ``name`` plus ``version``."""
    ref = (model_id or "").strip()
    if not ref:
        raise UsageError("empty model id")
    if version is None or str(version).strip() == "":
        return ref
    if not str(version).strip().isdigit():
        raise UsageError(f"invalid model version {version!r}: expected a number")
    from modelops_mlc.registry import parse_model_id

    name, _, _ = parse_model_id(ref)
    return f"{name}/{int(str(version).strip())}"


def resolve_version(settings: "Settings", model_id: str, version: str | int | None = None) -> tuple[str, str]:
    """Turn a model reference into (name, version); without a version the latest one."""
    ref = _registry(settings).resolve(parse_model_ref(model_id, version))
    return ref.name, str(ref.version)


def signature_columns(signature: dict[str, Any] | None) -> list[ColumnSpec] | None:
    """Column specs from a signature dict (as the registry gives it); None for tensor or no signature."""
    if not signature or not signature.get("inputs"):
        return None
    inputs = signature["inputs"]
    if isinstance(inputs, str):
        try:
            inputs = json.loads(inputs)
        except ValueError:
            return None
    cols: list[ColumnSpec] = []
    for spec in inputs:
        if not isinstance(spec, dict) or not spec.get("name") or spec.get("type") in (None, "tensor"):
            return None
        cols.append(ColumnSpec(name=str(spec["name"]), type=str(spec["type"]), required=bool(spec.get("required", True))))
    return cols


def describe_version(settings: "Settings", name: str, version: str | int, *, with_example: bool = True) -> ModelVersionInfo:
    """Tags, flavors, signature columns and (optionally) the input example of one model version."""
    registry = _registry(settings)
    mv = registry.get_version(f"{name}/{int(version)}")
    tags = {str(k): str(v) for k, v in (mv.tags or {}).items()}
    service_tag = next((tags[k] for k in SERVICE_TAG_KEYS if tags.get(k)), None)
    result = ModelVersionInfo(
        name=mv.name,
        version=str(mv.version),
        tags=tags,
        service_tag=service_tag,
        flavors=list(mv.flavors),
        inputs=signature_columns(mv.signature),
        source=mv.source,
        run_id=mv.run_id,
    )
    if with_example:
        result.input_example = _load_example(registry, result)
    return result


def _load_example(registry: Any, info: ModelVersionInfo) -> dict[str, Any] | None:
    """The saved input example as {"columns", "data"}; None when absent, not tabular or unreadable."""
    try:
        import mlflow.artifacts

        with registry.mlflow_context():
            local = mlflow.artifacts.download_artifacts(f"{info.model_uri}/input_example.json")
        with open(local, encoding="utf-8") as fh:
            raw = json.load(fh)
    except Exception as exc:  # an example is a nicety: deploy goes on with the signature
        log.debug("no input example for %s: %s", info.model_uri, exc)
        return None
    return normalise_example(raw, info.inputs)


def normalise_example(raw: Any, inputs: list[ColumnSpec] | None) -> dict[str, Any] | None:
    """Saved examples come as split frames, records or bare rows; return {"columns", "data"}."""
    names = [c.name for c in inputs] if inputs else None
    if isinstance(raw, dict) and "data" in raw:
        return {"columns": raw.get("columns") or names, "data": raw["data"]}
    if isinstance(raw, dict) and "inputs" in raw:
        return normalise_example(raw["inputs"], inputs)
    if isinstance(raw, list) and raw and isinstance(raw[0], dict):
        cols = names or list(raw[0].keys())
        return {"columns": cols, "data": [[r.get(c) for c in cols] for r in raw]}
    if isinstance(raw, list) and raw and isinstance(raw[0], list):
        return {"columns": names, "data": raw}
    if isinstance(raw, dict) and raw and all(isinstance(v, list) for v in raw.values()):
        cols = list(raw.keys())
        n = len(next(iter(raw.values())))
        return {"columns": cols, "data": [[raw[c][i] for c in cols] for i in range(n)]}
    return None


_SYNTH = {"double": 0.5, "float": 0.5, "long": 1, "integer": 1, "boolean": False, "string": "a"}


def example_rows(info: ModelVersionInfo, limit: int = 3) -> dict[str, Any] | None:
    """Rows for a smoke request: the input example, else one row made from the signature."""
    if info.input_example and info.input_example.get("data"):
        return {"columns": info.input_example.get("columns"), "data": list(info.input_example["data"])[:limit]}
    if info.inputs and all(c.type in _SYNTH for c in info.inputs):
        return {"columns": [c.name for c in info.inputs], "data": [[_SYNTH[c.type] for c in info.inputs]]}
    return None
