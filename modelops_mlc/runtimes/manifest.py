"""KServe manifests for Kubernetes users: an ``InferenceService`` (serving.kserve.io/v1beta1)
serving a registered MLflow model version with KServe's MLflow runtime (V2 protocol)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from modelops_mlc.errors import UsageError

if TYPE_CHECKING:
    from modelops_mlc.config import Settings

__all__ = ["KServeManifest", "inference_service", "kserve_manifest", "service_name"]

_QUANTITY = re.compile(r"^\d+(\.\d+)?(m|k|Ki|Mi|Gi|Ti|M|G|T)?$")
_LABEL_VALUE = re.compile(r"[^A-Za-z0-9._-]")


@dataclass
class KServeManifest:
    """The InferenceService document and what the user should know about it."""

    document: dict[str, Any]
    warnings: list[str] = field(default_factory=list)

    def to_yaml(self) -> str:
        import yaml

        return yaml.safe_dump(self.document, sort_keys=False, default_flow_style=False)


def service_name(model_name: str) -> str:
    """A DNS-1123 name KServe accepts: lowercase letters, digits and '-', starting with a letter."""
    name = re.sub(r"[^a-z0-9-]+", "-", model_name.lower()).strip("-")
    name = re.sub(r"-{2,}", "-", name)
    if not name or not name[0].isalpha():
        name = f"m-{name}".rstrip("-")
    return name[:63].rstrip("-")


def _label(value: str) -> str:
    return _LABEL_VALUE.sub("-", value)[:63].strip("-._") or "x"


def _quantity(what: str, value: str) -> str:
    value = str(value).strip()
    if not _QUANTITY.match(value):
        raise UsageError(f"invalid {what} {value!r}: expected a Kubernetes quantity such as 500m, 2, 1Gi")
    return value


def _check_scale(canary_percent: int | None, min_replicas: int, max_replicas: int) -> None:
    if canary_percent is not None and not 0 <= canary_percent <= 100:
        raise UsageError(f"--canary-percent must be from 0 to 100, got {canary_percent}")
    if min_replicas < 0 or max_replicas < 1 or max_replicas < min_replicas:
        raise UsageError(f"replicas must satisfy 0 <= min ({min_replicas}) <= max ({max_replicas}), max >= 1")


def kserve_manifest(settings: "Settings", model_id: str, *, storage_uri: str | None = None, **options: Any) -> KServeManifest:
    """Build the InferenceService for ``model_id`` (``name``, ``name/version`` or ``name@alias``);
    ``options`` are :func:`inference_service`'s (canary_percent, namespace, name, replicas, resources)."""
    from modelops_mlc.errors import RegistryError
    from modelops_mlc.registry import Registry
    from modelops_mlc.runtimes.modelinfo import resolve_version

    _check_scale(options.get("canary_percent"), options.get("min_replicas", 1), options.get("max_replicas", 3))
    model_name, version = resolve_version(settings, model_id)
    warnings: list[str] = []
    if storage_uri is None:
        try:
            storage_uri = str(Registry(settings).client.get_model_version_download_uri(model_name, version))
        except Exception as exc:  # MlflowException
            raise RegistryError(f"cannot find the artifacts of {model_name}/{version}: {exc}") from exc
        if "://" not in storage_uri or storage_uri.startswith("file://"):
            warnings.append(
                f"storageUri {storage_uri} is a local path a cluster cannot read: pass --storage-uri "
                "(s3://, gs://, pvc://, ...) where the model's artifacts are reachable"
            )
    return KServeManifest(document=inference_service(model_name, version, storage_uri, **options), warnings=warnings)


def inference_service(
    model_name: str,
    version: str,
    storage_uri: str,
    *,
    canary_percent: int | None = None,
    namespace: str | None = None,
    name: str | None = None,
    min_replicas: int = 1,
    max_replicas: int = 3,
    cpu_request: str = "500m",
    cpu_limit: str = "1",
    memory_request: str = "1Gi",
    memory_limit: str = "2Gi",
) -> dict[str, Any]:
    """The InferenceService document of a resolved version (``version`` may be an alias) read from ``storage_uri``."""
    _check_scale(canary_percent, min_replicas, max_replicas)
    doc_name = service_name(name or model_name)
    metadata: dict[str, Any] = {
        "name": doc_name,
        "labels": {
            "app.kubernetes.io/managed-by": "modelops-mlc",
            "mlc.modelops.io/model": _label(model_name),
            "mlc.modelops.io/version": _label(version),
        },
        "annotations": {
            "mlc.modelops.io/model-name": model_name,
            "mlc.modelops.io/model-version": version,
            "mlc.modelops.io/model-uri": f"models:/{model_name}/{version}" if version.isdigit() else f"models:/{model_name}@{version}",
        },
    }
    if namespace:
        metadata["namespace"] = namespace
    predictor: dict[str, Any] = {"minReplicas": int(min_replicas), "maxReplicas": int(max_replicas)}
    if canary_percent is not None:
        predictor["canaryTrafficPercent"] = int(canary_percent)
    predictor["model"] = {
        "modelFormat": {"name": "mlflow"},
        "protocolVersion": "v2",
        "storageUri": storage_uri,
        "resources": {
            "requests": {"cpu": _quantity("cpu request", cpu_request), "memory": _quantity("memory request", memory_request)},
            "limits": {"cpu": _quantity("cpu limit", cpu_limit), "memory": _quantity("memory limit", memory_limit)},
        },
    }
    document = {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": metadata,
        "spec": {"predictor": predictor},
    }
    return document
