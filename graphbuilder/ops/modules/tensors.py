"""Torch side of the learnable-tensor, constant and low-level tensor ops (imports only torch and typing).

`export.to_python` inlines this file, so compiled and exported models need no GraphBuilder. The functions
are TorchScript-compatible (typed arguments), so scripted and exported models can call them.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class Parameter(nn.Module):
    """A learnable tensor of a fixed shape (class token, position embedding, layer scale); `forward()` returns it.

    Initialisers: zeros, ones, normal(0, std), trunc_normal (normal cut at +-2 std, as in ViT).
    """

    def __init__(self, shape: tuple[int, ...], init: str = "trunc_normal", std: float = 0.02) -> None:
        super().__init__()
        self.value = nn.Parameter(torch.empty(shape))
        with torch.no_grad():
            if init == "zeros":
                self.value.zero_()
            elif init == "ones":
                self.value.fill_(1.0)
            elif init == "normal":
                self.value.normal_(0.0, std)
            else:
                nn.init.trunc_normal_(self.value, std=std, a=-2 * std, b=2 * std)

    def forward(self) -> Tensor:
        return self.value


class Constant(nn.Module):
    """A non-trainable tensor (a buffer: masks, index tables, values folded from shapes); `forward()` returns it.

    Fills: zeros, ones, full (every entry `value`), arange (0, 1, 2, ... in row-major order).
    """

    def __init__(self, shape: tuple[int, ...], dtype: torch.dtype = torch.float32, fill: str = "zeros",
                 value: float = 0.0) -> None:
        super().__init__()
        if fill == "arange":
            count = 1
            for n in shape:
                count *= n
            data = torch.arange(count).reshape(shape).to(dtype)
        elif fill == "ones":
            data = torch.ones(shape, dtype=dtype)
        elif fill == "full":
            data = torch.full(shape, value).to(dtype)
        else:
            data = torch.zeros(shape, dtype=dtype)
        self.register_buffer("value", data)

    def forward(self) -> Tensor:
        return self.value


def expand(x: Tensor, size: list[int]) -> Tensor:
    """``x.expand(*size)``: broadcast size-1 dims (-1 keeps a dim)."""
    return x.expand(size)


def repeat(x: Tensor, repeats: list[int]) -> Tensor:
    """``x.repeat(*repeats)``: tile the tensor."""
    return x.repeat(repeats)


def squeeze(x: Tensor, dim: list[int] | None = None) -> Tensor:
    """Drop size-1 dims: all of them, or those in `dim`."""
    return x.squeeze() if dim is None else x.squeeze(dim)


def index_tensors(tensors: list[Tensor], dims: list[int]) -> Tensor:
    """``tensors[0][..., i, ..., j, ...]``: advanced indexing of `tensors[0]` at `dims` by the other tensors
    (broadcast together, as torch does); every other dim is taken whole."""
    full: list[Tensor | None] = [None] * (max(dims) + 1)
    for k in range(len(dims)):
        full[dims[k]] = tensors[k + 1]
    return torch.ops.aten.index.Tensor(tensors[0], full)


def gather(x: Tensor, index: Tensor, dim: int) -> Tensor:
    """``torch.gather(x, dim, index)`` with the tensors first."""
    return torch.gather(x, dim, index)


def index_select(x: Tensor, index: Tensor, dim: int) -> Tensor:
    """``x.index_select(dim, index.flatten())`` reshaped to the index's shape at `dim` (``table[idx]``)."""
    picked = x.index_select(dim, index.flatten())
    shape = list(x.shape[:dim]) + list(index.shape) + list(x.shape[dim + 1:])
    return picked.reshape(shape)


def cast(x: Tensor, dtype: torch.dtype) -> Tensor:
    """``x.to(dtype)``."""
    return x.to(dtype)


def compare(x: Tensor, other: float, mode: str) -> Tensor:
    """``x op other`` with a scalar: eq, ne, lt, le, gt, ge."""
    if mode == "eq":
        return x == other
    if mode == "ne":
        return x != other
    if mode == "lt":
        return x < other
    if mode == "le":
        return x <= other
    if mode == "gt":
        return x > other
    return x >= other


def where_scalar(condition: Tensor, x: Tensor, value: float, fill_true: bool) -> Tensor:
    """``where(condition, value, x)`` (`fill_true`) or ``where(condition, x, value)`` with a number branch."""
    filled = torch.full_like(x, value)
    return torch.where(condition, filled, x) if fill_true else torch.where(condition, x, filled)


def einsum(tensors: list[Tensor], equation: str) -> Tensor:
    """``torch.einsum(equation, *tensors)``."""
    return torch.einsum(equation, tensors)


def reduce_max(x: Tensor, dim: int, keepdim: bool = False) -> tuple[Tensor, Tensor]:
    """``x.max(dim, keepdim)``: values and indices."""
    out = torch.max(x, dim, keepdim)
    return out[0], out[1]


def reduce_min(x: Tensor, dim: int, keepdim: bool = False) -> tuple[Tensor, Tensor]:
    """``x.min(dim, keepdim)``: values and indices."""
    out = torch.min(x, dim, keepdim)
    return out[0], out[1]


def rsub(x: Tensor, other: float) -> Tensor:
    """``other - x``."""
    return other - x


def rdiv(x: Tensor, other: float) -> Tensor:
    """``other / x``."""
    return other / x


def rpow(x: Tensor, base: float) -> Tensor:
    """``base ** x``."""
    return torch.pow(base, x)
