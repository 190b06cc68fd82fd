"""What each torch call becomes in the IR: tables from nn.Module classes, functions and tensor methods to ops.

Boundary: this module only *translates one call*. It gets the call's arguments already resolved (tensors as
`Ref`s carrying their concrete example value, everything else as Python constants) and returns an `Emit`
(op name, params, tensor inputs, weights) or a `Ref` when the call is a no-op alias (``x.contiguous()``).
Tracing lives in `capture.py`, grouping into nested blocks in `assemble.py`.

Re-expressions are exact: ``F.relu(x)`` becomes the ``relu`` op (``nn.ReLU``), ``x += y`` becomes ``add``
(out of place: imported code must not rely on aliasing), ``x.view(x.size(0), -1)`` becomes ``flatten`` and
other views become ``reshape`` with the batch dim written as -1, so the graph keeps a dynamic batch.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from graphbuilder.ir import registry
from graphbuilder.ir.errors import GraphError
from graphbuilder.ir.schema import OpDef
from graphbuilder.ops.declare import read_attributes


@dataclass
class Ref:
    """A tensor value in the graph being built: output `index` of call `call` (an `Emit`), with its example
    value from the concrete run (used for shapes, never stored)."""

    call: Emit
    index: int
    value: torch.Tensor


@dataclass(eq=False)
class Attr:
    """A tensor not computed from the inputs: a module's parameter or buffer (`name` is its attribute path), or a
    value folded from such tensors and sizes. Becomes a ``parameter`` node (`trainable`) or a ``constant`` node
    where an op reads it, or a weight of the op where a functional call reads its own module's parameters."""

    value: torch.Tensor
    name: str
    trainable: bool


@dataclass(eq=False)
class Emit:
    """One IR node to create: `op` with `params` applied to `inputs`, loading `weights` (a state_dict)."""

    op: str
    params: dict[str, Any]
    inputs: list[Ref]
    weights: dict[str, torch.Tensor] = field(default_factory=dict)
    label: str = ""
    scope: tuple[tuple[str, str, str], ...] = ()  # (module key, qualified path, class name), outermost first
    source: str = ""  # module path (or path/function) the call came from, for messages and node.meta
    expected: list[tuple[tuple[int, ...], str]] = field(default_factory=list)  # example (shape, dtype) per output
    shares: Emit | None = None  # an earlier call of the same module: this node uses that node's weights


class Unsupported(Exception):
    """Raised by a handler: the call has no IR equivalent. `capture` turns it into a `GraphError` naming
    the module path and type."""


Handler = Callable[["Args"], "Emit | Ref"]


class Args:
    """Positional and keyword arguments of one call, read by position or name with a default."""

    def __init__(self, args: Sequence[Any], kwargs: dict[str, Any], out: Any = None) -> None:
        self.args = list(args)
        self.kwargs = dict(kwargs)
        self.out = out  # the call's concrete example result (shapes that follow from runtime sizes)
        self.to_ref: Callable[[Attr], Ref] | None = None  # set where module tensors arrive unresolved

    def get(self, i: int, name: str, default: Any = None) -> Any:
        """Argument `i` (positional) or `name` (keyword), else `default`."""
        if i < len(self.args):
            return self.args[i]
        return self.kwargs.get(name, default)

    def tensor(self, i: int, name: str = "input") -> Ref:
        """Argument `i` that must be a tensor."""
        value = self.get(i, name)
        if isinstance(value, Attr) and self.to_ref is not None:  # a module tensor read as an input
            value = self.to_ref(value)
        if not isinstance(value, Ref):
            raise Unsupported(f"argument {name!r} is {type(value).__name__} {value!r}, not a tensor computed from "
                              "the inputs (constants and parameters used as tensors have no op)")
        return value


# -- tensor helpers ----------------------------------------------------------------------------------------------
def _ints(value: Any) -> tuple[int, ...]:
    if isinstance(value, int):
        return (value,)
    return tuple(int(v) for v in value)


def _spatial(value: Any) -> Any:
    """Collapse (k, k) to k so params read as a person writes them; keep asymmetric tuples."""
    if isinstance(value, (list, tuple)):
        value = tuple(int(v) for v in value)
        return value[0] if len(set(value)) == 1 else value
    return value


def _need_default(a: Args, checks: dict[tuple[int, str], Any]) -> None:
    for (i, name), default in checks.items():
        value = a.get(i, name, default)
        if value is not default and value != default:
            raise Unsupported(f"argument {name}={value!r} is not supported (only {default!r})")


