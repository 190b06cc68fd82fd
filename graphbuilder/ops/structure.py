"""Structural ops: graph inputs and outputs, identity, and learnable tensors and constants."""

from __future__ import annotations

from typing import Any

from torch import nn

from graphbuilder.ir.schema import DTYPES, Inference, OpDef, Param, TensorSpec
from graphbuilder.ops.declare import MAX_DIM, TORCH_DTYPES, Specs, choice, declare, example, module_op, named, number
from graphbuilder.ops.modules.tensors import Constant, Parameter


def _input_infer(opdef: OpDef, params: dict[str, Any], specs: Specs) -> Inference:
    return Inference((TensorSpec(tuple(params["shape"]), params["dtype"]),))


def _output_infer(opdef: OpDef, params: dict[str, Any], specs: Specs) -> Inference:
    return Inference((specs[0],))


declare("input", "structure", "A graph input: a tensor with a fixed example shape (batch included).",
        params=named(shape=Param("ints", min=0, max=MAX_DIM, doc="example shape, batch first, e.g. (8, 3, 32, 32)"),
                     dtype=choice("element type", DTYPES, "float32")),
        inputs=(), infer=_input_infer, examples=[example(shape=(2, 3)), example(shape=(4,), dtype="int64")])
declare("output", "structure", "A graph output: what the compiled module returns.", infer=_output_infer,
        examples=[example((2, 5), ref=lambda x: x)])
module_op("identity", "structure", "Returns its input unchanged (a placeholder or a named tap).", nn.Identity,
          examples=[example((2, 5), ref=lambda x: x)])


# -- learnable tensors and constants: their values live in graph.weights like any layer's -------------------------
def _parameter_build(p: dict[str, Any], specs: Specs) -> nn.Module:
    return Parameter(tuple(p["shape"]), p["init"], p["std"])


declare("parameter", "structure",
        "A learnable tensor of a fixed shape (class token, position embedding, layer scale). Its value is the "
        "node's weight (graph.weights, the safetensors file); init sets how a new one starts.",
        params=named(shape=Param("ints", min=0, max=MAX_DIM, doc="shape, e.g. (1, 1, 192)"),
                     init=choice("initialiser", ("trunc_normal", "normal", "zeros", "ones"), "trunc_normal"),
                     std=number("standard deviation for normal and trunc_normal", 0.02, lo=0.0)),
        inputs=(), build=_parameter_build, module=Parameter,
        examples=[example(shape=(1, 1, 4), init="ones", ref=lambda value: value),
                  example(shape=(2, 3), ref=lambda value: value)])


def _constant_build(p: dict[str, Any], specs: Specs) -> nn.Module:
    return Constant(tuple(p["shape"]), TORCH_DTYPES[p["dtype"]], p["fill"], p["value"])


declare("constant", "structure",
        "A non-trainable tensor (a buffer: masks, index tables, values computed from shapes at import). Its value "
        "is the node's weight; fill sets how a new one starts (arange: 0, 1, 2, ... in row-major order).",
        params=named(shape=Param("ints", min=0, max=MAX_DIM, doc="shape, e.g. (4, 4)"),
                     dtype=choice("element type", DTYPES, "float32"),
                     fill=choice("initial values", ("zeros", "ones", "full", "arange"), "zeros"),
                     value=number("the value for fill='full'", 0.0)),
        inputs=(), build=_constant_build, module=Constant,
        examples=[example(shape=(2, 3), fill="arange", dtype="int64", ref=lambda value: value),
                  example(shape=(3,), fill="full", value=-1.5, ref=lambda value: value)])
