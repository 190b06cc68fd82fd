"""Low-level tensor ops: indexing, shape changes, elementwise math, comparisons, reductions, products.

These are what real models' forward code is made of beyond layers (ViT's class token, Swin's windows, T5's
relative positions, Llama's rotary embedding). They get their own palette category so the everyday
categories stay readable. `aten=` lists the ATen overload packets each op stands for: the importer's
allow-list for calls it captures at the ATen level (nothing else is resolved by name).
"""

from __future__ import annotations

import operator
from typing import Any

import torch
import torch.nn.functional as F

from graphbuilder.ir.errors import GraphError
from graphbuilder.ir.schema import Param, TensorSpec
from graphbuilder.ops.declare import (
    MAX_DIM,
    TORCH_DTYPES,
    Specs,
    broadcastable,
    choice,
    dims_in_range,
    example,
    flag,
    function_op,
    integer,
    named,
    number,
    size,
    spatial,
)
from graphbuilder.ops.modules import tensors as T

LOW = "tensor (low-level)"
aten = torch.ops.aten
_DIM = integer("dimension index (negative counts from the end)", -1, lo=None)
_KEEPDIM = flag("keep reduced dims as size 1", False)
_INTS = (TensorSpec((3, 4), "int64"),)


def low(name: str, doc: str, function: Any, params: tuple[Param, ...] = (), **kw: Any) -> None:
    """Declare a low-level tensor op (a function op in this module's category)."""
    function_op(name, LOW, doc, function, params, **kw)


# -- indexing ------------------------------------------------------------------------------------------------------
def parse_index(text: str) -> tuple[Any, ...]:
    """A numpy-style index written as text (``"[:, 0, 1:3, None, ..., ::2]"``) as a tuple of ints, slices,
    None and Ellipsis. Parsed, never evaluated: anything else raises `GraphError`."""
    body = text.strip()
    if body.startswith("[") and body.endswith("]"):
        body = body[1:-1]
    if not body.strip():
        return ()
    items: list[Any] = []
    for raw in body.split(","):
        part = raw.strip()
        try:
            if part == "...":
                items.append(Ellipsis)
            elif part == "None":
                items.append(None)
            elif ":" in part:
                bounds = [b.strip() for b in part.split(":")]
                if len(bounds) > 3:
                    raise ValueError
                items.append(slice(*(int(b) if b else None for b in bounds)))
            else:
                items.append(int(part))
        except ValueError:
            raise GraphError(f"index {text!r}: cannot read {part!r}; write ints, start:stop:step slices, None "
                             "and ... separated by commas, e.g. [:, 0, 1:3, None, ..., ::2]") from None
    if sum(i is Ellipsis for i in items) > 1:
        raise GraphError(f"index {text!r} has more than one ...")
    return tuple(items)


def format_index(items: tuple[Any, ...]) -> str:
    """The text form of an index tuple (the inverse of `parse_index`)."""
    def one(i: Any) -> str:
        if i is Ellipsis:
            return "..."
        if i is None:
            return "None"
        if isinstance(i, slice):
            text = f"{'' if i.start is None else i.start}:{'' if i.stop is None else i.stop}"
            return text + (f":{i.step}" if i.step is not None else "")
        return str(int(i))
    return "[" + ", ".join(one(i) for i in items) + "]"


def _index_check(p: dict[str, Any], specs: Specs) -> None:
    items = parse_index(p["index"])
    if any(isinstance(i, slice) and i.step is not None and i.step <= 0 for i in items):
        raise GraphError(f"index {p['index']!r}: slice steps must be positive")


low("getitem", "x[index]: basic indexing with ints, slices (with steps, negative bounds), None and ...",
    operator.getitem, named(index=Param("str", "[:]", doc="numpy-style index, e.g. [:, 0, 1:3, None, ..., ::2, -1]")),
    kwargs=None, args=lambda p: (parse_index(p["index"]),), check=_index_check,
    examples=[example((2, 5, 6), index="[:, 1:4:2, None, -1]", ref=lambda x: x[:, 1:4:2, None, -1]),
              example((2, 3, 4, 5), index="[..., 0, ::3]", ref=lambda x: x[..., 0, ::3]),
              example((4, 5), index="[-1]", ref=lambda x: x[-1])])
