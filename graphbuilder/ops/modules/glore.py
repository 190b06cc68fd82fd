"""Torch modules of the GloRe unit (Graph-based Global Reasoning, Chen et al., arXiv:1811.12814).

Boundary: plain torch only (imports torch, math, typing), so the standalone exporter can inline this file's
source and compiled models need no GraphBuilder. The op declarations that wrap these classes live in
`graphbuilder/ops/glore.py`; the editor's expandable block is built by `graphbuilder/passes/glore.py` from
the same pieces (`GloReProject`, `GCNInteraction`, `GloReReproject`), so op and block compute alike.

The unit follows the reference code (facebookresearch/GloRe, ``GloRe_Unit`` and ``GCN``) and keeps its
attribute names, so the reference checkpoints load with ``load_state_dict``. For X with C channels and L
positions (1-D, 2-D or 3-D), Cs = num_state states and N = num_node nodes:

    Xs = conv_state(X)                 1x1 conv C -> Cs, with bias                   (B, Cs, L)
    B  = conv_proj(X)                  1x1 conv C -> N, with bias: the projection    (B, N, L)
    V  = Xs B^T  (/ L if normalize)    coordinate space -> interaction space         (B, Cs, N)
    Z  = conv2(relu(conv1(V^T)^T + V)) graph convolution: node-wise Conv1d N -> N with bias (the learned
                                       adjacency) plus identity, ReLU, state-wise Conv1d Cs -> Cs, no bias
    Ys = Z B                           reverse projection with the same B            (B, Cs, L)
    out = X + blocker(conv_extend(Ys)) 1x1 conv Cs -> C without bias, BN (eps 1e-4, weight 0)

Initialisation as the reference: Xavier-uniform conv weights, zero biases, BN weight zero, so a fresh unit
is exactly the identity. The paper writes Z = ((I - A_g) V) W_g; the code adds V instead (the sign of the
learned A_g absorbs the difference), and so does this module.
"""

from __future__ import annotations

import torch
from torch import nn

_CONV = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}
_BATCH_NORM = {1: nn.BatchNorm1d, 2: nn.BatchNorm2d, 3: nn.BatchNorm3d}
BN_EPS = 1e-4  # the reference's `blocker` BN epsilon


def xavier_init(module: nn.Module) -> None:
    """Reference initialisation of every conv inside `module`: Xavier-uniform weights, zero biases."""
    for m in module.modules():
        if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Conv3d)):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


class GloReProject(nn.Module):
    """V = Xs B^T: states (B, Cs, *S) and projection (B, N, *S) -> node features (B, Cs, N).

    With `normalize`, V is divided by the number of positions L = prod(S), as the reference's option.
    """

    def __init__(self, normalize: bool = False) -> None:
        super().__init__()
        self.normalize = normalize

    def forward(self, states: torch.Tensor, proj: torch.Tensor) -> torch.Tensor:
        xs = states.flatten(2)  # (B, Cs, L)
        b = proj.flatten(2)  # (B, N, L)
        v = torch.matmul(xs, b.transpose(1, 2))  # (B, Cs, N)
        if self.normalize:
            v = v * (1.0 / xs.size(2))
        return v


class GCNInteraction(nn.Module):
    """Graph convolution in interaction space: (B, Cs, N) -> (B, Cs, N).

    conv1: node-wise Conv1d N -> N with bias (mixes nodes: the learned adjacency), plus V itself;
    ReLU; conv2: state-wise Conv1d Cs -> Cs without bias (mixes states).
    """

    def __init__(self, num_state: int, num_node: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv1d(num_node, num_node, kernel_size=1)
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv1d(num_state, num_state, kernel_size=1, bias=False)
        xavier_init(self)

    def forward(self, v: torch.Tensor) -> torch.Tensor:
        h = self.conv1(v.transpose(1, 2)).transpose(1, 2)  # (B, Cs, N): nodes mixed
        return self.conv2(self.relu(h + v))  # (B, Cs, N): states mixed


class GloReReproject(nn.Module):
    """Ys = Z B: node features (B, Cs, N) and the projection (B, N, *S) -> states at positions (B, Cs, *S)."""

    def forward(self, z: torch.Tensor, proj: torch.Tensor) -> torch.Tensor:
        y = torch.matmul(z, proj.flatten(2))  # (B, Cs, L)
        return y.reshape(y.shape[0], y.shape[1], *proj.shape[2:])  # (B, Cs, *S)


class GloReUnit(nn.Module):
    """The GloRe unit on (B, C, *S) inputs with 1 <= len(S) <= 3; the output has the input's shape."""

    def __init__(self, in_channels: int, num_state: int, num_node: int, dims: int = 2,
                 normalize: bool = False) -> None:
        super().__init__()
        conv, batch_norm = _CONV[dims], _BATCH_NORM[dims]
        self.conv_state = conv(in_channels, num_state, kernel_size=1)
        self.conv_proj = conv(in_channels, num_node, kernel_size=1)
        self.project = GloReProject(normalize)
        self.gcn = GCNInteraction(num_state, num_node)
        self.reproject = GloReReproject()
        self.conv_extend = conv(num_state, in_channels, kernel_size=1, bias=False)
        self.blocker = batch_norm(in_channels, eps=BN_EPS)
        xavier_init(self)
        nn.init.zeros_(self.blocker.weight)  # the unit starts as the identity
        nn.init.zeros_(self.blocker.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b = self.conv_proj(x)  # (B, N, *S)
        v = self.project(self.conv_state(x), b)  # (B, Cs, N)
        y = self.reproject(self.gcn(v), b)  # (B, Cs, *S)
        return x + self.blocker(self.conv_extend(y))  # (B, C, *S)
