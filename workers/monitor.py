"""Topic handlers of the mlc-monitor process."""

from __future__ import annotations
