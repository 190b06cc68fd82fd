"""Structural ops: graph inputs and outputs, and identity."""

from __future__ import annotations

from typing import Any

from torch import nn

from graphbuilder.ir.schema import DTYPES, Inference, OpDef, Param, TensorSpec
from graphbuilder.ops.declare import MAX_DIM, Specs, choice, declare, example, module_op, named


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
