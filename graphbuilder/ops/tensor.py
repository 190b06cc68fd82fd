"""Tensor ops: elementwise arithmetic, concatenation, splitting and reshaping. All stateless torch functions."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from graphbuilder.ir.errors import GraphError
from graphbuilder.ir.schema import Param
from graphbuilder.ops.declare import MAX_DIM, Specs, broadcastable, dims, example, flag, function_op, integer, named

_DIM = integer("dimension index (negative counts from the end)", 1, lo=None)

for _name, _fn, _doc, _shapes in (("add", torch.add, "input + other, broadcasting.", ((2, 3, 4), (3, 1))),
                                  ("sub", torch.sub, "input - other, broadcasting.", ((2, 3, 4), (2, 3, 4))),
                                  ("mul", torch.mul, "input * other (elementwise), broadcasting.", ((2, 3, 4), (4,)))):
    function_op(_name, "tensor", _doc, _fn, inputs=("input", "other"), check=broadcastable,
                hint="two tensors of the same (or broadcastable) shape", examples=[example(*_shapes, ref=_fn)])


def _cat_check(p: dict[str, Any], specs: Specs) -> None:
    first = specs[0].shape
    d = p["dim"] % len(first) if first else 0
    for i, s in enumerate(specs[1:], start=1):
        mismatched = any(a != b for k, (a, b) in enumerate(zip(first, s.shape, strict=False)) if k != d)
        if len(s.shape) != len(first) or mismatched:
            raise GraphError(f"input {i} has shape {s} but input 0 has {specs[0]}; all dims except dim {p['dim']} "
                             "must match to concatenate")


function_op("cat", "tensor", "Concatenate one or more tensors along dim.", torch.cat, named(dim=_DIM),
            inputs=("tensors",), variadic=True, check=_cat_check, hint="tensors equal in every dim but `dim`",
            examples=[example((2, 3, 4), (2, 5, 4), (2, 1, 4), dim=1, ref=lambda *xs: torch.cat(xs, 1)),
                      example((2, 3), dim=0, ref=lambda x: torch.cat([x], 0))])
function_op("split", "tensor", "Split into chunks of split_size along dim (or sizes, one per chunk).",
            torch.split, named(split_size_or_sections=Param("int_or_ints", min=1, max=MAX_DIM,
                                                            doc="chunk size, or a list of chunk sizes"),
                               dim=_DIM), hint="a tensor with dim `dim`",
            examples=[example((2, 7, 3), split_size_or_sections=(2, 5), dim=1, ref=lambda x: x.split((2, 5), 1)),
                      example((2, 7, 3), split_size_or_sections=3, dim=1, ref=lambda x: x.split(3, 1))])
function_op("flatten", "tensor", "Flatten dims start_dim..end_dim into one.", torch.flatten,
            named(start_dim=integer("first dim to flatten", 1, lo=None),
                  end_dim=integer("last dim to flatten", -1, lo=None)),
            module=nn.Flatten, examples=[example((2, 3, 4, 5), start_dim=2, ref=lambda x: x.flatten(2))])
function_op("reshape", "tensor", "Reshape to shape (one entry may be -1); batch included.", torch.reshape,
            named(shape=Param("ints", min=-1, max=MAX_DIM, doc="new shape, e.g. (-1, 64, 4, 4)")),
            examples=[example((2, 12), shape=(-1, 3, 4), ref=lambda x: x.reshape(-1, 3, 4))])
function_op("permute", "tensor", "Reorder dims.", torch.permute, named(dims=dims("new order of dims, e.g. (0, 2, 1)")),
            examples=[example((2, 3, 4), dims=(0, 2, 1), ref=lambda x: x.permute(0, 2, 1))])
function_op("transpose", "tensor", "Swap two dims.", torch.transpose,
            named(dim0=integer("first dim", 1, lo=None), dim1=integer("second dim", 2, lo=None)),
            examples=[example((2, 3, 4), dim0=0, dim1=2, ref=lambda x: x.transpose(0, 2))])
function_op("mean", "tensor", "Mean over dims.", torch.mean,
            named(dim=Param("ints", (-1,), doc="dims to reduce"), keepdim=flag("keep reduced dims as size 1", False)),
            examples=[example((2, 3, 4, 5), dim=(2, 3), keepdim=True, ref=lambda x: x.mean((2, 3), keepdim=True))])
function_op("matmul", "tensor", "Matrix product with broadcasting over batch dims.", torch.matmul,
            inputs=("input", "other"), hint="(..., n, k) and (..., k, m)",
            examples=[example((2, 3, 4), (4, 5), ref=torch.matmul)])