low("index_select", "table[index] along dim: picks rows by an int64 index tensor (any shape, which replaces dim).",
    T.index_select, named(dim=integer("the dim indexed", 0, lo=None)), inputs=("input", "index"),
    examples=[example((5, 3), *_INTS, dim=0, high=5, ref=lambda x, i: x[i])])


def _index_tensors_check(p: dict[str, Any], specs: Specs) -> None:
    if len(p["dims"]) != len(specs) - 1:
        raise GraphError(f"dims {p['dims']} name {len(p['dims'])} indexed dims but {len(specs) - 1} index tensors are "
                         "connected; give one dim per index tensor")
    if len(set(p["dims"])) != len(p["dims"]):
        raise GraphError(f"dims {p['dims']} repeat a dim")


low("index_tensors", "x[i, :, j]: advanced indexing by int64 (or bool) index tensors at dims, broadcast together as "
    "torch does; other dims whole.", T.index_tensors,
    named(dims=Param("ints", min=0, max=MAX_DIM, doc="the dim each index tensor indexes, in order")),
    inputs=("tensors",), variadic=True, check=_index_tensors_check,
    examples=[example((3, 4, 5), TensorSpec((2, 1), "int64"), TensorSpec((1, 3), "int64"), dims=(0, 2), high=3,
                      ref=lambda x, i, j: x[i, :, j])])
low("gather", "torch.gather: out[i][j] = input[i][index[i][j]] along dim.", T.gather,
    named(dim=_DIM), inputs=("input", "index"), aten=(aten.gather,),
    examples=[example((3, 5), TensorSpec((3, 2), "int64"), dim=1, high=5,
                      ref=lambda x, i: torch.gather(x, 1, i))])

# -- shapes ----------------------------------------------------------------------------------------------------------
_SIZES = Param("ints", min=-1, max=MAX_DIM, doc="sizes; -1 keeps a dim")
low("expand", "Broadcast size-1 dims to sizes (no copy).", T.expand, named(size=_SIZES), aten=(aten.expand,),
    examples=[example((1, 1, 4), size=(2, 3, -1), ref=lambda x: x.expand(2, 3, -1))])
low("repeat", "Tile the tensor repeats[i] times along dim i.", T.repeat,
    named(repeats=Param("ints", min=1, max=MAX_DIM, doc="copies per dim")), aten=(aten.repeat,),
    examples=[example((2, 3), repeats=(2, 1, 2), ref=lambda x: x.repeat(2, 1, 2))])
low("squeeze", "Drop size-1 dims (all, or those listed).", T.squeeze,
    named(dim=Param("ints", min=-MAX_DIM, max=MAX_DIM, optional=True, doc="dims to drop (default: every size-1 dim)")),
    examples=[example((2, 1, 3, 1), dim=(1,), ref=lambda x: x.squeeze(1)), example((2, 1, 3, 1), ref=torch.squeeze)])
low("unsqueeze", "Insert a size-1 dim at dim.", torch.unsqueeze, named(dim=_DIM), aten=(aten.unsqueeze,),
    examples=[example((2, 3), dim=1, ref=lambda x: x.unsqueeze(1))])
low("chunk", "Split into `chunks` near-equal pieces along dim (one output each).", torch.chunk,
    named(chunks=size("number of pieces"), dim=_DIM), aten=(aten.chunk,),
    examples=[example((2, 7), chunks=3, dim=1, ref=lambda x: x.chunk(3, 1))])
low("unbind", "Remove dim, one output per index along it.", torch.unbind,
    named(dim=integer("dim to remove", 0, lo=None)),
    aten=(aten.unbind,), examples=[example((3, 2, 4), dim=0, ref=torch.unbind)])
