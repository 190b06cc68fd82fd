"""Exports of a graph to where GraphBuilder is not installed, and a checker for an "Export" button.

    gb.export.to_python(graph, class_name="Net") -> str        standalone PyTorch source (python_source.py)
    gb.export.to_torchscript(graph) -> ScriptModule             (runtime.py)
    gb.export.to_exported(graph, dynamic_batch=True) -> ExportedProgram
    gb.export.to_onnx(graph, path, dynamic_batch=True) -> path  checked, atomic
    gb.export.check(graph) -> ExportReport                      per format and per node (check.py)
    gb.to_networkx(graph), gb.to_pyg(graph)                     graphs as data for GNNs (interop.py)

Layer: builds on ir, ops and compile; nothing below imports it. See docs/interop.md.
"""

from graphbuilder.export.check import ExportReport, FormatResult, check, run_onnx, run_python_source
from graphbuilder.export.interop import feature_names, op_vocabulary, to_networkx, to_pyg
from graphbuilder.export.python_source import to_python
from graphbuilder.export.runtime import example_inputs, to_exported, to_onnx, to_torchscript

__all__ = ["ExportReport", "FormatResult", "check", "example_inputs", "feature_names", "op_vocabulary", "run_onnx",
           "run_python_source", "to_exported", "to_networkx", "to_onnx", "to_pyg", "to_python", "to_torchscript"]
