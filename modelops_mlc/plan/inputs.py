"""What a team states about a model: the inputs of ``mlc plan``, from flags or a YAML file.

Each value is checked by pydantic; :func:`load_inputs` turns the first problem into one line that
names the field and, for a choice, the allowed values.
"""

from __future__ import annotations

import enum
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from modelops_mlc.errors import UsageError

__all__ = [
    "DeploymentTarget",
    "ExistingStack",
    "GovernanceLevel",
    "Hardware",
    "ModelFormat",
    "ModelType",
    "PlanData",
    "PlanInputs",
    "ScaleRequirements",
    "load_inputs",
]


def _choice(name: str, values: str, doc: str) -> Any:
    """A str enum whose members are the allowed values (``-`` becomes ``_`` in the member name)."""
    made = enum.Enum(name, [(v.replace("-", "_"), v) for v in values.split()], type=str, module=__name__)
    made.__doc__ = doc
    return made


ModelType = _choice("ModelType", "classification regression clustering ranking generative time-series "
                                 "recommendation computer-vision nlp", "The kind of model.")
DeploymentTarget = _choice("DeploymentTarget", "batch online edge embedded hybrid", "Where predictions are made.")
GovernanceLevel = _choice("GovernanceLevel", "experimental staging production", "How much process the model takes.")
ExistingStack = _choice("ExistingStack", "mlflow kubeflow vertex_ai sagemaker azure_ml databricks neptune wandb custom",
                        "What the team already runs.")
ModelFormat = _choice("ModelFormat", "sklearn xgboost lightgbm pytorch tensorflow onnx custom",
                      "The library the model is built with; decides whether it can be exported to ONNX.")
Hardware = _choice("Hardware", "cpu gpu", "What serves the model.")


class ScaleRequirements(BaseModel):
    """At least one of the four figures."""

    model_config = ConfigDict(extra="forbid")

    rps: float | None = Field(default=None, gt=0)
    latency_ms: float | None = Field(default=None, gt=0)
    data_volume_gb: float | None = Field(default=None, gt=0)
    concurrent_users: int | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _one_given(self) -> "ScaleRequirements":
        if all(v is None for v in (self.rps, self.latency_ms, self.data_volume_gb, self.concurrent_users)):
            raise ValueError("give at least one of rps, latency_ms, data_volume_gb, concurrent_users")
        return self


class PlanData(BaseModel):
    """Files the plan's schedules read each time they fire (the monitor and the retrain)."""

    model_config = ConfigDict(extra="forbid")

    current: str | None = None  # what each monitor run compares with the reference; refreshed by your pipeline
    reference: str | None = None  # default: the version's TRAINING_DATA asset
    training: str | None = None  # what a scheduled retrain trains on
    batch_input: str | None = None  # what the batch job scores
    batch_output: str | None = None


class PlanInputs(BaseModel):
    """The requirements of one model."""

    model_config = ConfigDict(extra="forbid", use_enum_values=False)

    model_name: str = Field(min_length=1)
    model_type: ModelType
    deployment_target: DeploymentTarget
    scale_requirements: ScaleRequirements
    governance_level: GovernanceLevel
    existing_stack: ExistingStack | None = None
    team_size: int | None = Field(default=None, ge=1)
    model_format: ModelFormat | None = None
    hardware: Hardware = Hardware.cpu
    estimators: int | None = Field(default=None, ge=1)  # members of an ensemble (trees, models)
    risk_tier: str | None = None  # HIGH, MEDIUM, LOW; default from the governance level
    tracking_uri: str | None = None  # default: this installation's MLFLOW_TRACKING_URI
    artifact_location: str | None = None
    storage_uri: str | None = None  # where a cluster reads the model (default: its registered artifacts)
    namespace: str | None = None
    data: PlanData = Field(default_factory=PlanData)

    @field_validator("risk_tier")
    @classmethod
    def _tier(cls, value: str | None) -> str | None:
        if value is None:
            return None
        tier = value.strip().upper()
        if tier not in ("HIGH", "MEDIUM", "LOW"):
            raise ValueError("allowed values: HIGH, MEDIUM, LOW")
        return tier

    @field_validator("tracking_uri")
    @classmethod
    def _no_credentials(cls, value: str | None) -> str | None:
        from urllib.parse import urlsplit

        if value and "://" in value and (urlsplit(value).password or urlsplit(value).username):
            raise ValueError("must not carry credentials: set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD "
                             "(or MLFLOW_TRACKING_TOKEN) in the environment instead")
        return value


def _describe(error: dict[str, Any]) -> str:
    where = ".".join(str(p) for p in error.get("loc", ())) or "inputs"
    kind = error.get("type", "")
    ctx = error.get("ctx") or {}
    if kind == "enum":
        return f"{where}: {error.get('input')!r} is not allowed; allowed values: {ctx.get('expected', '').replace(chr(39), '')}"
    if kind == "missing":
        return f"{where} is required"
    if kind == "extra_forbidden":
        return f"{where}: unknown input (see `mlc plan --help`)"
    message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
    return f"{where}: {message}"


def load_inputs(values: dict[str, Any]) -> PlanInputs:
    """Validate ``values``; the first problem becomes a UsageError of one line."""
    try:
        return PlanInputs.model_validate(values)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise UsageError(f"invalid plan input: {_describe(first)}") from None


def read_yaml(path: Path) -> dict[str, Any]:
    """The inputs a YAML file states (a mapping)."""
    import yaml

    if not path.is_file():
        raise UsageError(f"plan inputs not found: {path}")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise UsageError(f"{path} is not YAML: {str(exc).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise UsageError(f"{path} must hold a mapping of plan inputs")
    return data
