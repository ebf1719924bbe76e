"""The read side: a model's timeline across its MLC processes (lineage and KPIs build on it)."""

from modelops_mlc.insight.timeline import TimelineEvent, model_timeline

__all__ = ["TimelineEvent", "model_timeline"]