low("stack", "Stack tensors of equal shape along a new dim.", torch.stack, named(dim=integer("new dim", 0, lo=None)),
    inputs=("tensors",), variadic=True, aten=(aten.stack,),
    examples=[example((2, 3), (2, 3), dim=1, ref=lambda a, b: torch.stack([a, b], 1))])
low("roll", "Roll elements along dims by shifts (circular).", torch.roll,
    named(shifts=Param("ints", min=-MAX_DIM, max=MAX_DIM, doc="shift per dim"),
          dims=Param("ints", min=-MAX_DIM, max=MAX_DIM, doc="dims to roll")), aten=(aten.roll,),
    examples=[example((2, 5, 6), shifts=(2, -1), dims=(1, 2), ref=lambda x: torch.roll(x, (2, -1), (1, 2)))])
low("flip", "Reverse the order along dims.", torch.flip,
    named(dims=Param("ints", min=-MAX_DIM, max=MAX_DIM, doc="dims")),
    aten=(aten.flip,), examples=[example((2, 5), dims=(1,), ref=lambda x: x.flip(1))])
low("pad", "F.pad: pad the last dims by (left, right, top, bottom, ...), filled by mode.", F.pad,
    named(pad=Param("ints", min=-MAX_DIM, max=MAX_DIM, doc="(left, right[, top, bottom[, front, back]])"),
          mode=choice("fill", ("constant", "reflect", "replicate", "circular"), "constant"),
          value=number("fill value for mode 'constant'", 0.0)),
    examples=[example((2, 3, 4, 5), pad=(1, 2, 0, 1), value=0.5, ref=lambda x: F.pad(x, (1, 2, 0, 1), value=0.5)),
              example((2, 3, 4, 5), pad=(1, 1, 2, 2), mode="reflect", ref=lambda x: F.pad(x, (1, 1, 2, 2), "reflect")),
              example((2, 3, 6), pad=(2, 1), mode="replicate", ref=lambda x: F.pad(x, (2, 1), "replicate")),
              example((2, 3, 4, 5), pad=(1, 1, 1, 1), mode="circular",
                      ref=lambda x: F.pad(x, (1, 1, 1, 1), "circular"))])
low("pixel_shuffle", "(N, C r^2, H, W) -> (N, C, H r, W r).", F.pixel_shuffle,
    named(upscale_factor=size("r")),
    examples=[example((2, 8, 3, 3), upscale_factor=2, ref=lambda x: F.pixel_shuffle(x, 2))])
low("pixel_unshuffle", "(N, C, H r, W r) -> (N, C r^2, H, W).", F.pixel_unshuffle,
    named(downscale_factor=size("r")),
    examples=[example((2, 2, 6, 4), downscale_factor=2, ref=lambda x: F.pixel_unshuffle(x, 2))])
_WINDOW = dict(kernel_size=spatial("window size", lo=1, n=2), dilation=spatial("window spacing", 1, lo=1, n=2),
               padding=spatial("zero padding", 0, n=2), stride=spatial("window step", 1, lo=1, n=2))
low("unfold", "F.unfold (im2col): sliding local blocks of (N, C, H, W) as columns (N, C k k, L).", F.unfold,
    named(**_WINDOW), examples=[example((2, 3, 5, 5), kernel_size=2, stride=1,
                                        ref=lambda x: F.unfold(x, 2))])
low("fold", "F.fold (col2im): sum columns (N, C k k, L) back into (N, C, H, W) blocks.", F.fold,
    named(output_size=spatial("output height and width", lo=1, n=2), **_WINDOW),
    examples=[example((2, 12, 16), output_size=5, kernel_size=2, ref=lambda x: F.fold(x, 5, 2))])
low("cast", "Convert to another dtype (x.to(dtype)).", T.cast,
    named(dtype=choice("element type", tuple(TORCH_DTYPES), "float32")),
    kwargs=lambda p: {"dtype": TORCH_DTYPES[p["dtype"]]},
    examples=[example((2, 3), dtype="float64", ref=lambda x: x.double()),
              example(TensorSpec((2, 3), "int64"), dtype="float32", high=9, ref=lambda x: x.float())])

