"""Training and scoring `NeuronGraph` networks: the inner loop of the prune/grow search (arXiv:2108.02231).

Boundary: takes a `NeuronGraph` and data tensors, trains its weights in place (full batch, Adam or L-BFGS,
deterministic), and scores connections for pruning. No search logic here; `prune_grow.py` decides what to do
with the scores. The loss is the mean squared error over samples and outputs; errors are reported as its
square root (RMSE, in the units of y).

Saliency of a connection k with weight w_k (lower = pruned first):
    magnitude   |w_k|
    obd         1/2 h_kk w_k^2, Optimal Brain Damage (LeCun, Denker & Solla 1990) with h_kk the Gauss-Newton
                (Levenberg-Marquardt) diagonal 2/(N*O) sum_n sum_o (d y_no / d w_k)^2, as OBD computes it
    trial       exact loss increase when w_k is set to 0 (one forward pass per connection)

New units (`fit_unit`), cascade-correlation style (Fahlman & Lebiere 1990): a candidate neuron
h = act(S w + b) on the values S of its would-be sources is fitted to the current residual r = y - f(X) by
least squares r ~ h a + c, from several random starts; the best candidate is inserted with out-weights a
(and c added to the output biases), so the training loss can only fall. A zero out-weight insertion is a
stationary point for L-BFGS (the in-weights get no gradient), which is why the unit is fitted first.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch

from graphbuilder.ir.errors import GraphError
from graphbuilder.ops.modules.neuron_graph import activate
from graphbuilder.ops.neuron_graph import NeuronGraph

OPTIMIZERS = ("adam", "lbfgs")
SALIENCIES = ("magnitude", "obd", "trial")


@contextlib.contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run the block with `n` torch CPU threads (None: unchanged). Small networks train fastest on one
    thread (the work per op is too small to split, and threads contend on a shared machine)."""
    if n is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(int(n))
    try:
        yield
    finally:
        torch.set_num_threads(before)


