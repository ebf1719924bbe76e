"""Topic handlers of the mlc-retrain process."""

from __future__ import annotations