# -- elementwise ----------------------------------------------------------------------------------------------------
for _name, _fn, _doc, _ex in (
    ("sqrt", torch.sqrt, "Square root.", dict(low=0.1, high=4.0)),
    ("rsqrt", torch.rsqrt, "1 / sqrt(x).", dict(low=0.1, high=4.0)),
    ("exp", torch.exp, "e^x.", {}),
    ("log", torch.log, "Natural logarithm.", dict(low=0.1, high=4.0)),
    ("abs", torch.abs, "|x|.", {}),
    ("neg", torch.neg, "-x.", {}),
    ("erf", torch.erf, "Gauss error function.", {}),
    ("reciprocal", torch.reciprocal, "1 / x.", dict(low=0.5, high=2.0)),
    ("sin", torch.sin, "Sine.", {}),
    ("cos", torch.cos, "Cosine.", {}),
    ("logical_not", torch.logical_not, "not x (bool result).", {}),
    ("sign", torch.sign, "-1, 0 or 1.", {}),
    ("floor", torch.floor, "Round down.", {}),
):
    low(_name, _doc, _fn, aten=(getattr(aten, _name),), examples=[example((2, 5), ref=_fn, **_ex)])

for _name, _fn, _doc in (("div", torch.div, "input / other, broadcasting."),
                         ("pow", torch.pow, "input ** other, broadcasting."),
                         ("maximum", torch.maximum, "Elementwise max, broadcasting."),
                         ("minimum", torch.minimum, "Elementwise min, broadcasting."),
                         ("eq", torch.eq, "input == other (bool), broadcasting."),
                         ("ne", torch.ne, "input != other (bool), broadcasting."),
                         ("lt", torch.lt, "input < other (bool), broadcasting."),
                         ("le", torch.le, "input <= other (bool), broadcasting."),
                         ("gt", torch.gt, "input > other (bool), broadcasting."),
                         ("ge", torch.ge, "input >= other (bool), broadcasting."),
                         ("logical_and", torch.logical_and, "input and other (bool), broadcasting."),
                         ("logical_or", torch.logical_or, "input or other (bool), broadcasting.")):
    low(_name, _doc, _fn, inputs=("input", "other"), check=broadcastable,
        examples=[example((2, 3, 4), (3, 1), ref=_fn, **(dict(low=0.5, high=2.0) if _name == "pow" else {}))])

_SCALAR = number("the scalar", 1.0)
for _name, _fn, _doc, _ref in (
    ("add_scalar", torch.add, "input + other (a number).", lambda x: x + 1.5),
    ("sub_scalar", torch.sub, "input - other (a number).", lambda x: x - 1.5),
    ("mul_scalar", torch.mul, "input * other (a number).", lambda x: x * 1.5),
    ("div_scalar", torch.div, "input / other (a number).", lambda x: x / 1.5),
    ("rsub_scalar", T.rsub, "other - input (a number minus the tensor).", lambda x: 1.5 - x),
    ("rdiv_scalar", T.rdiv, "other / input (a number over the tensor).", lambda x: 1.5 / x),
):
    low(_name, _doc, _fn, named(other=_SCALAR), examples=[example((2, 5), other=1.5, ref=_ref, low=0.5, high=2.0)])
low("pow_scalar", "input ** exponent (a number).", torch.pow, named(exponent=number("the exponent", 2.0)),
    examples=[example((2, 5), exponent=2.0, ref=lambda x: x.pow(2)),
              example((2, 5), exponent=0.5, ref=lambda x: x ** 0.5, low=0.1, high=2.0)])
low("rpow_scalar", "base ** input (a number to the tensor's power).", T.rpow,
    named(base=number("the base", 2.0, lo=0.0)),
    examples=[example((2, 5), base=10000.0, ref=lambda x: torch.pow(10000.0, x))])
