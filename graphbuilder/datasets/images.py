"""The two test problems of "Growing an architecture for a neural network" (arXiv:2108.02231), on real images.

    image_function(image)        f(x, y) = brightness: X (H*W, 2) coordinates in [-1, 1], y (H*W, 1)
    next_pixel(image, context)   brightness of the next point from the previous points on its scan line and
                                 the line above (a causal neighbourhood): X (n, k), y (n, 1)
    sample_image(name, size)     a photo shipped with scikit-learn (load_sample_images), grayscale, downscaled
    smooth_edge(size)            a generated image: a smooth function with one sharp curved edge (a problem of
                                 the same kind as the photos, for checking a search on data it was not tuned on)

Boundary: numpy only; no model code, no downloads. Loaders take any image array ((H, W), (H, W, 3) or
(H, W, 4); uint8 or float in [0, 1]) and return float32 arrays with brightness in [0, 1].
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from graphbuilder.ir.errors import GraphError

SAMPLE_IMAGES = ("china.jpg", "flower.jpg")


def to_gray(image: np.ndarray) -> np.ndarray:
    """Brightness in [0, 1] as float64 (H, W): RGB(A) by ITU-R 601 luma (0.299 R + 0.587 G + 0.114 B);
    uint8 or any float range above 1 is scaled by 1/255."""
    arr = np.asarray(image)
    if arr.ndim == 3 and arr.shape[2] in (3, 4):
        arr = arr[..., :3].astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    elif arr.ndim != 2:
        raise GraphError(f"an image must be (H, W), (H, W, 3) or (H, W, 4), got shape {arr.shape}")
    arr = arr.astype(np.float64)
    if np.asarray(image).dtype == np.uint8 or arr.max(initial=0) > 1:
        arr = arr / 255.0
    if arr.size == 0 or not np.isfinite(arr).all():
        raise GraphError(f"image of shape {arr.shape} is empty or holds NaN/inf values")
    return np.clip(arr, 0.0, 1.0)


def _area_matrix(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) box-filter weights: output cell j averages input span [j, j+1) * n_in / n_out."""
    edges = np.linspace(0, n_in, n_out + 1)
    m = np.zeros((n_out, n_in))
    for j in range(n_out):
        lo, hi = edges[j], edges[j + 1]
        for i in range(int(np.floor(lo)), int(np.ceil(hi))):
            m[j, i] = min(hi, i + 1) - max(lo, i)
        m[j] /= hi - lo
    return m


def resize(image: np.ndarray, size: int | Sequence[int]) -> np.ndarray:
    """Resize a 2-D brightness array to `size` ((h, w), or an int for square) by area averaging; a larger
    size repeats pixels (nearest)."""
    h, w = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
    if h < 1 or w < 1:
        raise GraphError(f"size must be at least 1x1, got {size!r}")
    arr = np.asarray(image, dtype=np.float64)
    rows = _area_matrix(arr.shape[0], h) if h <= arr.shape[0] else _nearest(arr.shape[0], h)
    cols = _area_matrix(arr.shape[1], w) if w <= arr.shape[1] else _nearest(arr.shape[1], w)
    return rows @ arr @ cols.T


def _nearest(n_in: int, n_out: int) -> np.ndarray:
    m = np.zeros((n_out, n_in))
    m[np.arange(n_out), np.minimum((np.arange(n_out) + 0.5) * n_in / n_out, n_in - 1).astype(int)] = 1
    return m


def sample_image(name: str = "china.jpg", size: int | Sequence[int] = 32) -> np.ndarray:
    """A scikit-learn sample photo (`SAMPLE_IMAGES`) as float32 brightness in [0, 1], centre-cropped to the
    aspect of `size` and downscaled to it by area averaging."""
    from sklearn.datasets import load_sample_images

    data = load_sample_images()
    names = [p.rsplit("/", 1)[-1] for p in data.filenames]
    if name not in names:
        raise GraphError(f"unknown sample image {name!r}; scikit-learn ships {names}")
    gray = to_gray(data.images[names.index(name)])
    h, w = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
    ih, iw = gray.shape
    if ih * w > iw * h:  # too tall: crop rows
        keep = round(iw * h / w)
        top = (ih - keep) // 2
        gray = gray[top:top + keep]
    else:
        keep = round(ih * w / h)
        left = (iw - keep) // 2
        gray = gray[:, left:left + keep]
    return resize(gray, (h, w)).astype(np.float32)


