"""Monitoring of production models: what a monitor run checks, per-model schedules, run history,
and the triggers that start ``mlc-monitor`` (new data, registry webhooks)."""