low("compare_scalar", "input compared with a number: eq, ne, lt, le, gt, ge (bool result).", T.compare,
    named(other=number("the number", 0.0), mode=choice("comparison", ("eq", "ne", "lt", "le", "gt", "ge"), "eq")),
    examples=[example((2, 5), other=0.0, mode="gt", ref=lambda x: x > 0)])
low("clamp", "Clamp into [min, max] (either bound optional).", torch.clamp,
    named(min=number("lower bound", optional=True), max=number("upper bound", optional=True)), aten=(aten.clamp,),
    examples=[example((2, 5), min=-0.5, max=0.5, ref=lambda x: x.clamp(-0.5, 0.5)),
              example((2, 5), min=0.0, ref=lambda x: x.clamp(min=0))])
low("where", "condition ? input : other, broadcasting.", torch.where, inputs=("condition", "input", "other"),
    examples=[example(TensorSpec((2, 5), "bool"), (2, 5), (1, 5), ref=torch.where)])
low("where_scalar", "where with a number branch: condition ? value : input (fill_true), else condition ? input "
    ": value.", T.where_scalar,
    named(value=number("the number", 0.0), fill_true=flag("value where condition holds", False)),
    inputs=("condition", "input"),
    examples=[example(TensorSpec((2, 5), "bool"), (2, 5), value=-2.0,
                      ref=lambda c, x: torch.where(c, x, torch.tensor(-2.0))),
              example(TensorSpec((1, 5), "bool"), (2, 5), value=3.0, fill_true=True,
                      ref=lambda c, x: torch.where(c, torch.tensor(3.0), x))])
low("masked_fill", "input with value where mask is true.", torch.masked_fill, named(value=number("fill value", 0.0)),
    inputs=("input", "mask"), examples=[example((2, 5), TensorSpec((1, 5), "bool"), value=-1e4,
                                                 ref=lambda x, m: x.masked_fill(m, -1e4))])
low("addcmul", "input + value * tensor1 * tensor2.", torch.addcmul, named(value=number("multiplier", 1.0)),
    inputs=("input", "tensor1", "tensor2"),
    examples=[example((2, 5), (2, 5), (1, 5), value=0.5, ref=lambda a, b, c: torch.addcmul(a, b, c, value=0.5))])

# -- reductions ---------------------------------------------------------------------------------------------------
_DIMS = Param("ints", min=-MAX_DIM, max=MAX_DIM, optional=True, doc="dims to reduce (default: all)")


def _over(dims: Any) -> Any:
    return () if dims is None else dims


def _reduce_ref(fn: Any, *args: Any, **kw: Any) -> Any:
    return lambda x: fn(x, *args, **kw)


low("sum", "Sum over dims.", torch.sum, named(dim=_DIMS, keepdim=_KEEPDIM),
    kwargs=lambda p: {"dim": _over(p["dim"]), "keepdim": p["keepdim"]},
    examples=[example((2, 3, 4), dim=(1, 2), keepdim=True, ref=_reduce_ref(torch.sum, (1, 2), keepdim=True)),
              example((2, 3, 4), ref=_reduce_ref(torch.sum, ()))])
for _name, _fn in (("amax", torch.amax), ("amin", torch.amin)):
    low(_name, f"torch.{_name} over dims.", _fn, named(dim=_DIMS, keepdim=_KEEPDIM),
        kwargs=lambda p: {"dim": _over(p["dim"]), "keepdim": p["keepdim"]},
        examples=[example((2, 3, 4), dim=(1, 2), keepdim=True, ref=_reduce_ref(_fn, (1, 2), keepdim=True)),
                  example((2, 3, 4), dim=(-1,), ref=_reduce_ref(_fn, -1))])
low("logsumexp", "log(sum(exp(x))) over dims, computed stably.", torch.logsumexp,
    named(dim=Param("ints", (-1,), min=-MAX_DIM, max=MAX_DIM, doc="dims to reduce"), keepdim=_KEEPDIM),
    examples=[example((2, 3, 4), dim=(1, 2), keepdim=True, ref=_reduce_ref(torch.logsumexp, (1, 2), keepdim=True))])
