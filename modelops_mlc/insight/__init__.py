"""The read side: a model's history, lineage, KPIs, model card and report, and the audit log.

Modules load on use (``from modelops_mlc.insight.history import model_history``), so the CLI's
light commands never import what the heavy ones need.
"""
