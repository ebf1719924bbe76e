"""modelops-mlc: a model life cycle manager on a stock Camunda 7 engine and MLflow.

Importing the package has no side effects and pulls in no heavy dependency; the
subpackages (engine, registry, jobs, runtimes, tickets, store, insight) are imported
where they are used.
"""

from modelops_mlc.config import Settings, load_settings
from modelops_mlc.errors import MlcError

__version__ = "0.1.0"

__all__ = ["MlcError", "Settings", "__version__", "load_settings"]
