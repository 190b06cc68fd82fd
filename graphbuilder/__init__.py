"""GraphBuilder: design neural networks as editable graphs of operators, compile them to plain torch.

    import graphbuilder as gb
    g = gb.Graph("tiny")
    x = g.input("x", shape=(8, 3, 32, 32))
    y = g.add("relu", g.add("conv2d", x, out_channels=16, kernel_size=3, padding=1))
    g.output(y)
    model = gb.compile(g)
"""

from graphbuilder import ops, passes
from graphbuilder.compile import compile
from graphbuilder.ir import Graph, GraphError, Node, Param, Port, TensorSpec
from graphbuilder.ops import op

__all__ = ["Graph", "GraphError", "Node", "Param", "Port", "TensorSpec", "compile", "op", "ops",
           "passes"]
__version__ = "0.1.0"
