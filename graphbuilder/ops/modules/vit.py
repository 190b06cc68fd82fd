"""Vision Transformer token plumbing (Dosovitskiy et al., arXiv:2010.11929), for networks drawn as graphs.

    ClassTokenEmbedding   (N, T, D) -> (N, T + 1, D): prepend a learned class token, add learned positions
    SelectToken           (N, T, D) -> (N, D): one token (the class token at index 0)

Both initialise as timm and the DeepViT reference do (truncated normal, std 0.02). Torch-only imports.
"""

from __future__ import annotations

import torch
from torch import nn


class ClassTokenEmbedding(nn.Module):
    """Prepend a learned class token and add a learned position embedding to (N, T, D) tokens."""

    def __init__(self, num_tokens: int, embed_dim: int) -> None:
        super().__init__()
        self.num_tokens, self.embed_dim = num_tokens, embed_dim
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, num_tokens + 1, embed_dim))
        nn.init.trunc_normal_(self.cls_token, std=0.02)
        nn.init.trunc_normal_(self.pos_embed, std=0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        cls = self.cls_token.expand(x.shape[0], -1, -1)  # (N, 1, D)
        return torch.cat([cls, x], dim=1) + self.pos_embed  # (N, T + 1, D)


class SelectToken(nn.Module):
    """Token `index` of (N, T, D) tokens: (N, D)."""

    def __init__(self, index: int = 0) -> None:
        super().__init__()
        self.index = index

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, self.index]
