"""Models for the edge: a scikit-learn version exported to ONNX, checked against the original on
its test data, and kept on the version as its ``EDGE_MODEL`` asset."""

from modelops_mlc.edge.onnx_export import EDGE_MODEL, OnnxExport, Tolerance, export_onnx

__all__ = ["EDGE_MODEL", "OnnxExport", "Tolerance", "export_onnx"]
