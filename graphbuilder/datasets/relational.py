"""A synthetic relational task: are two small shapes, placed far apart, the same colour (or the same shape)?

Boundary: generates data only (numpy, then torch tensors); no model code. Deterministic for a given seed.
Used by benchmarks/bench_glore.py and examples/04_glore.ipynb to show what global reasoning (GloRe,
arXiv:1811.12814) adds: the answer depends on two regions at opposite corners of the image, so a network
whose receptive field is smaller than the gap between them cannot see it with local convolutions, and a
global-average-pool + linear head cannot recover it either (the pooled features are a *sum* of what each
shape contributes, and "same colour" is not a threshold of such a sum). A GloRe unit projects both shapes
onto shared graph nodes and can relate them.

Layout of one ``size x size`` image (default 32): shape A with its top-left corner jittered within
``jitter`` pixels of one corner, shape B likewise at the opposite corner (top-left/bottom-right or
top-right/bottom-left, random), both ``shape_size`` pixels wide; so at least ``size - 2 * (shape_size +
jitter)`` pixels (12 by default) lie between them along each axis. Background: Gaussian noise.
Labels are balanced: 1 when the asked relation holds, 0 otherwise; the other attribute is random.
"""

from __future__ import annotations

import numpy as np
import torch

COLOURS = {
    "red": (1.0, 0.15, 0.15), "green": (0.15, 1.0, 0.15), "blue": (0.2, 0.35, 1.0), "yellow": (1.0, 0.9, 0.1),
}
SHAPES = ("square", "plus", "frame", "cross")
RELATIONS = ("colour", "shape")


def shape_mask(kind: str, k: int) -> np.ndarray:
    """A (k, k) boolean mask of one shape: filled square, plus, hollow square (frame) or diagonal cross (X)."""
    r = np.arange(k)
    mid, width = k // 2, max(1, k // 4)
    near_mid = np.abs(r - mid) <= width // 2 if width > 1 else r == mid
    if kind == "square":
        return np.ones((k, k), dtype=bool)
    if kind == "plus":
        return near_mid[:, None] | near_mid[None, :]
    if kind == "frame":
        edge = (r == 0) | (r == k - 1)
        return edge[:, None] | edge[None, :]
    if kind == "cross":
        return (r[:, None] == r[None, :]) | (r[:, None] + r[None, :] == k - 1)
    raise ValueError(f"unknown shape {kind!r}; choose one of {SHAPES}")


def relational_shapes(n: int, *, relation: str = "colour", size: int = 32, shape_size: int = 7, jitter: int = 3,
                      noise: float = 0.1, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """`n` images (n, 3, size, size) float32 and labels (n,) int64: 1 if the two shapes share `relation`.

    Args:
        relation: ``"colour"`` (same colour?) or ``"shape"`` (same shape?).
        size, shape_size, jitter: image side, shape side and placement jitter in pixels; the shapes are at
            least ``size - 2 * (shape_size + jitter)`` pixels apart along each axis.
        noise: standard deviation of the Gaussian background noise.
        seed: the same seed gives the same data.
    """
    if relation not in RELATIONS:
        raise ValueError(f"relation={relation!r}; choose one of {RELATIONS}")
    gap = size - 2 * (shape_size + jitter)
    if gap < 1:
        raise ValueError(f"size={size} leaves no gap between shapes of {shape_size}px with jitter {jitter}; "
                         f"need size > {2 * (shape_size + jitter)}")
    rng = np.random.default_rng(seed)
    masks = np.stack([shape_mask(s, shape_size) for s in SHAPES])  # (S, k, k)
    palette = np.array(list(COLOURS.values()), dtype=np.float32)  # (K, 3)
    labels = rng.integers(0, 2, n)
    same_attr = _pairs(rng, n, len(SHAPES) if relation == "shape" else len(palette), labels)
    free_attr = rng.integers(0, len(palette) if relation == "shape" else len(SHAPES), (n, 2))
    shapes, colours = (same_attr, free_attr) if relation == "shape" else (free_attr, same_attr)
    images = rng.normal(0.0, noise, (n, 3, size, size)).astype(np.float32)
    far = size - shape_size - jitter  # the far corner's top-left coordinate before jitter
    diagonal = rng.integers(0, 2, n)  # 0: top-left & bottom-right, 1: top-right & bottom-left
    offsets = rng.integers(0, jitter + 1, (n, 2, 2))
    for i in range(n):
        corners = ((0, 0), (far, far)) if diagonal[i] == 0 else ((0, far), (far, 0))
        for j, (r0, c0) in enumerate(corners):
            r, c = r0 + offsets[i, j, 0], c0 + offsets[i, j, 1]
            mask = masks[shapes[i, j]]
            patch = images[i, :, r:r + shape_size, c:c + shape_size]
            patch[:, mask] = palette[colours[i, j]][:, None]
    return torch.from_numpy(images), torch.from_numpy(labels.astype(np.int64))


def _pairs(rng: np.random.Generator, n: int, choices: int, same: np.ndarray) -> np.ndarray:
    """(n, 2) attribute pairs, equal where `same` is 1 and different otherwise."""
    first = rng.integers(0, choices, n)
    other = (first + rng.integers(1, choices, n)) % choices  # uniformly one of the other values
    return np.stack([first, np.where(same == 1, first, other)], axis=1)
