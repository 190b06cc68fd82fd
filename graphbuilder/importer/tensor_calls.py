"""What tensor-level calls become: indexing, shape changes, math, reductions, functional layers on a module's
own parameters, and the ATen allow-list. Registers into the tables of `mapping.py` (same `Args` -> `Emit`
contract); importing `graphbuilder.importer` loads it.

- **Functional calls on parameters** (timm's ``BatchNormAct2d`` calls ``F.batch_norm`` on its own tensors,
  ``LayerNorm2d`` calls ``F.layer_norm``): the call becomes the matching layer op carrying those tensors as
  its weights (`WEIGHTED`).
- **The ATen allow-list**: an op that declares ``aten=(packet, ...)`` is what those ATen calls (and the torch
  function and tensor method of the same name) import as; tensor arguments become its inputs and the others
  its params by schema name. Nothing is resolved from a string: the registry holds the only list.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

from graphbuilder.importer.mapping import (
    ATEN_HANDLERS,
    FUNCTIONS,
    METHODS,
    Args,
    Attr,
    Emit,
    Handler,
    Ref,
    Unsupported,
    _ints,
    _register,
    _spatial,
    reshape_emit,
)
from graphbuilder.ir import registry
from graphbuilder.ir.schema import OpDef
from graphbuilder.ops.convolution import conv_padding
from graphbuilder.ops.declare import DTYPE_NAMES
from graphbuilder.ops.lowlevel import format_index

aten = torch.ops.aten


def _dims(a: Args, start: int, name: str) -> tuple[int, ...]:
    """Sizes given as varargs (``x.expand(2, -1)``) or as one sequence (``x.expand((2, -1))``)."""
    rest = a.args[start:]
    if len(rest) == 1 and isinstance(rest[0], (list, tuple, torch.Size)):
        rest = list(rest[0])
    if not rest:
        rest = list(_ints(a.kwargs.get(name, ())))
    return tuple(int(v) for v in rest)


# -- indexing -------------------------------------------------------------------------------------------------------
def _getitem(a: Args) -> Emit | Ref:
    x, index = a.tensor(0), a.get(1, "index")
    items = index if isinstance(index, tuple) else (index,)
    tensors = [i for i, item in enumerate(items) if isinstance(item, Ref)]
    if tensors:
        if any(not (isinstance(i, slice) and i == slice(None)) for j, i in enumerate(items) if j not in tensors):
            raise Unsupported("indexing with tensors is supported with whole dims (:) elsewhere, e.g. x[i, :, j]")
        if any(items[k].value.dtype == torch.bool for k in tensors):
            raise Unsupported("indexing with a bool mask gives a data-dependent shape; use masked_fill or where")
        if len(tensors) == 1:
            return Emit("index_select", {"dim": tensors[0]}, [x, items[tensors[0]]])
        return Emit("index_tensors", {"dims": tuple(tensors)}, [x, *(items[k] for k in tensors)])
    for item in items:
        if not (item is None or item is Ellipsis or isinstance(item, (int, slice))):
            raise Unsupported(f"index item {item!r} is not an int, slice, None or ...")
        if isinstance(item, slice) and not all(v is None or isinstance(v, int) for v in (item.start, item.stop,
                                                                                             item.step)):
            raise Unsupported(f"slice {item!r} has bounds that are not ints")
    return Emit("getitem", {"index": format_index(tuple(items))}, [x])


_register(_getitem, operator.getitem, "__getitem__")
_register(lambda a: Emit("index_select", {"dim": int(a.get(1, "dim"))}, [a.tensor(0), a.tensor(2, "index")]),
          torch.index_select, "index_select")
_register(lambda a: Emit("gather", {"dim": int(a.get(1, "dim"))}, [a.tensor(0), a.tensor(2, "index")]),
          torch.gather, "gather")


def _narrow(a: Args) -> Emit:
    x, dim, start, length = a.tensor(0), int(a.get(1, "dim")), int(a.get(2, "start")), int(a.get(3, "length"))
    items: list[Any] = [slice(None)] * (dim % x.value.dim()) + [slice(start, start + length)]
    return Emit("getitem", {"index": format_index(tuple(items))}, [x])


_register(_narrow, torch.narrow, "narrow")


def _index(x: Ref, dim: int, item: Any) -> Emit:
    return Emit("getitem", {"index": format_index((*[slice(None)] * (dim % x.value.dim()), item))}, [x])


def _aten_slice(a: Args) -> Emit | Ref:  # aten.slice(self, dim, start, end, step)
    x, dim = a.tensor(0), int(a.get(1, "dim", 0))
    start, end, step = a.get(2, "start"), a.get(3, "end"), int(a.get(4, "step", 1))
    size = x.value.shape[dim]
    start = None if start in (None, 0) else int(start)
    end = None if end is None or end >= size else int(end)
    if start is None and end is None and step == 1:
        return x
    return _index(x, dim, slice(start, end, None if step == 1 else step))


def _aten_index(a: Args) -> Emit:  # aten.index.Tensor(self, indices): None means the whole dim
    indices = list(a.get(1, "indices"))
    items = tuple(slice(None) if i is None else i for i in indices)
    return _getitem(Args([a.tensor(0), items if len(items) > 1 else items[0]], {}))  # type: ignore[return-value]


_ATEN_INDEXING = ({aten.slice: _aten_slice, aten.index: _aten_index,
                      aten.select: lambda a: _index(a.tensor(0), int(a.get(1, "dim")), int(a.get(2, "index"))),
                      aten._to_copy: lambda a: _cast(None)(a), aten.alias: lambda a: a.tensor(0),
                      aten.lift_fresh_copy: lambda a: a.tensor(0)})

# Calls whose result depends only on their inputs' shapes and dtypes: folded into constants at import.
SHAPE_ONLY = frozenset({"zeros_like", "ones_like", "full_like", "empty_like", "new_zeros", "new_ones", "new_full",
                        "new_empty", "new_tensor"})


# -- shapes ---------------------------------------------------------------------------------------------------------
_register(lambda a: Emit("expand", {"size": _dims(a, 1, "size")}, [a.tensor(0)]), "expand")
_register(lambda a: Emit("expand", {"size": tuple(a.out.shape)}, [a.tensor(0)]), "expand_as", torch.broadcast_to,
          "broadcast_to")
_register(lambda a: Emit("repeat", {"repeats": _dims(a, 1, "repeats")}, [a.tensor(0)]), "repeat")
_register(lambda a: reshape_emit(a.tensor(0), tuple(a.out.shape)), "reshape_as", "view_as", "unflatten",
          torch.unflatten)


def _squeeze(a: Args) -> Emit:
    dim = a.get(1, "dim")
    return Emit("squeeze", {"dim": None if dim is None else _ints(dim)}, [a.tensor(0)])


_register(_squeeze, torch.squeeze, "squeeze")
_register(lambda a: Emit("unsqueeze", {"dim": int(a.get(1, "dim"))}, [a.tensor(0)]), torch.unsqueeze, "unsqueeze")
_register(lambda a: Emit("chunk", {"chunks": int(a.get(1, "chunks")), "dim": int(a.get(2, "dim", 0))}, [a.tensor(0)]),
          torch.chunk, "chunk")
_register(lambda a: Emit("unbind", {"dim": int(a.get(1, "dim", 0))}, [a.tensor(0)]), torch.unbind, "unbind")


def _stack(a: Args) -> Emit:
    tensors = a.get(0, "tensors")
    if not all(isinstance(t, Ref) for t in tensors):
        raise Unsupported("stack of something other than tensors")
    return Emit("stack", {"dim": int(a.get(1, "dim", 0))}, list(tensors))


_register(_stack, torch.stack)
_register(lambda a: Emit("roll", {"shifts": _ints(a.get(1, "shifts")), "dims": _ints(a.get(2, "dims", ()))},
                         [a.tensor(0)]), torch.roll, "roll")
_register(lambda a: Emit("flip", {"dims": _dims(a, 1, "dims")}, [a.tensor(0)]), torch.flip, "flip")


def _pad(a: Args) -> Emit:
    mode = a.get(2, "mode", "constant")
    value = a.get(3, "value", None)
    return Emit("pad", {"pad": _ints(a.get(1, "pad")), "mode": mode, "value": float(value or 0.0)}, [a.tensor(0)])


_register(_pad, F.pad)
_register(lambda a: Emit("pixel_shuffle", {"upscale_factor": int(a.get(1, "upscale_factor"))}, [a.tensor(0)]),
          F.pixel_shuffle, torch.pixel_shuffle)
_register(lambda a: Emit("pixel_unshuffle", {"downscale_factor": int(a.get(1, "downscale_factor"))}, [a.tensor(0)]),
          F.pixel_unshuffle, torch.pixel_unshuffle)
_register(lambda a: Emit("unfold", {"kernel_size": _spatial(a.get(1, "kernel_size")),
                                    "dilation": _spatial(a.get(2, "dilation", 1)),
                                    "padding": _spatial(a.get(3, "padding", 0)),
                                    "stride": _spatial(a.get(4, "stride", 1))}, [a.tensor(0)]), F.unfold)


def _cast(dtype: torch.dtype | None) -> Handler:
    def handle(a: Args) -> Emit | Ref:
        x = a.tensor(0)
        target = dtype or a.out.dtype
        if target == x.value.dtype:
            return x
        if target not in DTYPE_NAMES:
            raise Unsupported(f"cast to {target} is not supported")
        return Emit("cast", {"dtype": DTYPE_NAMES[target]}, [x])
    return handle


_register(_cast(None), "to", "type", "type_as")
for _method, _dtype in (("float", torch.float32), ("double", torch.float64), ("half", torch.float16),
                        ("bfloat16", torch.bfloat16), ("long", torch.int64), ("int", torch.int32),
                        ("bool", torch.bool)):
    _register(_cast(_dtype), _method)


# -- math -----------------------------------------------------------------------------------------------------------
def _unary(op: str) -> Handler:
    return lambda a: Emit(op, {}, [a.tensor(0)])


for _op, _keys in {"sqrt": (torch.sqrt, "sqrt"), "rsqrt": (torch.rsqrt, "rsqrt"), "exp": (torch.exp, "exp"),
                   "log": (torch.log, "log"), "abs": (torch.abs, "abs", operator.abs), "neg": (torch.neg, "neg",
                   operator.neg, "__neg__"), "erf": (torch.erf, "erf", torch.special.erf),
                   "reciprocal": (torch.reciprocal, "reciprocal"), "sin": (torch.sin, "sin"), "cos": (torch.cos, "cos"),
                   "sign": (torch.sign, "sign"), "floor": (torch.floor, "floor"),
                   "logical_not": (torch.logical_not, "logical_not", operator.invert, "__invert__")}.items():
    _register(_unary(_op), *_keys)


def _clamp(a: Args) -> Emit:
    lo, hi = a.get(1, "min"), a.get(2, "max")
    if isinstance(lo, Ref) or isinstance(hi, Ref):
        raise Unsupported("clamp with tensor bounds is not supported")
    return Emit("clamp", {"min": None if lo is None else float(lo), "max": None if hi is None else float(hi)},
                [a.tensor(0)])


_register(_clamp, torch.clamp, torch.clip, "clamp", "clip")
_register(lambda a: _clamp(Args([a.get(0, "input"), a.get(1, "min")], {})), torch.clamp_min, "clamp_min")
_register(lambda a: _clamp(Args([a.get(0, "input"), None, a.get(1, "max")], {})), torch.clamp_max, "clamp_max")


def _where(a: Args) -> Emit:
    cond, x, y = a.tensor(0, "condition"), a.get(1, "input"), a.get(2, "other")
    if isinstance(x, Ref) and isinstance(y, Ref):
        return Emit("where", {}, [cond, x, y])
    if isinstance(x, Ref) and isinstance(y, (int, float)):
        return Emit("where_scalar", {"value": float(y), "fill_true": False}, [cond, x])
    if isinstance(y, Ref) and isinstance(x, (int, float)):
        return Emit("where_scalar", {"value": float(x), "fill_true": True}, [cond, y])
    raise Unsupported("where with two number branches")


_register(_where, torch.where)
_register(lambda a: _where(Args([a.get(1, "condition"), a.get(0, "input"), a.get(2, "other")], {})), "where")
_register(lambda a: Emit("masked_fill", {"value": float(a.get(2, "value"))}, [a.tensor(0), a.tensor(1, "mask")]),
          torch.masked_fill, "masked_fill", "masked_fill_")
_register(lambda a: Emit("addcmul", {"value": float(a.get(3, "value", 1.0))},
                         [a.tensor(0), a.tensor(1, "tensor1"), a.tensor(2, "tensor2")]), torch.addcmul, "addcmul")
_register(lambda a: Emit("baddbmm", {"beta": float(a.get(3, "beta", 1.0)), "alpha": float(a.get(4, "alpha", 1.0))},
                         [a.tensor(0), a.tensor(1, "batch1"), a.tensor(2, "batch2")]), torch.baddbmm, "baddbmm")


def _einsum(a: Args) -> Emit:
    operands = a.args[1:]
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = list(operands[0])
    if not all(isinstance(t, Ref) for t in operands):
        raise Unsupported("einsum over something other than tensors")
    return Emit("einsum", {"equation": str(a.get(0, "equation"))}, list(operands))


_register(_einsum, torch.einsum)


# -- reductions -----------------------------------------------------------------------------------------------------
def _reduce(op: str) -> Handler:
    def handle(a: Args) -> Emit:
        if a.kwargs.get("dtype") is not None:
            raise Unsupported(f"{op} with dtype= is not supported")
        dim = a.get(1, "dim")
        return Emit(op, {"dim": None if dim is None else _ints(dim), "keepdim": bool(a.get(2, "keepdim", False))},
                    [a.tensor(0)])
    return handle


_register(_reduce("sum"), torch.sum, "sum")
_register(_reduce("amax"), torch.amax, "amax")
_register(_reduce("amin"), torch.amin, "amin")
_register(lambda a: Emit("logsumexp", {"dim": _ints(a.get(1, "dim")), "keepdim": bool(a.get(2, "keepdim", False))},
                         [a.tensor(0)]), torch.logsumexp, "logsumexp")


def _max_min(op: str) -> Handler:
    def handle(a: Args) -> Emit:
        other = a.get(1, "dim")
        if isinstance(other, Ref):
            return Emit("maximum" if op == "max" else "minimum", {}, [a.tensor(0), other])
        if other is None:
            return Emit("amax" if op == "max" else "amin", {"dim": None, "keepdim": False}, [a.tensor(0)])
        return Emit(op, {"dim": int(other), "keepdim": bool(a.get(2, "keepdim", False))}, [a.tensor(0)])
    return handle


_register(_max_min("max"), torch.max, "max")
_register(_max_min("min"), torch.min, "min")


def _var_std(op: str) -> Handler:
    def handle(a: Args) -> Emit:
        dim = a.get(1, "dim")
        correction = a.kwargs.get("correction")
        if correction is None:
            unbiased = a.kwargs.get("unbiased", True)
            if isinstance(dim, bool):  # x.var(False): the old unbiased positional
                dim, unbiased = None, dim
            correction = 1 if unbiased else 0
        return Emit(op, {"dim": None if dim is None else _ints(dim), "correction": int(correction),
                         "keepdim": bool(a.get(2, "keepdim", a.kwargs.get("keepdim", False)))}, [a.tensor(0)])
    return handle


_register(_var_std("var"), torch.var, "var")
_register(_var_std("std"), torch.std, "std")


def _norm(a: Args) -> Emit:
    p = a.get(1, "p", a.kwargs.get("ord", 2))
    if not isinstance(p, (int, float)) or isinstance(p, bool):
        raise Unsupported(f"norm with p={p!r} is not supported (a number only)")
    dim = a.get(2, "dim")
    return Emit("norm", {"ord": float(p), "dim": None if dim is None else _ints(dim),
                         "keepdim": bool(a.get(3, "keepdim", False))}, [a.tensor(0)])


_register(_norm, torch.norm, "norm", torch.linalg.vector_norm)
_register(lambda a: Emit("normalize", {"p": float(a.get(1, "p", 2.0)), "dim": int(a.get(2, "dim", 1)),
                                       "eps": float(a.get(3, "eps", 1e-12))}, [a.tensor(0)]), F.normalize)
_register(lambda a: Emit("cumsum", {"dim": int(a.get(1, "dim"))}, [a.tensor(0)]), torch.cumsum, "cumsum")
_register(lambda a: Emit("argmax", {"dim": int(a.get(1, "dim")), "keepdim": bool(a.get(2, "keepdim", False))},
                         [a.tensor(0)]), torch.argmax, "argmax")


# -- activations ----------------------------------------------------------------------------------------------------
def _activation(op: str, **params_at: tuple[int, Any]) -> Handler:
    def handle(a: Args) -> Emit:
        return Emit(op, {n: a.get(i, n, d) for n, (i, d) in params_at.items()}, [a.tensor(0)])
    return handle


_register(_activation("softplus", beta=(1, 1.0), threshold=(2, 20.0)), F.softplus)
_register(_activation("mish"), F.mish)
_register(_activation("elu", alpha=(1, 1.0)), F.elu)
_register(_activation("selu"), F.selu, torch.selu)
_register(_activation("celu", alpha=(1, 1.0)), F.celu)
_register(_activation("glu", dim=(1, -1)), F.glu)
_register(_activation("logsigmoid"), F.logsigmoid)
_register(_activation("sigmoid"), F.sigmoid)


def _hardtanh(a: Args) -> Emit:
    lo, hi = float(a.get(1, "min_val", -1.0)), float(a.get(2, "max_val", 1.0))
    if (lo, hi) == (0.0, 6.0):
        return Emit("relu6", {}, [a.tensor(0)])
    return Emit("hardtanh", {"min_val": lo, "max_val": hi}, [a.tensor(0)])


_register(_hardtanh, F.hardtanh)


# -- functional layers on a module's own tensors ------------------------------------------------------------------
Weighted = Callable[[Args], Emit]
WEIGHTED: dict[Any, Weighted] = {}


def _weight(value: Any, what: str) -> torch.Tensor | None:
    if value is None:
        return None
    if isinstance(value, Attr):
        return value.value.detach().clone()
    raise Unsupported(f"{what} is computed from the inputs; only a module's own tensors can be an op's weights")


def _weights(**tensors: Any) -> dict[str, torch.Tensor]:
    return {k: t for k, v in tensors.items() if (t := _weight(v, k)) is not None}


def _linear(a: Args) -> Emit:
    if not isinstance(a.get(2, "bias"), (Attr, type(None))) and isinstance(a.get(1, "weight"), Attr):
        # a bias computed at run time (BEiT's cat(q_bias, 0, v_bias)): F.linear on three tensors
        return Emit("linear_functional", {}, [a.tensor(0), a.tensor(1, "weight"), a.tensor(2, "bias")])
    w = _weight(a.get(1, "weight"), "weight")
    assert w is not None
    return Emit("linear", {"out_features": w.shape[0], "bias": a.get(2, "bias") is not None}, [a.tensor(0)],
                _weights(weight=a.get(1, "weight"), bias=a.get(2, "bias")))


def _conv(dim: int) -> Weighted:
    def handle(a: Args) -> Emit:
        w = _weight(a.get(1, "weight"), "weight")
        assert w is not None
        n = w.dim() - 2
        stride, padding, dilation = (_ints(a.get(i, k, d)) for i, k, d in ((3, "stride", 1), (4, "padding", 0),
                                                                          (5, "dilation", 1)))
        stride, dilation = (v * n if len(v) == 1 else v for v in (stride, dilation))
        raw_padding = a.get(4, "padding", 0)
        padding = conv_padding(tuple(w.shape[2:]), dilation, raw_padding) if isinstance(raw_padding, str) else padding
        return Emit(f"conv{dim}d", {"out_channels": w.shape[0], "kernel_size": _spatial(tuple(w.shape[2:])),
                                     "stride": _spatial(stride), "padding": _spatial(padding),
                                     "dilation": _spatial(dilation), "groups": int(a.get(6, "groups", 1)),
                                     "bias": a.get(2, "bias") is not None}, [a.tensor(0)],
                    _weights(weight=a.get(1, "weight"), bias=a.get(2, "bias")))
    return handle


def _batch_norm(a: Args) -> Emit:
    x = a.tensor(0)
    op = {2: "batch_norm1d", 3: "batch_norm1d", 4: "batch_norm2d", 5: "batch_norm3d"}.get(x.value.dim())
    if op is None:
        raise Unsupported(f"batch norm of a {x.value.dim()}-D input")
    mean, var, weight, bias = a.get(1, "running_mean"), a.get(2, "running_var"), a.get(3, "weight"), a.get(4, "bias")
    if (mean is None) != (var is None) or (weight is None) != (bias is None):
        raise Unsupported("batch norm with only one of running_mean/var or weight/bias")
    momentum = a.get(6, "momentum", 0.1)
    weights = _weights(weight=weight, bias=bias, running_mean=mean, running_var=var)
    if mean is not None:
        weights["num_batches_tracked"] = torch.tensor(0, dtype=torch.long)
    return Emit(op, {"eps": float(a.get(7, "eps", 1e-5)), "momentum": float(0.1 if momentum is None else momentum),
                     "affine": weight is not None, "track_running_stats": mean is not None}, [x], weights)


def _layer_norm(a: Args) -> Emit:
    shape = _ints(a.get(1, "normalized_shape"))
    weight, bias = a.get(2, "weight"), a.get(3, "bias")
    if weight is None and bias is not None:
        raise Unsupported("layer norm with a bias but no weight")
    return Emit("layer_norm", {"normalized_dims": len(shape), "eps": float(a.get(4, "eps", 1e-5)),
                               "elementwise_affine": weight is not None, "bias": bias is not None or weight is None},
                [a.tensor(0)], _weights(weight=weight, bias=bias))


def _group_norm(a: Args) -> Emit:
    weight, bias = a.get(2, "weight"), a.get(3, "bias")
    if (weight is None) != (bias is None):
        raise Unsupported("group norm with only one of weight and bias")
    return Emit("group_norm", {"num_groups": int(a.get(1, "num_groups")), "eps": float(a.get(4, "eps", 1e-5)),
                               "affine": weight is not None}, [a.tensor(0)], _weights(weight=weight, bias=bias))


def _embedding(a: Args) -> Emit:
    w = _weight(a.get(1, "weight"), "weight")
    assert w is not None
    if a.get(3, "max_norm") is not None:
        raise Unsupported("embedding with max_norm is not supported")
    return Emit("embedding", {"num_embeddings": w.shape[0], "embedding_dim": w.shape[1],
                              "padding_idx": a.get(2, "padding_idx")}, [a.tensor(0, "input")],
                _weights(weight=a.get(1, "weight")))


def _addmm(a: Args) -> Emit:  # addmm(bias, x, weight) on a module's tensors: linear with weight.T (GPT-2's Conv1D)
    bias, x, weight = a.get(0, "input"), a.tensor(1, "mat1"), _weight(a.get(2, "mat2"), "mat2")
    assert weight is not None
    if a.get(3, "beta", 1) != 1 or a.get(4, "alpha", 1) != 1:
        raise Unsupported("addmm with beta or alpha other than 1")
    weights = {"weight": weight.t().contiguous()} | _weights(bias=bias)
    return Emit("linear", {"out_features": weight.shape[1], "bias": "bias" in weights}, [x], weights)


def _prelu(a: Args) -> Emit:
    w = _weight(a.get(1, "weight"), "weight")
    assert w is not None
    return Emit("prelu", {"num_parameters": w.numel(), "init": 0.25}, [a.tensor(0)], {"weight": w})


for _fn, _handler in ((F.linear, _linear), (F.conv1d, _conv(1)), (F.conv2d, _conv(2)), (F.conv3d, _conv(3)),
                      (F.batch_norm, _batch_norm), (F.layer_norm, _layer_norm), (F.group_norm, _group_norm),
                      (F.embedding, _embedding), (F.prelu, _prelu), (torch.conv2d, _conv(2)), (torch.addmm, _addmm)):
    WEIGHTED[_fn] = _handler


def _reordered(a: Args, args: list[Any]) -> Args:
    """`a`'s call with its arguments in another order (an ATen signature to the torch function's)."""
    out = Args(args, {}, a.out)
    out.to_ref = a.to_ref
    return out


def _aten_batch_norm(a: Args) -> Emit:  # aten.batch_norm(input, weight, bias, running_mean, running_var, training, ..)
    return _batch_norm(_reordered(a, [a.get(0, "input"), a.get(3, "running_mean"), a.get(4, "running_var"),
                                      a.get(1, "weight"), a.get(2, "bias"), a.get(5, "training"), a.get(6, "momentum"),
                                      a.get(7, "eps")]))


def _aten_embedding(a: Args) -> Emit:  # aten.embedding(weight, indices, padding_idx, ...)
    padding_idx = a.get(2, "padding_idx", -1)
    return _embedding(_reordered(a, [a.get(1, "indices"), a.get(0, "weight"),
                                     None if padding_idx == -1 else padding_idx]))


ATEN_WEIGHTED: dict[Any, Weighted] = {
    aten.linear: _linear, aten.conv1d: _conv(1), aten.conv2d: _conv(2), aten.conv3d: _conv(3),
    aten.batch_norm: _aten_batch_norm, aten.layer_norm: _layer_norm, aten.group_norm: _group_norm,
    aten.embedding: _aten_embedding, aten.prelu: _prelu, aten.addmm: _addmm,
}


def weighted_handler(target: Any) -> Weighted | None:
    """The handler for a functional layer call whose tensor arguments may be a module's own tensors."""
    packet = getattr(target, "overloadpacket", None)
    try:
        return ATEN_WEIGHTED.get(packet) if packet is not None else WEIGHTED.get(target)
    except TypeError:
        return None


