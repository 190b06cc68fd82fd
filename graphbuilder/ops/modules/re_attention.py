"""Re-attention of DeepViT (Zhou et al., arXiv:2103.11886; reference zhoudaquan/dvit_repo ``ReAttention``).

Multi-head self-attention whose attention maps are re-mixed across heads by a learnable H x H matrix Theta
before they are applied, so deep layers keep diverse maps instead of collapsing to the same one:

    A  = softmax(Q K^T / sqrt(d))               (N, H, T, T), one map per head
    A' = Norm(Theta^T A)                        Theta: a 1x1 conv over the head axis (with bias, as the
                                                reference's ``reatten_matrix``); Norm: BatchNorm over the
                                                H maps (``var_norm``), or none when `norm` is false
    Y  = proj(concat_h(A'_h V_h))               (N, T, D)

With `transform_scale` A' is further multiplied by d^-1/2 (the reference's option used by DeepViT-S).
qkv is one Linear D -> 3D (bias per `qkv_bias`), proj a Linear D -> D with bias. Torch-only imports.
"""

from __future__ import annotations

import torch
from torch import nn


class ReAttention(nn.Module):
    """Re-attention on (N, T, D) tokens with `num_heads` heads; see the module docstring."""

    def __init__(self, embed_dim: int, num_heads: int = 8, qkv_bias: bool = False, norm: bool = True,
                 transform_scale: bool = False) -> None:
        super().__init__()
        self.embed_dim, self.num_heads, self.qkv_bias, self.norm, self.transform_scale = (
            embed_dim, num_heads, qkv_bias, norm, transform_scale)
        self.head_dim = embed_dim // num_heads
        self.scale = self.head_dim ** -0.5
        self.qkv = nn.Linear(embed_dim, 3 * embed_dim, bias=qkv_bias)
        self.reatten_matrix = nn.Conv2d(num_heads, num_heads, 1)
        self.var_norm = nn.BatchNorm2d(num_heads) if norm else nn.Identity()
        self.proj = nn.Linear(embed_dim, embed_dim)

    def attention_maps(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(re-attention maps (N, H, T, T), values (N, H, T, d)) for tokens `x`."""
        n, t, d = x.shape
        qkv = self.qkv(x).reshape(n, t, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]  # (N, H, T, d) each
        attn = torch.softmax(torch.matmul(q, k.transpose(-2, -1)) * self.scale, dim=-1)  # (N, H, T, T)
        attn = self.var_norm(self.reatten_matrix(attn))  # heads mixed by Theta, then normalised
        if self.transform_scale:
            attn = attn * self.scale
        return attn, v

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, t, d = x.shape
        attn, v = self.attention_maps(x)
        y = torch.matmul(attn, v).transpose(1, 2).reshape(n, t, d)  # (N, T, D)
        return self.proj(y)
