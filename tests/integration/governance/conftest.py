"""The hand-cranked ProcessDriver of tests/integration/bpmn, for the governance processes."""

from __future__ import annotations

import importlib.util
from pathlib import Path

_spec = importlib.util.spec_from_file_location(
    "mlc_bpmn_driver", Path(__file__).resolve().parents[1] / "bpmn" / "conftest.py")
_driver_module = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_driver_module)
ProcessDriver = _driver_module.ProcessDriver
driver = _driver_module.driver  # the module-scoped fixture: bpmn/ deployed, one driver per module