def as_tensors(X: Any, y: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """X (N, inputs) and y (N, outputs) as float32 tensors; a 1-D y becomes (N, 1). Checks shapes."""
    Xt = torch.as_tensor(np.asarray(X), dtype=torch.float32)
    yt = torch.as_tensor(np.asarray(y), dtype=torch.float32)
    if yt.dim() == 1:
        yt = yt[:, None]
    if Xt.dim() != 2 or yt.dim() != 2 or Xt.shape[0] != yt.shape[0] or Xt.shape[0] < 2:
        raise GraphError(f"X must be (N, inputs) and y (N,) or (N, outputs) with the same N >= 2; got X "
                         f"{tuple(Xt.shape)} and y {tuple(yt.shape)}")
    if not (torch.isfinite(Xt).all() and torch.isfinite(yt).all()):
        raise GraphError("X and y must be finite (no NaN or inf)")
    return Xt, yt


def split(X: torch.Tensor, y: torch.Tensor, val_fraction: float, seed: int
          ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """A seeded random train/validation split: (X_train, y_train, X_val, y_val)."""
    if not 0 < val_fraction < 1:
        raise GraphError(f"val_fraction must be in (0, 1), got {val_fraction}")
    n = X.shape[0]
    n_val = min(n - 1, max(1, round(n * val_fraction)))
    perm = torch.as_tensor(np.random.default_rng(seed).permutation(n))
    val, train = perm[:n_val], perm[n_val:]
    return X[train], y[train], X[val], y[val]


def rmse(ng: NeuronGraph, X: torch.Tensor, y: torch.Tensor) -> float:
    """Root mean squared error of the network on (X, y)."""
    with torch.no_grad():
        return math.sqrt(float(torch.mean((ng.to_module()(X) - y) ** 2)))


def lbfgs(params: list[torch.Tensor], loss_fn: Callable[[], torch.Tensor], steps: int, *, lr: float,
          history_size: int, tolerance_grad: float, tolerance_change: float) -> None:
    """One L-BFGS run of at most `steps` iterations with a strong-Wolfe line search, minimising `loss_fn`."""
    opt = torch.optim.LBFGS(params, lr=lr, max_iter=steps, history_size=history_size, line_search_fn="strong_wolfe",
                            tolerance_grad=tolerance_grad, tolerance_change=tolerance_change)

    def closure() -> torch.Tensor:
        opt.zero_grad(set_to_none=True)
        loss = loss_fn()
        loss.backward()
        return loss

    opt.step(closure)

def fit(ng: NeuronGraph, X: torch.Tensor, y: torch.Tensor, steps: int, optimizer: str = "adam",
        lr: float = 0.01) -> float:
    """Train all weights and biases of `ng` in place for `steps` full-batch steps; returns the train RMSE.

    Adam: `steps` updates at learning rate `lr`. L-BFGS: one run of at most `steps` iterations with a
    strong-Wolfe line search (`lr` is its initial step, 1.0 is usual; values below 0.1 become 1.0).
    If training diverges (non-finite loss) the weights are left as they were."""
    if optimizer not in OPTIMIZERS:
        raise GraphError(f"optimizer must be one of {OPTIMIZERS}, got {optimizer!r}")
    if steps <= 0 or ng.num_connections + ng.num_hidden + len(ng.outputs) == 0:
        return rmse(ng, X, y)
    module = ng.to_module()
    params = list(module.parameters())

    def loss_fn() -> torch.Tensor:
        return torch.mean((module(X) - y) ** 2)

    if optimizer == "adam":
        opt = torch.optim.Adam(params, lr=lr)
        for _ in range(steps):
            opt.zero_grad(set_to_none=True)
            loss = loss_fn()
            loss.backward()
            opt.step()
    else:
        lbfgs(params, loss_fn, steps, lr=lr if lr >= 0.1 else 1.0, history_size=20, tolerance_grad=1e-9,
              tolerance_change=1e-12)
    with torch.no_grad():
        final = float(loss_fn())
    if math.isfinite(final) and all(torch.isfinite(p).all() for p in params):
        ng.load_state_dict(module.state_dict())
    return math.sqrt(final) if math.isfinite(final) else rmse(ng, X, y)


def saliency(ng: NeuronGraph, X: torch.Tensor, y: torch.Tensor, kind: str = "magnitude"
             ) -> dict[tuple[int, int], float]:
    """Saliency of every connection (see the module docstring); lower means less useful."""
    if kind not in SALIENCIES:
        raise GraphError(f"saliency must be one of {SALIENCIES}, got {kind!r}")
    conns = ng.connections
    if not conns:
        return {}
    if kind == "magnitude":
        return {e: abs(ng.weight(*e)) for e in conns}
    module = ng.to_module(dtype=torch.float64)
    X64, y64 = X.double(), y.double()
    w = module.weight.detach()
    if kind == "obd":
        h = module.gauss_newton_diagonal(X64) * (2.0 / (X.shape[0] * y.shape[1]))
        return {e: float(0.5 * h[k] * w[k] ** 2) for k, e in enumerate(conns)}
    with torch.no_grad():
        base = float(torch.mean((module(X64) - y64) ** 2))
        out: dict[tuple[int, int], float] = {}
        for k, e in enumerate(conns):
            old = float(module.weight[k])
            module.weight[k] = 0.0
            out[e] = float(torch.mean((module(X64) - y64) ** 2)) - base
            module.weight[k] = old
    return out


def fit_unit(S: torch.Tensor, r: torch.Tensor, activation: str, *, candidates: int = 4, steps: int = 60,
             init_scale: float = 2.0, seed: int = 0) -> tuple[list[float], float, list[float], list[float], float]:
    """Fit one new neuron h = act(S w + b) to the residual `r` by r ~ h a + c (least squares), trying
    `candidates` random starts (w, b uniform +-init_scale/sqrt(k)) each refined by at most `steps` L-BFGS
    iterations; returns (w, b, a, c, mse) of the best one. S (N, k) the source values, r (N, O).

    The fit starts from the least-squares (a, c) of the random unit, so its loss is at most mean(r^2) minus
    what that unit explains: inserting it never raises the training loss."""
    S64, r64 = S.double(), r.double()
    n, k = S64.shape
    gen = torch.Generator().manual_seed(int(seed))
    bound = init_scale / math.sqrt(max(k, 1))
    best: tuple[list[float], float, list[float], list[float], float] | None = None
    for _ in range(max(1, candidates)):
        w = ((torch.rand(k, generator=gen, dtype=torch.float64) * 2 - 1) * bound).requires_grad_()
        b = ((torch.rand(1, generator=gen, dtype=torch.float64) * 2 - 1) * bound).requires_grad_()
        with torch.no_grad():
            a0, c0 = _ls_out(activate(activation, S64 @ w + b), r64)
        a, c = a0.clone().requires_grad_(), c0.clone().requires_grad_()

        def loss_fn(w: torch.Tensor = w, b: torch.Tensor = b, a: torch.Tensor = a, c: torch.Tensor = c
                    ) -> torch.Tensor:
            h = activate(activation, S64 @ w + b)  # (N,)
            return torch.mean((h[:, None] * a + c - r64) ** 2)

        if steps > 0:
            lbfgs([w, b, a, c], loss_fn, steps, lr=1.0, history_size=10, tolerance_grad=1e-10,
                  tolerance_change=1e-14)
        with torch.no_grad():
            loss = float(loss_fn())
            ok = math.isfinite(loss) and all(bool(torch.isfinite(t).all()) for t in (w, b, a, c))
        if not ok:  # diverged: keep the random unit with its least-squares output weights
            w, b, a, c = w.detach(), b.detach(), a0, c0
            with torch.no_grad():
                loss = float(torch.mean((activate(activation, S64 @ w + b)[:, None] * a + c - r64) ** 2))
        if best is None or loss < best[4]:
            best = (w.detach().tolist(), float(b.detach()[0]), a.detach().tolist(), c.detach().tolist(), loss)
    assert best is not None
    return best


def _ls_out(h: torch.Tensor, r: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Least-squares a (O,), c (O,) for r (N, O) ~ h (N,) a + c."""
    hc = h - h.mean()
    var = float(torch.sum(hc * hc))
    a = (hc[:, None] * (r - r.mean(0))).sum(0) / var if var > 1e-12 else torch.zeros(r.shape[1], dtype=r.dtype)
    c = r.mean(0) - h.mean() * a
    return a, c
