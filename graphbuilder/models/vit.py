"""DeepViT as an editable graph (Zhou et al., arXiv:2103.11886; reference zhoudaquan/dvit_repo).

    deepvit(depth)   DeepViT-16, -24 or -32 (the reference's ``deepvit_patch16_224_re_attn_{16,24,32}b``):
                     16 x 16 patches embedded to 384 channels, a class token and learned positions, `depth`
                     pre-norm transformer blocks whose attention is `re_attention` (12 heads, qkv bias,
                     Theta and BatchNorm over the heads), MLP ratio 3 with GELU, LayerNorm eps 1e-6, and
                     a linear classifier on the class token

Each transformer block is a block node (``blocks_7``), so the editor shows the stack and expands a block to
its norm, re-attention, MLP and residual adds. Input (N, 3, 224, 224).
"""

from __future__ import annotations

from graphbuilder.ir.graph import Graph
from graphbuilder.models.build import Value, add_block, block, shape_of

EMBED_DIM, HEADS, MLP_RATIO, PATCH = 384, 12, 3, 16


def _transformer_block(shape: tuple[int, ...]) -> Graph:
    def body(g: Graph, xs: list[Value]) -> list[Value]:
        (x,) = xs
        h = g.add("layer_norm", x, name="norm1", eps=1e-6)
        h = g.add("re_attention", h, name="attn", num_heads=HEADS, qkv_bias=True)
        x = g.add("add", x, h, name="add1")
        h = g.add("layer_norm", x, name="norm2", eps=1e-6)
        h = g.add("linear", h, name="fc1", out_features=EMBED_DIM * MLP_RATIO)
        h = g.add("linear", g.add("gelu", h, name="gelu"), name="fc2", out_features=EMBED_DIM)
        return [g.add("add", x, h, name="add2")]
    return block("ReAttentionBlock", [shape], body)


def deepvit(depth: int = 16, num_classes: int = 1000, image_size: int = 224, batch: int = 1) -> Graph:
    """DeepViT-`depth` (16, 24 or 32 in the paper) with re-attention in every block."""
    g = Graph(f"deepvit_{depth}")
    x = g.input("image", shape=(batch, 3, image_size, image_size))
    h = g.add("conv2d", x, name="patch_embed", out_channels=EMBED_DIM, kernel_size=PATCH, stride=PATCH)
    h = g.add("permute", g.add("flatten", h, name="patches", start_dim=2), name="tokens", dims=(0, 2, 1))
    h = g.add("class_token_embedding", h, name="embed")
    for i in range(depth):
        (h,) = add_block(g, _transformer_block(shape_of(h)), h, name=f"blocks_{i}")
    h = g.add("select_token", g.add("layer_norm", h, name="norm", eps=1e-6), name="cls", index=0)
    g.output(g.add("linear", h, name="head", out_features=num_classes))
    return g
