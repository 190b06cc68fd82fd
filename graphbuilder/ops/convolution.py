"""Convolutions, linear layers and embeddings. Input sizes (in_channels, in_features) come from shapes."""

from __future__ import annotations

from torch import nn

from graphbuilder.ops.declare import (
    channels,
    choice,
    features,
    flag,
    integer,
    module_op,
    named,
    need_rank,
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


_CONVS = ((1, nn.Conv1d, "(N, C, L)"), (2, nn.Conv2d, "(N, C, H, W)"), (3, nn.Conv3d, "(N, C, D, H, W)"))
for _dim, _cls, _hint in _CONVS:
    module_op(f"conv{_dim}d", "convolution",
              f"{_dim}-D convolution over {_hint} inputs. groups and dilation give depthwise and dilated convs.",
              _cls, named(**_conv_params(_dim)), derive={"in_channels": channels}, hint=_hint,
              check=need_rank(_dim + 2, hint=_hint))

_transpose = _conv_params(2)
_transpose.pop("padding_mode")
_transpose["output_padding"] = spatial("extra size added to one side of the output", 0, n=2)
module_op("conv_transpose2d", "convolution", "2-D transposed convolution (learned upsampling) over (N, C, H, W).",
          nn.ConvTranspose2d, named(**_transpose), derive={"in_channels": channels}, hint="(N, C, H, W)",
          check=need_rank(4, hint="(N, C, H, W)"))
module_op("linear", "linear", "Fully connected layer on the last dim: y = x W^T + b.", nn.Linear,
          named(out_features=size("number of output features"), bias=flag("add a learnable bias", True)),
          derive={"in_features": features}, hint="(..., in_features)")
module_op("embedding", "embedding", "Lookup table from integer ids (int64 input) to vectors.", nn.Embedding,
          named(num_embeddings=size("vocabulary size"), embedding_dim=size("vector size"),
                padding_idx=integer("id whose vector stays zero (optional)", lo=0, optional=True)),
          hint="(...) int64 ids")