# -- the ATen allow-list ----------------------------------------------------------------------------------------------
_MISSING = object()


def _schema(packet: Any) -> Any:
    names = packet.overloads()
    return getattr(packet, "default" if "default" in names else names[0])._schema


def generic_handler(opdef: OpDef, packet: Any) -> Handler:
    """Bind a call of ATen `packet` (or its torch function / tensor method) to `opdef` by argument name: tensors
    become inputs in order, other arguments the params of the same name; any other argument must keep its
    default, else the call is `Unsupported`."""
    schema = _schema(packet)
    declared = {p.name for p in opdef.params}

    def handle(a: Args) -> Emit:
        inputs: list[Ref] = []
        params: dict[str, Any] = {}
        for i, arg in enumerate(schema.arguments):
            value = a.args[i] if i < len(a.args) and not arg.kwarg_only else a.kwargs.get(
                arg.name, a.kwargs.get("input" if arg.name == "self" else arg.name, _MISSING))
            if isinstance(value, Ref):
                inputs.append(value)
            elif isinstance(value, (list, tuple)) and value and all(isinstance(v, Ref) for v in value):
                inputs.extend(value)
            elif value is _MISSING:
                continue
            elif arg.name in declared:
                params[arg.name] = tuple(value) if isinstance(value, (list, torch.Size)) else value
            elif value is not None and not (arg.has_default_value() and value == arg.default_value):
                raise Unsupported(f"argument {arg.name}={value!r} has no param on op {opdef.name!r}")
        return Emit(opdef.name, params, inputs)
    return handle


