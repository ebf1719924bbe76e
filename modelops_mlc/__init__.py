"""modelops-mlc: a model life cycle manager on a stock Camunda 7 engine and MLflow.

Importing the package has no side effects and pulls in no heavy dependency; ``Settings`` and
``load_settings`` load pydantic-settings only when first used (keeps ``mlc --help`` fast).
"""

from typing import TYPE_CHECKING, Any

from modelops_mlc.errors import MlcError

if TYPE_CHECKING:
    from modelops_mlc.config import Settings, load_settings

__version__ = "0.1.0"

__all__ = ["MlcError", "Settings", "__version__", "load_settings"]


def __getattr__(name: str) -> Any:
    if name in ("Settings", "load_settings"):
        from modelops_mlc import config

        return getattr(config, name)
    raise AttributeError(f"module 'modelops_mlc' has no attribute {name!r}")