def image_function(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """f(x, y) = brightness. X (H*W, 2): column x and row y of every pixel, each scaled to [-1, 1] (row-major
    order); y (H*W, 1): brightness in [0, 1]."""
    gray = to_gray(image)
    h, w = gray.shape
    ys, xs = np.meshgrid(_unit(h), _unit(w), indexing="ij")  # (H, W) each
    X = np.stack([xs.ravel(), ys.ravel()], axis=1).astype(np.float32)
    return X, gray.reshape(-1, 1).astype(np.float32)


def _unit(n: int) -> np.ndarray:
    return np.linspace(-1.0, 1.0, n) if n > 1 else np.zeros(1)


def causal_offsets(context: int | Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    """The (dy, dx) offsets of a causal neighbourhood. An int r gives the r previous points on the scan line,
    (0, -1) ... (0, -r), then the 2r + 1 points of the line above, (-1, -r) ... (-1, r). A list is checked:
    every offset must come before the point in scan order (dy < 0, or dy == 0 and dx < 0)."""
    if isinstance(context, (int, np.integer)) and not isinstance(context, bool):
        r = int(context)
        if r < 1:
            raise GraphError(f"context radius must be >= 1, got {r}")
        return [(0, -k) for k in range(1, r + 1)] + [(-1, dx) for dx in range(-r, r + 1)]
    offsets = [(int(dy), int(dx)) for dy, dx in context]
    if not offsets:
        raise GraphError("context needs at least one (dy, dx) offset")
    for dy, dx in offsets:
        if not (dy < 0 or (dy == 0 and dx < 0)):
            raise GraphError(f"offset ({dy}, {dx}) is not causal: it must lie on an earlier line (dy < 0) or "
                             "earlier on the same line (dy == 0 and dx < 0)")
    if len(set(offsets)) != len(offsets):
        raise GraphError(f"context offsets repeat: {offsets}")
    return offsets


def next_pixel(image: np.ndarray, context: int | Sequence[tuple[int, int]] = 2) -> tuple[np.ndarray, np.ndarray]:
    """Predict a point's brightness from earlier points (`causal_offsets(context)`). One sample per pixel whose
    whole neighbourhood lies inside the image, in scan order. X (n, k) brightness of the k neighbours, in the
    order of the offsets; y (n, 1) the point's brightness."""
    gray = to_gray(image)
    offsets = causal_offsets(context)
    h, w = gray.shape
    top = max(-dy for dy, _ in offsets)
    left = max(max(-dx for _, dx in offsets), 0)
    right = max(max(dx for _, dx in offsets), 0)
    if h - top < 1 or w - left - right < 1:
        raise GraphError(f"a {h}x{w} image is too small for context offsets {offsets}: no pixel has its whole "
                         "neighbourhood inside; use a larger image or a smaller context")
    rows, cols = slice(top, h), slice(left, w - right)
    features = [gray[top + dy:h + dy, left + dx:w - right + dx] for dy, dx in offsets]
    X = np.stack([f.ravel() for f in features], axis=1).astype(np.float32)
    return X, gray[rows, cols].reshape(-1, 1).astype(np.float32)


def smooth_edge(size: int | Sequence[int] = 32, supersample: int = 8) -> np.ndarray:
    """A generated (H, W) float32 image in [0, 1]: a smooth wave plus a step of height 0.35 across the curved
    edge y = 0.35 sin(2.5 x) + 0.1 (x, y in [-1, 1], y down the rows). Rendered `supersample` times finer and
    area-averaged, like a photo downscaled by `sample_image`: pixels on the edge take intermediate values,
    so where the edge runs is in the data rather than between samples."""
    h, w = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
    if h < 1 or w < 1 or supersample < 1:
        raise GraphError(f"size must be at least 1x1 and supersample at least 1, got {size!r}, {supersample!r}")
    ys, xs = np.meshgrid(_unit(h * supersample), _unit(w * supersample), indexing="ij")
    smooth = 0.4 + 0.2 * np.sin(1.7 * xs + 0.8 * ys) * np.cos(1.3 * ys - 0.4 * xs)
    edge = 0.35 * (ys > 0.35 * np.sin(2.5 * xs) + 0.1)
    return np.clip(resize(smooth + edge, (h, w)), 0.0, 1.0).astype(np.float32)
