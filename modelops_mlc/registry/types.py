"""What the registry hands out: plain pydantic records, free of MLflow types."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

__all__ = ["AssetInfo", "ModelRef", "ModelVersionInfo", "RegisteredModelInfo"]


class ModelRef(BaseModel):
    """A resolved model id: registered model name and version number."""

    name: str
    version: int

    @property
    def uri(self) -> str:
        return f"models:/{self.name}/{self.version}"

    def __str__(self) -> str:
        return f"{self.name}/{self.version}"


class AssetInfo(BaseModel):
    """A data file attached to a version under a role (TEST_DATA, TRAINING_DATA, ...)."""

    uri: str
    sha256: str | None = None
    copied: bool = False
    size: int | None = None
    added_at: datetime | None = None


class ModelVersionInfo(BaseModel):
    """One registered model version (a snapshot) with everything a lifecycle step needs."""

    name: str
    version: int
    tags: dict[str, str] = Field(default_factory=dict)
    aliases: list[str] = Field(default_factory=list)
    run_id: str | None = None
    source: str | None = None
    flavors: list[str] = Field(default_factory=list)
    signature: dict[str, Any] | None = None
    assets: dict[str, AssetInfo] = Field(default_factory=dict)
    test_results: dict[str, Any] | None = None
    description: str | None = None
    status: str | None = None
    created_at: datetime | None = None

    @property
    def ref(self) -> ModelRef:
        return ModelRef(name=self.name, version=self.version)

    @property
    def uri(self) -> str:
        return f"models:/{self.name}/{self.version}"

    @property
    def model_id(self) -> str:
        return f"{self.name}/{self.version}"

    def flag(self, key: str, default: bool = False) -> bool:
        """A boolean version tag such as ``train``, ``run_test`` or ``jira``."""
        value = self.tags.get(key)
        if value is None:
            return default
        return value.strip().lower() in {"1", "true", "yes", "y", "on"}

    def input_columns(self) -> list[str] | None:
        """Column names of the signature's inputs, or None without a column signature."""
        if not self.signature or not self.signature.get("inputs"):
            return None
        names = [c.get("name") for c in self.signature["inputs"]]
        return names if all(names) else None


class RegisteredModelInfo(BaseModel):
    """A registered model: its name, versions and aliases (alias -> version)."""

    name: str
    latest_version: int | None = None
    versions: int = 0
    aliases: dict[str, int] = Field(default_factory=dict)
    tags: dict[str, str] = Field(default_factory=dict)
    description: str | None = None
    updated_at: datetime | None = None
