"""Compile IR graphs to torch: `gb.compile(graph) -> torch.fx.GraphModule`."""

from graphbuilder.compile.fx_builder import compile

__all__ = ["compile"]