for _name, _fn, _ref in (("max", T.reduce_max, torch.max), ("min", T.reduce_min, torch.min)):
    low(_name, f"torch.{_name} over one dim: values and indices (two outputs).", _fn,
        named(dim=_DIM, keepdim=_KEEPDIM), check=dims_in_range("dim"),
        examples=[example((2, 5, 3), dim=1, ref=_reduce_ref(_ref, 1))])
for _name, _fn in (("var", torch.var), ("std", torch.std)):
    low(_name, f"torch.{_name} over dims with a correction (1: unbiased).", _fn,
        named(dim=_DIMS, correction=integer("subtracted from the count", 1, lo=0), keepdim=_KEEPDIM),
        examples=[example((2, 3, 4), dim=(2,), correction=0, keepdim=True,
                          ref=_reduce_ref(_fn, 2, correction=0, keepdim=True))])
low("norm", "p-norm over dims (torch.linalg.vector_norm).", torch.linalg.vector_norm,
    named(ord=number("p", 2.0), dim=_DIMS, keepdim=_KEEPDIM),
    examples=[example((2, 3, 4), dim=(-1,), keepdim=True, ref=lambda x: x.norm(dim=-1, keepdim=True))])
low("normalize", "x / max(p-norm over dim, eps) (F.normalize).", F.normalize,
    named(p=number("p", 2.0), dim=integer("dim", 1, lo=None), eps=number("lower bound of the norm", 1e-12, lo=0.0)),
    examples=[example((2, 5), dim=-1, ref=lambda x: F.normalize(x, dim=-1))])
low("cumsum", "Cumulative sum along dim.", torch.cumsum, named(dim=_DIM), aten=(aten.cumsum,),
    examples=[example((2, 5), dim=1, ref=lambda x: x.cumsum(1))])
low("argmax", "Index of the max along dim.", torch.argmax, named(dim=_DIM, keepdim=_KEEPDIM),
    examples=[example((2, 5), dim=1, ref=lambda x: x.argmax(1))])

low("linear_functional", "F.linear(input, weight, bias) on three tensors: for a weight or bias computed in the "
    "graph (the linear op holds its own).", F.linear, inputs=("input", "weight", "bias"),
    hint="(..., in), (out, in) and (out,)", examples=[example((2, 3, 4), (5, 4), (5,), ref=F.linear)])

# -- products -----------------------------------------------------------------------------------------------------
low("bmm", "Batched matrix product (B, n, k) @ (B, k, m).", torch.bmm, inputs=("input", "mat2"),
    examples=[example((2, 3, 4), (2, 4, 5), ref=torch.bmm)])
low("baddbmm", "beta * input + alpha * (batch1 @ batch2).", torch.baddbmm,
    named(beta=number("multiplier of input", 1.0), alpha=number("multiplier of the product", 1.0)),
    inputs=("input", "batch1", "batch2"),
    examples=[example((2, 3, 5), (2, 3, 4), (2, 4, 5), beta=0.5, alpha=2.0,
                      ref=lambda a, b, c: torch.baddbmm(a, b, c, beta=0.5, alpha=2.0))])


def _einsum_check(p: dict[str, Any], specs: Specs) -> None:
    if not all(c.isalpha() or c in ",->. " for c in p["equation"]):
        raise GraphError(f"equation {p['equation']!r} may hold only letters, ',', '->' and '...'")


low("einsum", "torch.einsum over the inputs, e.g. 'bhqd,bhkd->bhqk'.", T.einsum,
    named(equation=Param("str", "ij,jk->ik", doc="subscripts, e.g. 'bhqd,bhkd->bhqk'")), inputs=("operands",),
    variadic=True, check=_einsum_check,
    examples=[example((2, 3, 4), (2, 5, 4), equation="bqd,bkd->bqk",
                      ref=lambda a, b: torch.einsum("bqd,bkd->bqk", a, b))])
