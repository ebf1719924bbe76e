"""Runtimes and deployments: the runtime catalog, runtime matching, the deployment manager
(batch, online, canary, shadow, promote, rollback), the model server, feedback labels joined to
the prediction log, and the KServe manifest.

Names are loaded on first use, so importing this package costs nothing.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from modelops_mlc.runtimes.deployments import Deployment, DeploymentEvent, DeploymentManager
    from modelops_mlc.runtimes.feedback import FeedbackStore, ShadowComparison
    from modelops_mlc.runtimes.manifest import kserve_manifest
    from modelops_mlc.runtimes.matching import RuntimeMatch, find_runtime
    from modelops_mlc.runtimes.catalog import Runtime, RuntimeCatalog

__all__ = [
    "Deployment",
    "DeploymentEvent",
    "DeploymentManager",
    "FeedbackStore",
    "Runtime",
    "RuntimeCatalog",
    "RuntimeMatch",
    "ShadowComparison",
    "find_runtime",
    "kserve_manifest",
]

_WHERE = {
    "Deployment": "deployments",
    "DeploymentEvent": "deployments",
    "DeploymentManager": "deployments",
    "FeedbackStore": "feedback",
    "ShadowComparison": "feedback",
    "Runtime": "catalog",
    "RuntimeCatalog": "catalog",
    "RuntimeMatch": "matching",
    "find_runtime": "matching",
    "kserve_manifest": "manifest",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value