# -- functions and methods ----------------------------------------------------------------------------------------
FUNCTIONS: dict[Any, Handler] = {}
METHODS: dict[str, Handler] = {}


def _register(handler: Handler, *keys: Any) -> None:
    for key in keys:
        if isinstance(key, str):
            METHODS[key] = handler
        else:
            FUNCTIONS[key] = handler


def _unary(op: str, **params_at: tuple[int, Any]) -> Handler:
    def handle(a: Args) -> Emit:
        params = {name: a.get(i, name, default) for name, (i, default) in params_at.items()}
        return Emit(op, params, [a.tensor(0)])
    return handle


for _op, _keys in {
    "relu": (F.relu, torch.relu, F.relu_, torch.relu_, "relu", "relu_"),
    "relu6": (F.relu6,),
    "silu": (F.silu,),
    "sigmoid": (torch.sigmoid, F.sigmoid, "sigmoid", "sigmoid_"),
    "tanh": (torch.tanh, F.tanh, "tanh", "tanh_"),
    "hardswish": (F.hardswish,),
    "hardsigmoid": (F.hardsigmoid,),
}.items():
    _register(_unary(_op), *_keys)
_register(_unary("gelu", approximate=(1, "none")), F.gelu)
_register(_unary("leaky_relu", negative_slope=(1, 0.01)), F.leaky_relu)
_register(_unary("dropout", p=(1, 0.5)), F.dropout)


def _softmax(op: str) -> Handler:
    def handle(a: Args) -> Emit:
        dim = a.get(1, "dim")
        if dim is None:
            raise Unsupported(f"{op} without dim is deprecated and ambiguous; pass dim=")
        if a.get(3, "dtype") is not None:
            raise Unsupported(f"{op} with dtype= is not supported")
        return Emit(op, {"dim": int(dim)}, [a.tensor(0)])
    return handle


_register(_softmax("softmax"), F.softmax, torch.softmax, "softmax")
_register(_softmax("log_softmax"), F.log_softmax, torch.log_softmax, "log_softmax")


