"""Regularisation and attention."""

from __future__ import annotations

from typing import Any

import torch.nn.functional as F
from torch import nn

from graphbuilder.ir.errors import GraphError
from graphbuilder.ops.declare import Specs, example, flag, function_op, module_op, named, number, size

module_op("dropout", "attention", "Zero elements with probability p during training (identity in eval).",
          nn.Dropout, named(p=number("drop probability", 0.5, lo=0.0, hi=1.0)),
          examples=[example((2, 9), p=0.3, ref=lambda x: x)])  # compared in eval mode


def _mha_check(p: dict[str, Any], specs: Specs) -> None:
    embed = specs[0].shape[-1]
    if embed % p["num_heads"]:
        raise GraphError(f"query has {embed} features, not divisible by num_heads={p['num_heads']}; "
                         f"pick num_heads dividing {embed}")


def _mha_ref(q: Any, k: Any, v: Any, **w: Any) -> Any:
    out, weights = F.multi_head_attention_forward(
        q.transpose(0, 1), k.transpose(0, 1), v.transpose(0, 1), q.shape[-1], 2, w["in_proj_weight"],
        w["in_proj_bias"], None, None, False, 0.0, w["out_proj_weight"], w["out_proj_bias"], training=False,
        need_weights=True)
    return out.transpose(0, 1), weights


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
          ctor_exclude=("need_weights",), read=None,  # read from the call too: see importer/mapping.py
          examples=[example((2, 5, 8), (2, 6, 8), (2, 6, 8), num_heads=2, need_weights=True, ref=_mha_ref,
                            atol=1e-6)])
function_op("scaled_dot_product_attention", "attention",
            "softmax(Q K^T * scale) V, fused (scale defaults to 1/sqrt(E)); optional causal mask; with enable_gqa, "
            "key/value heads are shared by groups of query heads.", F.scaled_dot_product_attention,
            named(dropout_p=number("dropout on attention weights", 0.0, lo=0.0, hi=1.0),
                  is_causal=flag("mask future positions", False),
                  scale=number("multiplier of Q K^T (default 1/sqrt(E))", lo=0.0, optional=True),
                  enable_gqa=flag("grouped-query attention: fewer key/value heads than query heads", False)),
            inputs=("query", "key", "value"), kwargs=dict, hint="(..., L, E) query, (..., S, E) key/value",
            examples=[example((2, 4, 6), (2, 5, 6), (2, 5, 3), ref=F.scaled_dot_product_attention),
                      example((2, 2, 6, 4), (2, 2, 6, 4), (2, 2, 6, 4), is_causal=True, scale=0.3,
                              ref=lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=0.3))])
function_op("scaled_dot_product_attention_masked", "attention",
            "softmax(Q K^T * scale + mask) V with an attention mask input: a bool mask (True: attend) or a float "
            "mask added to the scores, broadcast to (..., L, S).", F.scaled_dot_product_attention,
            named(dropout_p=number("dropout on attention weights", 0.0, lo=0.0, hi=1.0),
                  scale=number("multiplier of Q K^T (default 1/sqrt(E))", lo=0.0, optional=True),
                  enable_gqa=flag("grouped-query attention: fewer key/value heads than query heads", False)),
            inputs=("query", "key", "value", "attn_mask"), kwargs=dict,
            hint="(..., L, E) query, (..., S, E) key/value, mask broadcastable to (..., L, S)",
            examples=[example((2, 2, 5, 4), (2, 2, 6, 4), (2, 2, 6, 4), (2, 1, 5, 6),
                              ref=lambda q, k, v, m: F.scaled_dot_product_attention(q, k, v, attn_mask=m))])
