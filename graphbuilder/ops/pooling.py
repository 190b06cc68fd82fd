"""Pooling and resizing."""

from __future__ import annotations

from typing import Any

import torch.nn.functional as F
from torch import nn

from graphbuilder.ir.errors import GraphError
from graphbuilder.ir.schema import Param
from graphbuilder.ops.declare import (
    Specs,
    choice,
    example,
    flag,
    function_op,
    module_op,
    named,
    need_rank,
    read_attributes,
    spatial,
)


def _pool_reader(params: tuple[Param, ...]) -> Any:
    attributes = read_attributes(params)

    def read(m: nn.Module) -> dict[str, Any]:
        if getattr(m, "return_indices", False):
            raise GraphError("max pooling with return_indices=True is not supported")
        if getattr(m, "divisor_override", None) is not None:
            raise GraphError("average pooling with divisor_override is not supported")
        return attributes(m)
    return read


for _dim, _hint, _shape in ((1, "(N, C, L)", (2, 3, 10)), (2, "(N, C, H, W)", (2, 3, 9, 9))):
    _window = dict(kernel_size=spatial("window size", lo=1, n=_dim),
                   stride=spatial("window step (default: kernel_size)", lo=1, n=_dim, optional=True),
                   padding=spatial("implicit padding on each side", 0, n=_dim))
    _max = named(**_window, dilation=spatial("window spacing", 1, lo=1, n=_dim),
                 ceil_mode=flag("round the output size up", False))
    _avg = named(**_window, ceil_mode=flag("round the output size up", False),
                 count_include_pad=flag("count padding zeros in the average", True))
    _max_fn, _avg_fn = getattr(F, f"max_pool{_dim}d"), getattr(F, f"avg_pool{_dim}d")
    module_op(f"max_pool{_dim}d", "pooling", f"{_dim}-D max pooling over {_hint}.",
              getattr(nn, f"MaxPool{_dim}d"), _max, hint=_hint, check=need_rank(_dim + 2, hint=_hint),
              read=_pool_reader(_max),
              examples=[example(_shape, kernel_size=3, stride=2, ref=(lambda f: lambda x: f(x, 3, 2))(_max_fn)),
                        example(_shape, kernel_size=2, padding=1, ceil_mode=True,
                                ref=(lambda f: lambda x: f(x, 2, padding=1, ceil_mode=True))(_max_fn))])
    module_op(f"avg_pool{_dim}d", "pooling", f"{_dim}-D average pooling over {_hint}.",
              getattr(nn, f"AvgPool{_dim}d"), _avg, hint=_hint, check=need_rank(_dim + 2, hint=_hint),
              read=_pool_reader(_avg),
              examples=[example(_shape, kernel_size=2, padding=1,
                                ref=(lambda f: lambda x: f(x, 2, padding=1))(_avg_fn)),
                        example(_shape, kernel_size=3, stride=1, ref=(lambda f: lambda x: f(x, 3, 1))(_avg_fn))])

for _name, _cls, _fn in (("adaptive_avg_pool2d", nn.AdaptiveAvgPool2d, F.adaptive_avg_pool2d),
                         ("adaptive_max_pool2d", nn.AdaptiveMaxPool2d, F.adaptive_max_pool2d)):
    _params = named(output_size=spatial("output height and width", lo=1, n=2))
    module_op(_name, "pooling", f"{'Average' if 'avg' in _name else 'Max'} pooling to a fixed output_size "
              "(1 gives global pooling).", _cls, _params,
              hint="(N, C, H, W)", check=need_rank(4, hint="(N, C, H, W)"), read=_pool_reader(_params),
              examples=[example((2, 3, 7, 9), output_size=(2, 3), ref=(lambda f: lambda x: f(x, (2, 3)))(_fn)),
                        example((2, 3, 7, 9), output_size=1, ref=(lambda f: lambda x: f(x, 1))(_fn))])

