"""Regularisation and attention."""

from __future__ import annotations

from typing import Any

import torch.nn.functional as F
from torch import nn

from graphbuilder.ir.errors import GraphError
from graphbuilder.ops.declare import Specs, flag, function_op, module_op, named, number, size

module_op("dropout", "regularization", "Zero elements with probability p during training (identity in eval).",
          nn.Dropout, named(p=number("drop probability", 0.5, lo=0.0, hi=1.0)))


def _mha_check(p: dict[str, Any], specs: Specs) -> None:
    embed = specs[0].shape[-1]
    if embed % p["num_heads"]:
        raise GraphError(f"query has {embed} features, not divisible by num_heads={p['num_heads']}; "
                         f"pick num_heads dividing {embed}")


module_op("multihead_attention", "attention",
          "Multi-head attention (batch first). Outputs: attention output, and the head-averaged attention "
          "weights when need_weights is true.", nn.MultiheadAttention,
          named(num_heads=size("number of heads; must divide the query's features"),
                dropout=number("dropout on attention weights", 0.0, lo=0.0, hi=1.0),
                bias=flag("biases on the projections", True),
                need_weights=flag("also output the attention weights", False)),
          derive={"embed_dim": lambda s: s[0].shape[-1], "kdim": lambda s: s[1].shape[-1],
                  "vdim": lambda s: s[2].shape[-1], "batch_first": lambda s: True},
          inputs=("query", "key", "value"), check=_mha_check, kwargs=lambda p: {"need_weights": p["need_weights"]},
          hint="(N, L, E) query, (N, S, Ek) key, (N, S, Ev) value",
          ctor_exclude=("need_weights",))
function_op("scaled_dot_product_attention", "attention",
            "softmax(Q K^T / sqrt(d)) V, fused; optional causal mask.", F.scaled_dot_product_attention,
            named(dropout_p=number("dropout on attention weights", 0.0, lo=0.0, hi=1.0),
                  is_causal=flag("mask future positions", False)),
            inputs=("query", "key", "value"), kwargs=dict, hint="(..., L, E) query, (..., S, E) key/value")