ATEN_GENERIC: dict[Any, Handler] = {}


def allow_list() -> dict[Any, Handler]:
    """ATen overload packet -> handler, from the ``aten=`` of every registered op (rebuilt when ops change)."""
    ops = registry.all_ops()
    key = tuple((d.name, d.aten) for d in ops if d.aten)
    if ATEN_GENERIC.get("__key__") != key:  # type: ignore[comparison-overlap]
        ATEN_GENERIC.clear()
        for opdef in ops:
            for packet in opdef.aten:
                ATEN_GENERIC.setdefault(packet, generic_handler(opdef, packet))
        ATEN_GENERIC["__key__"] = key  # type: ignore[assignment]
    return ATEN_GENERIC


def generic_for(kind: str, target: Any) -> Handler | None:
    """A handler from the allow-list for an ATen call, or for the torch function / tensor method of an allowed
    ATen op's name (``torch.cumsum``, ``x.cumsum``)."""
    table = allow_list()
    packet = getattr(target, "overloadpacket", None)
    if packet is not None:
        return table.get(packet)
    name = target if kind == "call_method" else getattr(target, "__name__", None)
    if kind == "call_function" and getattr(torch, str(name), None) is not target:
        return None
    return next((h for p, h in table.items() if getattr(p, "__name__", None) == name), None)


FUNCTIONS.setdefault(torch.Tensor.contiguous, lambda a: a.tensor(0))
METHODS.setdefault("type_as", _cast(None))
ATEN_HANDLERS.update(_ATEN_INDEXING)
ATEN_HANDLERS.update({aten.pad: _pad, aten.split_with_sizes: FUNCTIONS[torch.split]})
