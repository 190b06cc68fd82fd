"""Normalisation layers. num_features / num_channels / normalized_shape come from input shapes."""

from __future__ import annotations

from typing import Any

import torch.nn.functional as F
from torch import nn

from graphbuilder.ir.errors import GraphError
from graphbuilder.ops.declare import (
    Specs,
    channels,
    declare,
    example,
    flag,
    module_op,
    named,
    need_rank,
    number,
    read_attributes,
    size,
)

_EPS = number("added to the variance for stability", 1e-5, lo=0.0)
_MOMENTUM = number("running-stats update rate", 0.1, lo=0.0, hi=1.0)
_BATCH_NORM = named(eps=_EPS, momentum=_MOMENTUM, affine=flag("learnable scale and shift", True),
                    track_running_stats=flag("keep running mean/var for eval mode", True))


def _read_batch_norm(m: nn.Module) -> dict[str, Any]:
    if m.momentum is None:
        raise GraphError("momentum=None (cumulative moving average) is not supported; set a momentum")
    return read_attributes(_BATCH_NORM)(m)


def _batch_norm_ref(eps: float = 1e-5) -> Any:
    return lambda x, weight, bias, running_mean, running_var, num_batches_tracked: F.batch_norm(
        x, running_mean, running_var, weight, bias, eps=eps)


for _name, _cls, _ranks, _hint, _example in (
    ("batch_norm1d", nn.BatchNorm1d, (2, 3), "(N, C) or (N, C, L)", example((6, 5), ref=_batch_norm_ref())),
    ("batch_norm2d", nn.BatchNorm2d, (4,), "(N, C, H, W)", example((4, 3, 5, 5), eps=1e-3, ref=_batch_norm_ref(1e-3))),
    ("batch_norm3d", nn.BatchNorm3d, (5,), "(N, C, D, H, W)", example((2, 3, 2, 4, 4), ref=_batch_norm_ref())),
):
    module_op(_name, "normalization", f"Batch normalisation over {_hint}, per channel.", _cls, _BATCH_NORM,
              derive={"num_features": channels}, hint=_hint, check=need_rank(*_ranks, hint=_hint),
              read=_read_batch_norm, examples=[_example])

module_op("instance_norm2d", "normalization", "Instance normalisation over (N, C, H, W), per sample and channel.",
          nn.InstanceNorm2d,
          named(eps=_EPS, momentum=_MOMENTUM, affine=flag("learnable scale and shift", False),
                track_running_stats=flag("keep running stats", False)),
          derive={"num_features": channels}, hint="(N, C, H, W)", check=need_rank(4, hint="(N, C, H, W)"),
          read=_read_batch_norm,
          examples=[example((2, 3, 5, 5), affine=True,
                            ref=lambda x, weight, bias: F.instance_norm(x, weight=weight, bias=bias))])
module_op("group_norm", "normalization", "Group normalisation: channels split into num_groups groups.",
          nn.GroupNorm, named(num_groups=size("number of groups; must divide the channels"), eps=_EPS,
                              affine=flag("learnable scale and shift", True)),
          derive={"num_channels": channels}, hint="(N, C, ...)",
          examples=[example((2, 6, 4, 4), num_groups=3, ref=lambda x, weight, bias: F.group_norm(x, 3, weight, bias))])


def _layer_norm(p: dict[str, Any], specs: Specs) -> nn.Module:
    k = p["normalized_dims"]
    return nn.LayerNorm(specs[0].shape[-k:], eps=p["eps"], elementwise_affine=p["elementwise_affine"],
                        bias=p["bias"])


def _layer_norm_check(p: dict[str, Any], specs: Specs) -> None:
    if p["normalized_dims"] > len(specs[0].shape):
        raise GraphError(f"normalized_dims={p['normalized_dims']} but the input {specs[0]} has only "
                         f"{len(specs[0].shape)} dims; lower normalized_dims")


def _read_layer_norm(m: nn.LayerNorm) -> dict[str, Any]:
    return {"normalized_dims": len(m.normalized_shape), "eps": m.eps, "elementwise_affine": m.elementwise_affine,
            "bias": m.bias is not None or not m.elementwise_affine}


declare("layer_norm", "normalization", "Layer normalisation over the last normalized_dims dims.",
        params=named(normalized_dims=size("how many trailing dims to normalise (normalized_shape is read "
                                          "from the input)", 1), eps=_EPS,
                     elementwise_affine=flag("learnable scale (and bias)", True), bias=flag("learnable bias", True)),
        build=_layer_norm, check=_layer_norm_check, hint="(..., features)", module=nn.LayerNorm, read=_read_layer_norm,
        examples=[example((2, 3, 6), normalized_dims=2,
                          ref=lambda x, weight, bias: F.layer_norm(x, (3, 6), weight, bias)),
                  example((2, 5), bias=False, ref=lambda x, weight: F.layer_norm(x, (5,), weight))])
