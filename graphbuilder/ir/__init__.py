"""The graph IR: nodes, ports, graphs, op declarations, files. Pure Python: this layer never imports torch.

Everything above it (ops, compile, export, passes, search, widget) reads and writes these objects.
"""

from graphbuilder.ir.diff import GraphDiff, NodeChange, diff
from graphbuilder.ir.errors import GraphError, GraphWarning
from graphbuilder.ir.graph import BLOCK, Graph, Node, Params, Port
from graphbuilder.ir.schema import DTYPES, Inference, OpDef, Param, TensorSpec

__all__ = ["BLOCK", "DTYPES", "Graph", "GraphDiff", "GraphError", "GraphWarning", "Inference", "Node", "NodeChange",
           "OpDef", "Param", "Params", "Port", "TensorSpec", "diff"]
