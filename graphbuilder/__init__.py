"""GraphBuilder: design neural networks as editable graphs of operators, compile them to plain torch.

    import graphbuilder as gb
    g = gb.Graph("tiny")
    x = g.input("x", shape=(8, 3, 32, 32))
    y = g.add("relu", g.add("conv2d", x, out_channels=16, kernel_size=3, padding=1))
    g.output(y)
    model = gb.compile(g)
"""

from graphbuilder import datasets, export, models, ops, passes, search
from graphbuilder.compile import compile, store_weights
from graphbuilder.compile import weights_io as _weights_io  # noqa: F401  (registers WEIGHTS_IO)
from graphbuilder.export import to_networkx, to_pyg
from graphbuilder.importer import from_module
from graphbuilder.ir import Graph, GraphDiff, GraphError, GraphWarning, Node, Param, Port, TensorSpec, diff
from graphbuilder.ops import op

__all__ = ["Graph", "GraphDiff", "GraphError", "GraphWarning", "Node", "Param", "Port", "TensorSpec", "compile",
           "export", "from_module", "op", "ops", "passes", "store_weights", "to_networkx", "to_pyg", "GraphWidget"]
__all__ += ["datasets", "diff", "models", "search"]
__version__ = "0.1.0"


def __getattr__(name: str) -> object:
    # GraphWidget is imported on first use so `import graphbuilder` does not load ipywidgets.
    if name == "GraphWidget":
        from graphbuilder.widget import GraphWidget

        return GraphWidget
    raise AttributeError(f"module 'graphbuilder' has no attribute {name!r}")