# -- resizing ---------------------------------------------------------------------------------------------------
MODES = ("nearest", "nearest-exact", "linear", "bilinear", "bicubic", "trilinear", "area")
_SPATIAL_RANK = {"linear": 3, "bilinear": 4, "bicubic": 4, "trilinear": 5}
_CORNERS = ("linear", "bilinear", "bicubic", "trilinear")


def _resize_check(p: dict[str, Any], specs: Specs) -> None:
    if (p["size"] is None) == (p["scale_factor"] is None):
        raise GraphError("set exactly one of size or scale_factor")
    if p["mode"] not in _CORNERS and p["align_corners"] is not None:
        raise GraphError(f"align_corners only applies to modes {_CORNERS}; leave it unset for {p['mode']!r}")
    rank = len(specs[0].shape)
    if rank < 3 or _SPATIAL_RANK.get(p["mode"], rank) != rank:
        want = _SPATIAL_RANK.get(p["mode"])
        layout = {3: "(N, C, L)", 4: "(N, C, H, W)", 5: "(N, C, D, H, W)"}
        raise GraphError(f"mode {p['mode']!r} expects input of shape {layout.get(want, '(N, C, ...)')}, got {specs[0]}")


_RESIZE = dict(size=spatial("output spatial size", lo=1, optional=True),
               scale_factor=Param("float_or_floats", None, min=1e-3, max=1e3, optional=True,
                                  doc="multiplier for each spatial dim"),
               mode=choice("interpolation", MODES, "nearest"),
               align_corners=Param("bool", None, optional=True,
                                   doc="linear, bilinear, bicubic, trilinear only: align corner pixels"))


def _read_upsample(m: nn.Upsample) -> dict[str, Any]:
    if m.recompute_scale_factor:
        raise GraphError("recompute_scale_factor=True is not supported on nn.Upsample; use F.interpolate")
    params = read_attributes(named(**_RESIZE))(m)
    if params["mode"] not in _CORNERS:
        params["align_corners"] = None  # nn.Upsample keeps False for modes it does not apply to
    return params


module_op("upsample", "resize", "Resize by scale_factor or to size (nn.Upsample), in any interpolation mode.",
          nn.Upsample, named(**_RESIZE), check=_resize_check, hint="(N, C, H, W)", read=_read_upsample,
          examples=[example((2, 3, 4, 5), scale_factor=2.0, mode="bilinear", align_corners=False,
                            ref=lambda x: F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False))])
function_op("interpolate", "resize",
            "F.interpolate: resize by scale_factor or to size in any mode (nearest, nearest-exact, linear, bilinear, "
            "bicubic, trilinear, area), with align_corners, antialias and recompute_scale_factor.", F.interpolate,
            named(**_RESIZE, recompute_scale_factor=Param("bool", None, optional=True,
                                                          doc="compute the output size, then the scale from it"),
                  antialias=flag("anti-alias when downsampling (bilinear, bicubic)", False)),
            check=_resize_check, hint="(N, C, L), (N, C, H, W) or (N, C, D, H, W)",
            examples=[example((2, 3, 5, 7), size=(8, 4), mode="bicubic", align_corners=True,
                              ref=lambda x: F.interpolate(x, size=(8, 4), mode="bicubic", align_corners=True)),
                      example((2, 3, 8, 8), scale_factor=0.5, mode="bilinear", antialias=True,
                              ref=lambda x: F.interpolate(x, scale_factor=0.5, mode="bilinear", antialias=True)),
                      example((2, 3, 9), scale_factor=1.5, mode="linear",
                              ref=lambda x: F.interpolate(x, scale_factor=1.5, mode="linear")),
                      example((1, 2, 3, 4, 5), size=(4, 4, 4), mode="trilinear", align_corners=False,
                              ref=lambda x: F.interpolate(x, size=(4, 4, 4), mode="trilinear", align_corners=False)),
                      example((2, 3, 7, 7), size=3, mode="area", ref=lambda x: F.interpolate(x, size=3, mode="area")),
                      example((2, 3, 5, 5), scale_factor=1.7, mode="nearest-exact",
                              ref=lambda x: F.interpolate(x, scale_factor=1.7, mode="nearest-exact"))])
