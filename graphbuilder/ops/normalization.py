"""Normalisation layers. num_features / num_channels / normalized_shape come from input shapes."""

from __future__ import annotations

from typing import Any

from torch import nn

from graphbuilder.ir.errors import GraphError
from graphbuilder.ops.declare import Specs, channels, declare, flag, module_op, named, need_rank, number, size

_EPS = number("added to the variance for stability", 1e-5, lo=0.0)
_MOMENTUM = number("running-stats update rate", 0.1, lo=0.0, hi=1.0)

for _name, _cls, _ranks, _hint in (
    ("batch_norm1d", nn.BatchNorm1d, (2, 3), "(N, C) or (N, C, L)"),
    ("batch_norm2d", nn.BatchNorm2d, (4,), "(N, C, H, W)"),
    ("batch_norm3d", nn.BatchNorm3d, (5,), "(N, C, D, H, W)"),
):
    module_op(_name, "normalization", f"Batch normalisation over {_hint}, per channel.", _cls,
              named(eps=_EPS, momentum=_MOMENTUM, affine=flag("learnable scale and shift", True),
                    track_running_stats=flag("keep running mean/var for eval mode", True)),
              derive={"num_features": channels}, hint=_hint, check=need_rank(*_ranks, hint=_hint))

module_op("instance_norm2d", "normalization", "Instance normalisation over (N, C, H, W), per sample and channel.",
          nn.InstanceNorm2d,
          named(eps=_EPS, momentum=_MOMENTUM, affine=flag("learnable scale and shift", False),
                track_running_stats=flag("keep running stats", False)),
          derive={"num_features": channels}, hint="(N, C, H, W)", check=need_rank(4, hint="(N, C, H, W)"))
module_op("group_norm", "normalization", "Group normalisation: channels split into num_groups groups.",
          nn.GroupNorm, named(num_groups=size("number of groups; must divide the channels"), eps=_EPS,
                              affine=flag("learnable scale and shift", True)),
          derive={"num_channels": channels}, hint="(N, C, ...)")


def _layer_norm(p: dict[str, Any], specs: Specs) -> nn.Module:
    k = p["normalized_dims"]
    return nn.LayerNorm(specs[0].shape[-k:], eps=p["eps"], elementwise_affine=p["elementwise_affine"],
                        bias=p["bias"])


def _layer_norm_check(p: dict[str, Any], specs: Specs) -> None:
    if p["normalized_dims"] > len(specs[0].shape):
        raise GraphError(f"normalized_dims={p['normalized_dims']} but the input {specs[0]} has only "
                         f"{len(specs[0].shape)} dims; lower normalized_dims")


declare("layer_norm", "normalization", "Layer normalisation over the last normalized_dims dims.",
        params=named(normalized_dims=size("how many trailing dims to normalise (normalized_shape is read "
                                          "from the input)", 1), eps=_EPS,
                     elementwise_affine=flag("learnable scale (and bias)", True), bias=flag("learnable bias", True)),
        build=_layer_norm, check=_layer_norm_check, hint="(..., features)")
