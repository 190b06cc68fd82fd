"""Search functions and data for the sweep tests. A module of its own (not a test file) so worker processes,
spawned or started by a Ray node, can import the functions by name."""

from __future__ import annotations

import os
import time
from typing import Any

import numpy as np

import graphbuilder as gb
from graphbuilder.datasets import image_function, sample_image

# a prune/grow search of ~1 s: 36 samples, a few short training runs, a step budget (never a time budget, so
# every executor stops at the same step)
TINY = dict(target_error=0.12, train_steps=60, retrain_steps=20, max_steps=8, max_seconds=1e9)


def tiny_problem() -> dict[str, Any]:
    """A config of `gb.search.prune_grow` on a 6x6 image function."""
    X, y = image_function(sample_image("china.jpg", 6))
    return {"X": X, "y": y, **TINY}


def logged_prune_grow(log_dir: str, seed: int, **config: Any) -> gb.search.SearchResult:
    """`prune_grow`, after writing a file named ``<seed>-<pid>-<parent pid>-<ns>`` into `log_dir` (who ran
    what, under which parent, when)."""
    with open(os.path.join(log_dir, f"{seed}-{os.getpid()}-{os.getppid()}-{time.time_ns()}"), "w"):
        pass
    return gb.search.prune_grow(seed=seed, **config)


def fails_for_seed(bad_seed: int, seed: int, **config: Any) -> gb.search.SearchResult:
    """`prune_grow`, except that seed `bad_seed` divides by zero first."""
    if seed == bad_seed:
        return 1 / 0
    return gb.search.prune_grow(seed=seed, **config)


def linear_unit(X: np.ndarray, seed: int, width: int = 1) -> tuple[gb.Graph, dict[str, float]]:
    """A unit returning a (graph, metrics) pair: one linear layer of `width` outputs with seeded weights;
    its "error" falls as the layer widens."""
    import torch

    g = gb.Graph("linear_unit")
    x = g.input("x", shape=(1, X.shape[1]))
    g.output(g.add("linear", x, out_features=width, name="fc"))
    gen = torch.Generator().manual_seed(seed)
    g.weights["fc"] = {"weight": torch.randn(width, X.shape[1], generator=gen), "bias": torch.zeros(width)}
    return g, {"error": 1.0 / width, "flops": 2.0 * X.shape[1] * width}
