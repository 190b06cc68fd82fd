"""The op library: every op declared once (`declare.py` says how), registered by name.

    >>> import graphbuilder as gb
    >>> "conv2d" in gb.ops.names()
    True

Add an op: declare it in the module of its category with `module_op` (an nn.Module class) or `function_op`
(a torch function), or register your own class with `@gb.op`. The palette, forms, docs and checks follow.
"""

from graphbuilder.ir.registry import all_ops, get, names, unregister
from graphbuilder.ops import (
    activation,
    attention,
    convolution,
    detection,  # Hit-Detector search space (arXiv:2003.11818), with search_space
    glore,  # GloRe global reasoning (arXiv:1811.12814)
    lowlevel,
    neuron_graph,  # prune/grow neuron graphs (arXiv:2108.02231)
    normalization,
    pooling,
    recurrent,
    research,  # the research palette: operators from efficient-network papers
    search_space,
    structure,
    tensor,
)
from graphbuilder.ops.declare import (
    TORCH_DTYPES,
    declare,
    example,
    function_op,
    meta_flops,
    meta_infer,
    module_op,
    named,
    op,
)

__all__ = ["TORCH_DTYPES", "all_ops", "declare", "example", "function_op", "get", "meta_flops", "meta_infer",
           "module_op",           "named", "names", "op", "schema_json", "unregister"]

_LIBRARY = (activation, attention, convolution, normalization, pooling, structure, tensor, lowlevel, recurrent)
_LIBRARY += (detection, search_space)
_LIBRARY += (glore,)
_LIBRARY += (neuron_graph,)
_LIBRARY += (research,)


def schema_json() -> list[dict]:
    """Every op's declaration as JSON (name, category, doc, typed params, ports): the editor's palette."""
    return [opdef.to_json() for opdef in all_ops()]
