"""Compile IR graphs to torch: `gb.compile(graph) -> torch.fx.GraphModule`, and weights back into graphs."""

from graphbuilder.compile.fx_builder import compile
from graphbuilder.compile.weights import store_weights

__all__ = ["compile", "store_weights"]
