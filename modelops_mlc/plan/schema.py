"""The registry schema a plan registers on its model (registered-model tag ``mlc.registry_schema``)
and its check of a new version's metadata, which `mlc model register` runs before registering."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from modelops_mlc.errors import UsageError

if TYPE_CHECKING:
    from modelops_mlc.registry import Registry

__all__ = ["SCHEMA_TAG", "applied_schema", "check_version_metadata", "version_metadata"]

SCHEMA_TAG = "mlc.registry_schema"


def applied_schema(registry: "Registry", name: str) -> dict[str, Any] | None:
    """The schema `mlc plan apply` registered on model ``name`` (None: no plan applied, or no such model)."""
    from mlflow.exceptions import MlflowException

    try:
        model = registry.client.get_registered_model(name)
    except MlflowException:
        return None
    text = (model.tags or {}).get(SCHEMA_TAG)
    return json.loads(text) if text else None


def version_metadata(tags: Mapping[str, Any], assets: Iterable[str], description: str | None) -> dict[str, Any]:
    """What the schema is checked against: ``{"tags": {...}, "assets": [roles], "description": ...}``."""
    doc: dict[str, Any] = {"tags": {k: str(v) for k, v in tags.items()}, "assets": sorted(a.upper() for a in assets)}
    if description:
        doc["description"] = description
    return doc


def check_version_metadata(registry: "Registry", name: str, tags: Mapping[str, Any], assets: Iterable[str],
                           description: str | None) -> None:
    """Raise UsageError (one line naming what is missing) when the new version breaks the applied schema."""
    import jsonschema

    schema = applied_schema(registry, name)
    if schema is None:
        return
    validator = jsonschema.Draft202012Validator(schema)
    error = jsonschema.exceptions.best_match(validator.iter_errors(version_metadata(tags, assets, description)))
    if error is None:
        return
    where = "/".join(str(p) for p in error.absolute_path)
    what = error.message
    if error.validator == "contains":
        what = f"an asset {error.schema['contains']['const']} is required"
    raise UsageError(f"version metadata of {name} does not match its plan's registry schema: "
                     f"{where + ': ' if where else ''}{what}",
                     hint="give the tags with --tag KEY=VALUE and the assets with --asset ROLE=FILE "
                          "(the schema is the plan's registry-schema.json)")