def _number(value: Any, op: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise Unsupported(f"{op} with {type(value).__name__} {value!r}: only tensors and numbers are supported")
    return float(value)


def _binary(op: str, scalar: str | None = None, reverse: str | None = None, scalar_param: str = "other") -> Handler:
    """`op` on two tensors; `scalar` when the second is a number; `reverse` when the first is."""
    def handle(a: Args) -> Emit:
        x, y = a.get(0, "input"), a.get(1, "other", a.get(1, "exponent"))
        if a.get(2, "alpha", 1) != 1:
            raise Unsupported(f"{op} with alpha={a.get(2, 'alpha')} is not supported")
        if a.get(2, "rounding_mode") is not None:
            raise Unsupported(f"{op} with rounding_mode={a.get(2, 'rounding_mode')!r} is not supported")
        if isinstance(x, Ref) and isinstance(y, Ref):
            return Emit(op, {}, [x, y])
        if isinstance(x, Ref) and scalar is not None:
            return Emit(scalar, {scalar_param: _number(y, op)}, [x])
        if isinstance(y, Ref) and reverse is not None:
            return Emit(reverse, {"other" if reverse != "rpow_scalar" else "base": _number(x, op)}, [y])
        if isinstance(y, Ref) and scalar is not None and op in ("add", "mul"):  # commutative: 2 * x
            return Emit(scalar, {"other": _number(x, op)}, [y])
        raise Unsupported(f"{op} of {type(x).__name__} and {type(y).__name__}")
    return handle


_register(_binary("add", "add_scalar"), operator.add, operator.iadd, torch.add, "add", "add_", "__add__",
          "__iadd__", "__radd__")
_register(_binary("sub", "sub_scalar", "rsub_scalar"), operator.sub, operator.isub, torch.sub, "sub", "sub_",
          "__sub__", "__isub__")
_register(_binary("mul", "mul_scalar"), operator.mul, operator.imul, torch.mul, "mul", "mul_", "__mul__", "__imul__",
          "__rmul__")
_register(_binary("div", "div_scalar", "rdiv_scalar"), operator.truediv, operator.itruediv, torch.div,
          torch.true_divide, "div", "div_", "__truediv__", "__itruediv__", "true_divide")
_register(_binary("pow", "pow_scalar", "rpow_scalar", "exponent"), operator.pow, torch.pow, "pow", "__pow__")
_register(lambda a: _binary("sub", "sub_scalar", "rsub_scalar")(Args([a.get(1, "other"), a.get(0, "input")], {})),
          torch.rsub, "__rsub__")
_register(lambda a: _binary("div", "div_scalar", "rdiv_scalar")(Args([a.get(1, "other"), a.get(0, "input")], {})),
          "__rtruediv__")
_register(_binary("matmul"), operator.matmul, torch.matmul, "matmul")
_register(_binary("bmm"), torch.bmm, "bmm")
_register(_binary("maximum"), torch.maximum, "maximum")
_register(_binary("minimum"), torch.minimum, "minimum")
for _op, _keys in {"eq": (operator.eq, torch.eq, "eq", "__eq__"), "ne": (operator.ne, torch.ne, "ne", "__ne__"),
                   "lt": (operator.lt, torch.lt, "lt", "__lt__"), "le": (operator.le, torch.le, "le", "__le__"),
                   "gt": (operator.gt, torch.gt, "gt", "__gt__"),
                   "ge": (operator.ge, torch.ge, "ge", "__ge__")}.items():
    def _compare(a: Args, op: str = _op) -> Emit:
        x, y = a.get(0, "input"), a.get(1, "other")
        if isinstance(x, Ref) and isinstance(y, Ref):
            return Emit(op, {}, [x, y])
        if isinstance(x, Ref):
            return Emit("compare_scalar", {"other": _number(y, op), "mode": op}, [x])
        flipped = {"lt": "gt", "le": "ge", "gt": "lt", "ge": "le"}.get(op, op)
        return Emit("compare_scalar", {"other": _number(x, op), "mode": flipped}, [a.tensor(1)])
    _register(_compare, *_keys)
_register(_binary("logical_and"), torch.logical_and, "logical_and", operator.and_, "__and__")
_register(_binary("logical_or"), torch.logical_or, "logical_or", operator.or_, "__or__")


def _cat(a: Args) -> Emit:
    tensors = a.get(0, "tensors")
    if not isinstance(tensors, (list, tuple)) or not all(isinstance(t, Ref) for t in tensors):
        raise Unsupported("cat of something other than a list of tensors")
    return Emit("cat", {"dim": int(a.get(1, "dim", 0))}, list(tensors))


_register(_cat, torch.cat, torch.concat, torch.concatenate)


def _flatten(a: Args) -> Emit:
    return Emit("flatten", {"start_dim": int(a.get(1, "start_dim", 0)), "end_dim": int(a.get(2, "end_dim", -1))},
                [a.tensor(0)])


_register(_flatten, torch.flatten, "flatten")


def reshape_emit(x: Ref, out_shape: tuple[int, ...]) -> Emit:
    """A reshape to `out_shape` written batch-agnostically: ``flatten(1)`` when it is one, else the shape with
    the batch dim as -1 when the batch dim is kept (so exports can take any batch size)."""
    in_shape = tuple(x.value.shape)
    if len(in_shape) >= 2 and out_shape == (in_shape[0], math.prod(in_shape[1:])):
        return Emit("flatten", {"start_dim": 1, "end_dim": -1}, [x])
    shape = list(out_shape)
    if in_shape and shape and shape[0] == in_shape[0] and math.prod(in_shape[1:]) == math.prod(shape[1:]):
        shape[0] = -1
    return Emit("reshape", {"shape": tuple(shape)}, [x])


def _reshape(a: Args) -> Emit:
    return reshape_emit(a.tensor(0), tuple(a.out.shape))


_register(_reshape, torch.reshape, "reshape", "view")


def _permute(a: Args) -> Emit:
    dims = a.args[1:] if len(a.args) > 2 else a.get(1, "dims")
    return Emit("permute", {"dims": _ints(dims)}, [a.tensor(0)])


_register(_permute, torch.permute, "permute")
_register(lambda a: Emit("transpose", {"dim0": int(a.get(1, "dim0")), "dim1": int(a.get(2, "dim1"))},
                         [a.tensor(0)]), torch.transpose, "transpose")


def _mean(a: Args) -> Emit:
    x = a.tensor(0)
    dim = a.get(1, "dim")
    if a.get(3, "dtype") is not None:
        raise Unsupported("mean with dtype= is not supported")
    dims = tuple(range(x.value.dim())) if dim is None else _ints(dim)
    return Emit("mean", {"dim": dims, "keepdim": bool(a.get(2, "keepdim", False))}, [x])


_register(_mean, torch.mean, "mean")


def _adaptive(op: str) -> Handler:
    def handle(a: Args) -> Emit:
        size = a.get(1, "output_size")
        if size is None or (isinstance(size, (list, tuple)) and None in size):
            raise Unsupported(f"{op} with output_size containing None is not supported")
        if a.get(2, "return_indices", False):
            raise Unsupported(f"{op} with return_indices=True is not supported")
        return Emit(op, {"output_size": _spatial(size)}, [a.tensor(0)])
    return handle


_register(_adaptive("adaptive_avg_pool2d"), F.adaptive_avg_pool2d)
_register(_adaptive("adaptive_max_pool2d"), F.adaptive_max_pool2d)


def _max_pool(dim: int) -> Handler:
    def handle(a: Args) -> Emit:
        if a.get(6, "return_indices", False):
            raise Unsupported("max pooling with return_indices=True is not supported")
        stride = a.get(2, "stride")
        stride = None if stride in (None, []) else _spatial(stride)
        return Emit(f"max_pool{dim}d", {
            "kernel_size": _spatial(a.get(1, "kernel_size")), "stride": stride,
            "padding": _spatial(a.get(3, "padding", 0)), "dilation": _spatial(a.get(4, "dilation", 1)),
            "ceil_mode": bool(a.get(5, "ceil_mode", False))}, [a.tensor(0)])
    return handle


def _avg_pool(dim: int) -> Handler:
    def handle(a: Args) -> Emit:
        if a.get(6, "divisor_override") is not None:
            raise Unsupported("average pooling with divisor_override is not supported")
        stride = a.get(2, "stride")
        stride = None if stride in (None, []) else _spatial(stride)
        return Emit(f"avg_pool{dim}d", {
            "kernel_size": _spatial(a.get(1, "kernel_size")), "stride": stride,
            "padding": _spatial(a.get(3, "padding", 0)), "ceil_mode": bool(a.get(4, "ceil_mode", False)),
            "count_include_pad": bool(a.get(5, "count_include_pad", True))}, [a.tensor(0)])
    return handle


_register(_max_pool(1), F.max_pool1d)
_register(_max_pool(2), F.max_pool2d)
_register(_avg_pool(1), F.avg_pool1d)
_register(_avg_pool(2), F.avg_pool2d)


def upsample_params(size: Any, scale_factor: Any, mode: str, align_corners: Any, recompute: Any = None,
                    antialias: bool = False) -> dict[str, Any]:
    """Params of the ``upsample`` op for an ``F.interpolate`` call (raises `Unsupported` for what it lacks)."""
    if mode not in ("nearest", "bilinear"):
        raise Unsupported(f"interpolation mode {mode!r} is not supported (only 'nearest' and 'bilinear')")
    if recompute or antialias:
        raise Unsupported("recompute_scale_factor=True and antialias=True are not supported")
    if isinstance(scale_factor, (list, tuple)):
        scale_factor = tuple(float(s) for s in scale_factor)
        scale_factor = scale_factor[0] if len(set(scale_factor)) == 1 else scale_factor
    elif scale_factor is not None:
        scale_factor = float(scale_factor)
    return {"size": None if size is None else _spatial(size), "scale_factor": scale_factor, "mode": mode,
            "align_corners": align_corners}


def _interpolate(a: Args) -> Emit:
    return Emit("upsample", upsample_params(a.get(1, "size"), a.get(2, "scale_factor"), a.get(3, "mode", "nearest"),
                                            a.get(4, "align_corners"), a.get(5, "recompute_scale_factor"),
                                            a.get(6, "antialias", False)), [a.tensor(0)])


_register(_interpolate, F.interpolate, F.upsample)


def _split(a: Args) -> Emit:
    x = a.tensor(0)
    sizes = a.get(1, "split_size_or_sections", a.get(1, "split_size"))
    return Emit("split", {"split_size_or_sections": sizes if isinstance(sizes, int) else _ints(sizes),
                          "dim": int(a.get(2, "dim", 0))}, [x])


def _chunk(a: Args) -> Emit:
    x = a.tensor(0)
    chunks, dim = int(a.get(1, "chunks")), int(a.get(2, "dim", 0))
    return Emit("split", {"split_size_or_sections": -(-x.value.shape[dim] // chunks), "dim": dim}, [x])


_register(_split, torch.split, "split")
_register(_chunk, torch.chunk, "chunk")


def _sdpa(a: Args) -> Emit:
    mask, scale = a.get(3, "attn_mask"), a.get(6, "scale")
    params: dict[str, Any] = {"dropout_p": float(a.get(4, "dropout_p", 0.0)),
                              "scale": None if scale is None else float(scale),
                              "enable_gqa": bool(a.get(7, "enable_gqa", False))}
    tensors = [a.tensor(0, "query"), a.tensor(1, "key"), a.tensor(2, "value")]
    if mask is None:
        return Emit("scaled_dot_product_attention", {**params, "is_causal": bool(a.get(5, "is_causal", False))},
                    tensors)
    if a.get(5, "is_causal", False):
        raise Unsupported("attn_mask together with is_causal=True (torch refuses it too)")
    return Emit("scaled_dot_product_attention_masked", params, [*tensors, a.tensor(3, "attn_mask")])


_register(_sdpa, F.scaled_dot_product_attention)


def _alias(a: Args) -> Ref:
    return a.tensor(0)


_register(_alias, "contiguous", "clone", "detach", torch.clone)

# Functions that read parameters directly: say what to use instead.
FUNCTIONAL_WITH_WEIGHTS = {F.conv1d: "nn.Conv1d", F.conv2d: "nn.Conv2d", F.conv3d: "nn.Conv3d", F.linear: "nn.Linear",
                           F.batch_norm: "nn.BatchNorm2d", F.layer_norm: "nn.LayerNorm", F.group_norm: "nn.GroupNorm",
                           F.embedding: "nn.Embedding"}


def _upsample_nearest(a: Args) -> Emit:  # aten.upsample_nearest2d.vec(input, output_size, scale_factors)
    return Emit("upsample", upsample_params(a.get(1, "output_size"), a.get(2, "scale_factors"), "nearest", None),
                [a.tensor(0)])


def _upsample_bilinear(a: Args) -> Emit:  # aten.upsample_bilinear2d.vec(input, output_size, align_corners, scales)
    return Emit("upsample", upsample_params(a.get(1, "output_size"), a.get(3, "scale_factors"), "bilinear",
                                            bool(a.get(2, "align_corners"))), [a.tensor(0)])


def _hardtanh(a: Args) -> Emit:
    if (a.get(1, "min_val", -1.0), a.get(2, "max_val", 1.0)) != (0.0, 6.0):
        raise Unsupported("hardtanh other than relu6 (min 0, max 6) is not supported")
    return Emit("relu6", {}, [a.tensor(0)])


def _aten_table() -> dict[Any, Any]:
    aten = torch.ops.aten
    return {
        aten.relu: torch.relu, aten.relu_: torch.relu, aten.sigmoid: torch.sigmoid, aten.tanh: torch.tanh,
        aten.hardswish: F.hardswish, aten.hardswish_: F.hardswish, aten.hardsigmoid: F.hardsigmoid,
        aten.silu: F.silu, aten.gelu: F.gelu, aten.leaky_relu: F.leaky_relu, aten.softmax: torch.softmax,
        aten.log_softmax: torch.log_softmax, aten.dropout: F.dropout,
        aten.add: torch.add, aten.add_: torch.add, aten.sub: torch.sub, aten.sub_: torch.sub, aten.mul: torch.mul,
        aten.mul_: torch.mul, aten.matmul: torch.matmul, aten.bmm: torch.bmm, aten.cat: torch.cat,
        aten.flatten: torch.flatten, aten.view: torch.reshape, aten.reshape: torch.reshape,
        aten._unsafe_view: torch.reshape, aten.permute: torch.permute, aten.transpose: torch.transpose,
        aten.mean: torch.mean, aten.adaptive_avg_pool2d: F.adaptive_avg_pool2d,
        aten.max_pool2d: F.max_pool2d, aten.avg_pool2d: F.avg_pool2d, aten.split: torch.split,
        aten.chunk: torch.chunk, aten.scaled_dot_product_attention: F.scaled_dot_product_attention,
        aten.contiguous: torch.clone, aten.clone: torch.clone, aten.alias: torch.clone, aten.detach: torch.clone,
        aten.upsample_nearest2d: _upsample_nearest, aten.upsample_bilinear2d: _upsample_bilinear,
        aten.hardtanh: _hardtanh, aten.hardtanh_: _hardtanh,
    }


_ATEN: dict[Any, Any] = {}


def aten_target(target: Any) -> Any:
    """The torch-level function whose handler reads the same arguments as aten op `target` (export path)."""
    if not _ATEN:
        _ATEN.update(_aten_table())
    packet = getattr(target, "overloadpacket", None)
    found = _ATEN.get(packet, target) if packet is not None else target
    if found in (_upsample_nearest, _upsample_bilinear, _hardtanh):
        FUNCTIONS.setdefault(found, found)
    return found


def function_handler(kind: str, target: Any) -> Handler | None:
    """The handler for a ``call_function`` (target: the function) or ``call_method`` (target: its name).

    An ATen overload not in the table (export path) takes the handler of the torch function or tensor method
    of the same name, whose arguments come in the same order."""
    if kind == "call_method":
        return METHODS.get(target)
    try:
        found = FUNCTIONS.get(target)
    except TypeError:  # unhashable target
        return None
    packet = getattr(target, "overloadpacket", None)
    if found is None and packet is not None:
        name = packet.__name__
        found = ATEN_HANDLERS.get(packet) or FUNCTIONS.get(getattr(torch, name, None)) or METHODS.get(name)
    return found


ATEN_HANDLERS: dict[Any, Handler] = {}  # ATen calls whose arguments differ from their torch function's


def function_name(target: Any) -> str:
    """A readable name for a traced function target (``torch.nn.functional.gelu``)."""
    if isinstance(target, str):
        return f"Tensor.{target}"
    module = getattr(target, "__module__", None) or ""
    name = getattr(target, "__name__", None) or repr(target)
    return f"{module}.{name}" if module else name


# -- modules ----------------------------------------------------------------------------------------------------------
# Which module classes import as which op comes from the op declarations (`module=`, `read=`); the only
# module mapped here is one whose call arguments choose params.
ModuleMapper = Callable[[nn.Module, Args], Emit]


def _mha(m: nn.MultiheadAttention, a: Args) -> Emit:
    _need_default(a, {(3, "key_padding_mask"): None, (5, "attn_mask"): None, (6, "average_attn_weights"): True,
                      (7, "is_causal"): False})
    if m.bias_k is not None or m.add_zero_attn:
        raise Unsupported("MultiheadAttention with add_bias_kv or add_zero_attn is not supported")
    if not m.batch_first:
        raise Unsupported("MultiheadAttention with batch_first=False: construct it with batch_first=True "
                          "(inputs (N, L, E))")
    need_weights = bool(a.get(4, "need_weights", True))
    bias = m.in_proj_bias is not None
    return Emit("multihead_attention", {"num_heads": m.num_heads, "dropout": m.dropout, "bias": bias,
                                        "need_weights": need_weights},
                [a.tensor(0, "query"), a.tensor(1, "key"), a.tensor(2, "value")])


CALL_MAPPERS: dict[type[nn.Module], ModuleMapper] = {nn.MultiheadAttention: _mha}


def module_opdef(cls: type) -> OpDef | None:
    """The op declared for module class `cls` (``module=`` in its declaration, ``@gb.op`` classes included)."""
    source = f"{cls.__module__}.{cls.__qualname__}"
    for opdef in registry.all_ops():
        if opdef.module is cls:
            return opdef
    for opdef in registry.all_ops():  # declared with source= naming the class (and built from it)
        if opdef.source == source and opdef.build is not None:
            return opdef
    return None


def is_leaf(m: nn.Module) -> bool:
    """Whether a module call becomes one IR node (a declared torch.nn layer or a ``@gb.op`` class)."""
    return type(m) in CALL_MAPPERS or module_opdef(type(m)) is not None


def module_emit(m: nn.Module, a: Args) -> Emit:
    """The IR node for a call of leaf module `m` with arguments `a` (weights: its state_dict)."""
    mapper = CALL_MAPPERS.get(type(m))
    if mapper is not None:
        emit = mapper(m, a)
    else:
        opdef = module_opdef(type(m))
        assert opdef is not None
        try:
            params = (opdef.read or read_attributes(opdef.params))(m)
        except GraphError as e:
            raise Unsupported(e.message) from None
        if a.kwargs or len(a.args) != len(opdef.inputs):
            raise Unsupported(f"op {opdef.name!r} takes {len(opdef.inputs)} tensor input(s) {opdef.inputs}")
        if opdef.variadic:  # the module takes its tensors as one list, as compiled code calls it
            *fixed, listed = a.args
            if not isinstance(listed, (list, tuple)) or not all(isinstance(r, Ref) for r in listed):
                raise Unsupported(f"op {opdef.name!r} takes a list of tensors as its last argument")
            emit = Emit(opdef.name, params, [a.tensor(i) for i in range(len(fixed))] + list(listed))
        else:
            emit = Emit(opdef.name, params, [a.tensor(i) for i in range(len(opdef.inputs))])
    emit.weights = {k: v.detach().clone() for k, v in m.state_dict().items()}
    return emit
