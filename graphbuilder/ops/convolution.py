"""Convolutions, linear layers and embeddings. Input sizes (in_channels, in_features) come from shapes."""

from __future__ import annotations

from typing import Any

import torch.nn.functional as F
from torch import nn

from graphbuilder.ir.errors import GraphError
from graphbuilder.ir.schema import TensorSpec
from graphbuilder.ops.declare import (
    Specs,
    channels,
    choice,
    example,
    features,
    flag,
    integer,
    module_op,
    named,
    need_rank,
    read_attributes,
    size,
    spatial,
)


def _conv_params(n: int) -> dict:
    return dict(
        out_channels=size("number of output channels"),
        kernel_size=spatial("kernel size, one int or one per spatial dim", lo=1, n=n),
        stride=spatial("stride", 1, lo=1, n=n),
        padding=spatial("zero padding added to each side", 0, n=n),
        dilation=spatial("spacing between kernel elements (dilated convolution)", 1, lo=1, n=n),
        groups=size("blocked connections; groups = in_channels gives a depthwise conv", 1),
        bias=flag("add a learnable bias", True),
        padding_mode=choice("how padding is filled", ("zeros", "reflect", "replicate", "circular"), "zeros"),
    )


def conv_padding(kernel_size: Any, dilation: Any, padding: Any) -> Any:
    """An explicit padding for torch's ``padding='same'``/``'valid'`` (odd kernels; even ones pad unevenly)."""
    if not isinstance(padding, str):
        return padding
    if padding == "valid":
        return 0
    total = [d * (k - 1) for d, k in zip(dilation, kernel_size, strict=True)]
    if any(t % 2 for t in total):
        raise GraphError("padding='same' with an even kernel pads unevenly; pad explicitly (the pad op) instead")
    return tuple(t // 2 for t in total)


def _read_conv(params: dict) -> Any:
    attributes = read_attributes(named(**params))

    def read(m: nn.Module) -> dict[str, Any]:
        out = attributes(m)
        padding = conv_padding(m.kernel_size, m.dilation, m.padding)
        out["padding"] = padding[0] if isinstance(padding, tuple) and len(set(padding)) == 1 else padding
        return out
    return read


def _conv_ref(dim: int, **kw: Any) -> Any:
    fn = getattr(F, f"conv{dim}d")
    return lambda x, weight, bias=None: fn(x, weight, bias, **kw)


_CONVS = ((1, nn.Conv1d, "(N, C, L)", example((2, 4, 11), out_channels=6, kernel_size=3, stride=2, padding=1,
                                              ref=_conv_ref(1, stride=2, padding=1))),
          (2, nn.Conv2d, "(N, C, H, W)", example((2, 4, 9, 9), out_channels=8, kernel_size=3, padding=2, dilation=2,
                                                 groups=4, ref=_conv_ref(2, padding=2, dilation=2, groups=4))),
          (3, nn.Conv3d, "(N, C, D, H, W)", example((1, 2, 5, 6, 7), out_channels=3, kernel_size=(1, 3, 3), bias=False,
                                                    ref=_conv_ref(3))))
for _dim, _cls, _hint, _example in _CONVS:
    _params = _conv_params(_dim)
    module_op(f"conv{_dim}d", "convolution",
              f"{_dim}-D convolution over {_hint} inputs. groups and dilation give depthwise and dilated convs.",
              _cls, named(**_params), derive={"in_channels": channels}, hint=_hint,
              check=need_rank(_dim + 2, hint=_hint), read=_read_conv(_params), examples=[_example])

_transpose = _conv_params(2)
_transpose.pop("padding_mode")
_transpose["output_padding"] = spatial("extra size added to one side of the output", 0, n=2)


def _read_transpose(m: nn.ConvTranspose2d) -> dict[str, Any]:
    if m.padding_mode != "zeros":
        raise GraphError("transposed convs only support padding_mode='zeros'")
    return read_attributes(named(**_transpose))(m)


def _per_dim(value: Any) -> tuple[int, int]:
    return tuple(value) if isinstance(value, (tuple, list)) else (value, value)


def _transpose_check(params: dict[str, Any], specs: Specs) -> None:
    need_rank(4, hint="(N, C, H, W)")(params, specs)
    limits = [max(s, d) for s, d in zip(_per_dim(params["stride"]), _per_dim(params["dilation"]), strict=True)]
    if any(o >= limit for o, limit in zip(_per_dim(params["output_padding"]), limits, strict=True)):
        raise GraphError(f"output_padding={params['output_padding']} must be smaller than stride or dilation "
                         f"(here {tuple(limits)} per dim); lower output_padding or raise stride")


module_op("conv_transpose2d", "convolution", "2-D transposed convolution (learned upsampling) over (N, C, H, W).",
          nn.ConvTranspose2d, named(**_transpose), derive={"in_channels": channels}, hint="(N, C, H, W)",
          check=_transpose_check, read=_read_transpose,
          examples=[example((2, 4, 5, 5), out_channels=3, kernel_size=2, stride=2,
                            ref=lambda x, weight, bias: F.conv_transpose2d(x, weight, bias, stride=2))])
module_op("linear", "linear", "Fully connected layer on the last dim: y = x W^T + b.", nn.Linear,
          named(out_features=size("number of output features"), bias=flag("add a learnable bias", True)),
          derive={"in_features": features}, hint="(..., in_features)",
          examples=[example((3, 7, 5), out_features=4, ref=F.linear),
                    example((2, 5), out_features=3, bias=False, ref=F.linear)])


def _read_embedding(m: nn.Embedding) -> dict[str, Any]:
    if m.max_norm is not None or m.scale_grad_by_freq or m.sparse:
        raise GraphError("Embedding with max_norm, scale_grad_by_freq or sparse is not supported")
    return {"num_embeddings": m.num_embeddings, "embedding_dim": m.embedding_dim, "padding_idx": m.padding_idx}


module_op("embedding", "embedding", "Lookup table from integer ids (int64 input) to vectors.", nn.Embedding,
          named(num_embeddings=size("vocabulary size"), embedding_dim=size("vector size"),
                padding_idx=integer("id whose vector stays zero (optional)", lo=0, optional=True)),
          hint="(...) int64 ids", read=_read_embedding,
          examples=[example(TensorSpec((2, 7), "int64"), num_embeddings=11, embedding_dim=4, high=11,
                            ref=F.embedding)])
