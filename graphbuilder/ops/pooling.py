"""Pooling and resizing."""

from __future__ import annotations

from typing import Any

from torch import nn

from graphbuilder.ir.errors import GraphError
from graphbuilder.ir.schema import Param
from graphbuilder.ops.declare import Specs, choice, flag, module_op, named, need_rank, spatial

for _dim, _hint in ((1, "(N, C, L)"), (2, "(N, C, H, W)")):
    _window = dict(kernel_size=spatial("window size", lo=1, n=_dim),
                   stride=spatial("window step (default: kernel_size)", lo=1, n=_dim, optional=True),
                   padding=spatial("implicit padding on each side", 0, n=_dim))
    module_op(f"max_pool{_dim}d", "pooling", f"{_dim}-D max pooling over {_hint}.",
              getattr(nn, f"MaxPool{_dim}d"),
              named(**_window, dilation=spatial("window spacing", 1, lo=1, n=_dim),
                    ceil_mode=flag("round the output size up", False)),
              hint=_hint, check=need_rank(_dim + 2, hint=_hint))
    module_op(f"avg_pool{_dim}d", "pooling", f"{_dim}-D average pooling over {_hint}.",
              getattr(nn, f"AvgPool{_dim}d"),
              named(**_window, ceil_mode=flag("round the output size up", False),
                    count_include_pad=flag("count padding zeros in the average", True)),
              hint=_hint, check=need_rank(_dim + 2, hint=_hint))

for _name, _cls in (("adaptive_avg_pool2d", nn.AdaptiveAvgPool2d), ("adaptive_max_pool2d", nn.AdaptiveMaxPool2d)):
    module_op(_name, "pooling", f"{'Average' if 'avg' in _name else 'Max'} pooling to a fixed output_size "
              "(1 gives global pooling).", _cls,
              named(output_size=spatial("output height and width", lo=1, n=2)),
              hint="(N, C, H, W)", check=need_rank(4, hint="(N, C, H, W)"))


def _upsample_check(p: dict[str, Any], specs: Specs) -> None:
    if (p["size"] is None) == (p["scale_factor"] is None):
        raise GraphError("set exactly one of size or scale_factor")
    if p["mode"] == "nearest" and p["align_corners"] is not None:
        raise GraphError("align_corners only applies to mode='bilinear'; leave it unset for 'nearest'")
    if len(specs[0].shape) < 3:
        raise GraphError(f"expects input of shape (N, C, H, W) or (N, C, L), got {specs[0]}")


module_op("upsample", "resize", "Resize by scale_factor or to size, nearest or bilinear.", nn.Upsample,
          named(size=spatial("output spatial size", lo=1, optional=True),
                scale_factor=Param("float_or_floats", None, min=1e-3, max=1e3, optional=True,
                                   doc="multiplier for each spatial dim"),
                mode=choice("interpolation", ("nearest", "bilinear"), "nearest"),
                align_corners=Param("bool", None, optional=True, doc="bilinear only: align corner pixels")),
          check=_upsample_check, hint="(N, C, H, W)")
