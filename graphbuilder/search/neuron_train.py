"""Training and scoring `NeuronGraph` networks: the inner loop of the prune/grow search (arXiv:2108.02231).

Boundary: takes a `NeuronGraph` and data tensors, trains its weights in place (full batch, deterministic),
scores connections for pruning and fits new neurons to a residual. No search logic here; `prune_grow.py`
decides what to do with the scores. The loss is the mean squared error over samples and outputs,
L = mean (f(X) - y)^2; errors are reported as its square root (RMSE, in the units of y).

Optimisers (`fit`), all full batch in float64:
    lm      Levenberg-Marquardt (Marquardt 1963): solve (J^T J + mu diag(J^T J)) d = -J^T r per iteration,
            mu divided by 3 after a step that lowers the loss and multiplied by 4 (retrying) after one that
            does not. The textbook method for least squares with a few hundred parameters: it converges in
            tens of iterations where first-order methods need thousands, and it is a descent method, so a
            retrain never kicks a converged network off its minimum. Cost per iteration: one Jacobian
            (N*O, P) and one P x P Cholesky; above a few thousand parameters use lbfgs.
    lbfgs   L-BFGS with a strong-Wolfe line search (torch.optim.LBFGS).
    adam    Adam whose moments live in an `AdamMoments` keyed by connection and neuron, so they survive edits
            of the network, with the rate cosine-decayed within each retrain from `lr` to `lr * lr_floor`.

Saliency of a connection q with weight w_q (lower = pruned first), with H the Gauss-Newton Hessian of L,
2/(N*O) J^T J:
    obs         Optimal Brain Surgeon (Hassibi & Stork 1993): w_q^2 / (2 [H^-1]_qq), the loss increase
                after removing w_q *and* moving every other parameter (weights and biases) by the
                compensating update  dθ = -(w_q / [H^-1]_qq) H^-1 e_q  (`obs_remove`). For a set Q removed at
                once: dθ = -H^-1 E_Q (H^-1_QQ)^-1 w_Q and dL = 1/2 w_Q^T (H^-1_QQ)^-1 w_Q; `obs_greedy`
                builds Q one weight at a time, each the cheapest given the ones already chosen.
    obd         Optimal Brain Damage (LeCun, Denker & Solla 1990): 1/2 h_qq w_q^2 with the Gauss-Newton
                diagonal; no compensation.
    trial       exact loss increase when w_q is set to 0, nothing else moved (one forward pass per connection).
    magnitude   |w_q|.
H is damped by `damping` * mean(diag H) on its diagonal before inverting (it is singular when some
parameter does not affect the outputs, e.g. behind a saturated unit); the damping is our choice.

New units (`fit_unit`), cascade-correlation style (Fahlman & Lebiere 1990): a candidate neuron
h = act(S w + b) on the values S of its would-be sources is fitted to the current residual r = y - f(X) by
least squares r ~ h a + c (Levenberg-Marquardt over w, b, a, c), from several random starts; the chosen
candidate is inserted with out-weights a (and c added to the output biases), so the training loss can only
fall. `source_scores` ranks would-be
sources by how much of the residual a one-input unit on them explains, which is how the search picks the
few inputs of each candidate.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from graphbuilder.ir.errors import GraphError
from graphbuilder.ops.modules.neuron_graph import activate, activate_grad
from graphbuilder.ops.neuron_graph import Edge, NeuronGraph

OPTIMIZERS = ("lm", "lbfgs", "adam")
#: Clocks a time budget can be measured on: wall time, or this process's CPU time (fair on a shared machine,
#: where other work slows a run's wall clock but not its CPU time).
CLOCKS: dict[str, Callable[[], float]] = {"wall": time.perf_counter, "process": time.process_time}
SALIENCIES = ("obs", "obd", "trial", "magnitude")
F64 = torch.float64


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
    """Root mean squared error of the network on (X, y), computed in float64."""
    with torch.no_grad():
        return math.sqrt(float(torch.mean((ng.to_module(dtype=F64)(X.to(F64)) - y.to(F64)) ** 2)))


# -- parameters as one vector -----------------------------------------------------------------------------------
def parameters(ng: NeuronGraph) -> torch.Tensor:
    """θ = (weight in `connections` order, bias of hidden then output neurons) as one float64 vector: the
    columns of `NeuronGraphModule.jacobian` and of every Hessian here."""
    state = ng.state_dict(F64)
    return torch.cat([state["weight"], state["bias"]])


def set_parameters(ng: NeuronGraph, theta: torch.Tensor) -> None:
    """Load a vector laid out as `parameters` into `ng`."""
    e = ng.num_connections
    ng.load_state_dict({"weight": theta[:e], "bias": theta[e:]})


def _loader(module: Any) -> Callable[[torch.Tensor], None]:
    e = module.weight.numel()

    def load(theta: torch.Tensor) -> None:
        with torch.no_grad():
            module.weight.copy_(theta[:e])
            module.bias.copy_(theta[e:])
    return load


# -- optimisers -------------------------------------------------------------------------------------------------
@dataclass
class AdamMoments:
    """Adam's first and second moments per parameter, keyed by connection (src, dst) or neuron id, and the
    step count: they carry across edits, so a retrain after a prune continues the optimisation instead of
    restarting it (new connections and neurons start at zero moments)."""

    m: dict[Any, float] = field(default_factory=dict)
    v: dict[Any, float] = field(default_factory=dict)
    t: int = 0


def _keys(ng: NeuronGraph) -> list[Any]:
    return [("w", s, d) for s, d in ng.connections] + [("b", n) for n in ng.hidden + ng.outputs]


def fit(ng: NeuronGraph, X: torch.Tensor, y: torch.Tensor, steps: int, optimizer: str = "lm", *,
        lr: float = 0.02, lr_floor: float = 0.1, moments: AdamMoments | None = None,
        weight_decay: float = 0.0, tolerance: float = 1e-10, max_seconds: float | None = None,
        clock: str = "wall") -> float:
    """Train all weights and biases of `ng` in place, full batch; returns the training RMSE.

    `steps` counts Jacobians for "lm", iterations for "lbfgs" and updates for "adam"; lm and lbfgs stop
    early once an iteration lowers the loss by less than `tolerance` (relative). Adam uses `lr` decayed by a
    cosine to `lr * lr_floor` and keeps its state in `moments` when given. `max_seconds` caps the time of lm
    and adam on `clock` (a `CLOCKS` name; checked between steps). If training diverges (non-finite loss) the
    weights are left as they were."""
    if optimizer not in OPTIMIZERS:
        raise GraphError(f"optimizer must be one of {list(OPTIMIZERS)}, got {optimizer!r}")
    X64, y64 = X.to(F64), y.to(F64)
    if steps <= 0 or ng.num_connections + ng.num_hidden + len(ng.outputs) == 0:
        return rmse(ng, X64, y64)
    theta0 = parameters(ng)
    module = ng.to_module(dtype=F64)
    if optimizer == "lm":
        theta = levenberg_marquardt(module, X64, y64, steps, weight_decay=weight_decay, tolerance=tolerance,
                                    max_seconds=max_seconds, clock=CLOCKS[clock])
    elif optimizer == "lbfgs":
        lbfgs(list(module.parameters()), lambda: torch.mean((module(X64) - y64) ** 2), steps, lr=1.0,
              history_size=20, tolerance_grad=1e-12, tolerance_change=tolerance)
        theta = torch.cat([module.weight.detach(), module.bias.detach()])
    else:
        theta = _adam(ng, module, X64, y64, steps, lr, lr_floor, moments, max_seconds, CLOCKS[clock])
    _loader(module)(theta)
    with torch.no_grad():
        final = float(torch.mean((module(X64) - y64) ** 2))
    if math.isfinite(final) and bool(torch.isfinite(theta).all()):
        set_parameters(ng, theta)
        return math.sqrt(final)
    set_parameters(ng, theta0)
    return rmse(ng, X64, y64)


def levenberg_marquardt(module: Any, X: torch.Tensor, y: torch.Tensor, steps: int, *, weight_decay: float = 0.0,
                        tolerance: float = 1e-10, max_seconds: float | None = None,
                        clock: Callable[[], float] = time.perf_counter) -> torch.Tensor:
    """Minimise mean (module(X) - y)^2 + weight_decay * sum(weight^2) over a `NeuronGraphModule`'s (weight,
    bias) by `lm_minimise`; returns the final parameter vector (the module is left at it)."""
    load = _loader(module)
    e, n_res = module.weight.numel(), y.numel()
    decay = math.sqrt(weight_decay * n_res)  # sum r^2 + decay^2 |w|^2 = N*O * (the loss above)

    def residual(theta: torch.Tensor, jacobian: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
        load(theta)
        with torch.no_grad():
            r = (module(X) - y).reshape(-1)  # (N*O,)
        if decay:
            r = torch.cat([r, decay * theta[:e]])
        if not jacobian:
            return r, None
        J = module.jacobian(X).reshape(n_res, -1)
        if decay:
            J = torch.cat([J, decay * torch.eye(e, theta.numel(), dtype=J.dtype)])
        return r, J

    theta = lm_minimise(torch.cat([module.weight.detach(), module.bias.detach()]), residual, steps,
                        tolerance=tolerance, max_seconds=max_seconds, clock=clock)
    load(theta)
    return theta


def lm_minimise(p: torch.Tensor, residual: Callable[[torch.Tensor, bool], tuple[torch.Tensor, torch.Tensor | None]],
                steps: int, *, mu: float = 1e-3, tolerance: float = 1e-10, max_seconds: float | None = None,
                clock: Callable[[], float] = time.perf_counter) -> torch.Tensor:
    """Levenberg-Marquardt on sum r(p)^2 with Marquardt's diagonal scaling: each iteration solves
    (J^T J + mu diag(J^T J)) d = -J^T r, divides mu by 3 after a step that lowers the loss and multiplies it by
    4 (retrying) after one that does not. `residual(p, jacobian)` returns (r, J or None). Stops after `steps`
    Jacobians or `max_seconds` on `clock`, when a step lowers the loss by less than `tolerance` (relative), or when no
    damping up to 1e10 lowers it (a minimum to working precision). Only accepts descending steps."""
    deadline = math.inf if max_seconds is None else clock() + max_seconds

    def loss_of(q: torch.Tensor) -> float:
        return float(torch.sum(residual(q, False)[0] ** 2))

    loss = loss_of(p)
    for _ in range(steps):
        r, J = residual(p, True)
        assert J is not None
        A, g = J.t() @ J, J.t() @ r
        diag = A.diagonal().clamp(min=1e-9 * float(A.diagonal().max()) + 1e-30)
        gain = -1.0
        while mu < 1e10:
            L, info = torch.linalg.cholesky_ex(A + torch.diag(mu * diag))
            if int(info) == 0:
                trial = p + torch.cholesky_solve(-g[:, None], L)[:, 0]
                new = loss_of(trial)
                if math.isfinite(new) and new < loss:
                    gain = (loss - new) / max(loss, 1e-300)
                    p, loss = trial, new
                    mu = max(mu / 3, 1e-12)
                    break
            mu *= 4
        if gain < tolerance or clock() > deadline:
            break
    return p


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


def _adam(ng: NeuronGraph, module: Any, X: torch.Tensor, y: torch.Tensor, steps: int, lr: float, lr_floor: float,
          moments: AdamMoments | None, max_seconds: float | None = None,
          clock: Callable[[], float] = time.perf_counter, betas: tuple[float, float] = (0.9, 0.999),
          eps: float = 1e-8) -> torch.Tensor:
    """Adam with moments carried in `moments` (keyed by connection / neuron) and a cosine-decayed rate."""
    keys = _keys(ng)
    state = moments if moments is not None else AdamMoments()
    m = torch.tensor([state.m.get(k, 0.0) for k in keys], dtype=F64)
    v = torch.tensor([state.v.get(k, 0.0) for k in keys], dtype=F64)
    theta = torch.cat([module.weight.detach(), module.bias.detach()]).clone()
    load = _loader(module)
    deadline = math.inf if max_seconds is None else clock() + max_seconds
    for k in range(steps):
        if clock() > deadline:
            break
        load(theta)
        module.zero_grad(set_to_none=True)
        torch.mean((module(X) - y) ** 2).backward()
        grad = torch.cat([module.weight.grad, module.bias.grad])
        state.t += 1
        m.mul_(betas[0]).add_(grad, alpha=1 - betas[0])
        v.mul_(betas[1]).addcmul_(grad, grad, value=1 - betas[1])
        rate = lr * (lr_floor + (1 - lr_floor) * 0.5 * (1 + math.cos(math.pi * k / max(1, steps))))
        m_hat = m / (1 - betas[0] ** state.t)
        v_hat = v / (1 - betas[1] ** state.t)
        theta -= rate * m_hat / (v_hat.sqrt() + eps)
    state.m = dict(zip(keys, m.tolist(), strict=True))
    state.v = dict(zip(keys, v.tolist(), strict=True))
    return theta


# -- Hessians and saliency --------------------------------------------------------------------------------------
def gauss_newton(ng: NeuronGraph, X: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(H, grad): the Gauss-Newton Hessian 2/(N*O) J^T J and the gradient 2/(N*O) J^T r of
    L = mean (f(X) - y)^2 over `parameters(ng)`, in float64."""
    module = ng.to_module(dtype=F64)
    X64, y64 = X.to(F64), y.to(F64)
    with torch.no_grad():
        r = (module(X64) - y64).reshape(-1)
    J = module.jacobian(X64).reshape(r.numel(), -1)
    scale = 2.0 / r.numel()
    return scale * (J.t() @ J), scale * (J.t() @ r)


@dataclass
class Surgeon:
    """Optimal Brain Surgeon state at one network: its parameter vector `theta` (layout of `parameters`),
    the inverse of the damped Gauss-Newton Hessian `h_inv`, and the connections (the first entries of
    theta) that may be removed."""

    theta: torch.Tensor
    h_inv: torch.Tensor
    connections: list[Edge]

    @classmethod
    def at(cls, ng: NeuronGraph, X: torch.Tensor, y: torch.Tensor, damping: float = 1e-4,
           hessian: torch.Tensor | None = None) -> Surgeon:
        """The state at `ng` on (X, y) with the Gauss-Newton Hessian (or `hessian`, e.g. an exact one),
        damped by `damping` * mean(diag H) on its diagonal."""
        H = gauss_newton(ng, X, y)[0] if hessian is None else hessian.to(F64)
        lam = damping * float(H.diagonal().mean()) if H.numel() else 0.0
        eye = torch.eye(H.shape[0], dtype=F64)
        L, info = torch.linalg.cholesky_ex(H + lam * eye)
        while int(info) != 0:  # H is PSD; only rounding makes it fail: damp more
            lam = max(lam * 10, 1e-12)
            L, info = torch.linalg.cholesky_ex(H + lam * eye)
        return cls(parameters(ng), torch.cholesky_inverse(L), ng.connections)

    def saliencies(self) -> dict[Edge, float]:
        """w_q^2 / (2 [H^-1]_qq) for every connection: the predicted loss increase of removing it with the
        compensating update."""
        e = len(self.connections)
        w, d = self.theta[:e], self.h_inv.diagonal()[:e]
        return {c: float(v) for c, v in zip(self.connections, w * w / (2 * d), strict=True)}

    def remove(self, edges: Sequence[Edge]) -> tuple[torch.Tensor, float]:
        """(θ + dθ, predicted loss increase) after removing `edges` together, every other parameter
        compensated: dθ = -H^-1 E_Q (H^-1_QQ)^-1 w_Q, dL = 1/2 w_Q^T (H^-1_QQ)^-1 w_Q. The removed entries of
        the returned vector are exactly 0."""
        index = {c: k for k, c in enumerate(self.connections)}
        q = torch.tensor([index[e] for e in edges], dtype=torch.long)
        wq = self.theta[q]
        hqq = self.h_inv[q][:, q]
        coef = torch.linalg.solve(hqq, wq)
        new = self.theta - self.h_inv[:, q] @ coef
        new[q] = 0.0
        return new, float(0.5 * wq @ coef)

    def greedy(self, k: int, among: Sequence[Edge] | None = None) -> tuple[list[Edge], torch.Tensor, float]:
        """Choose up to `k` connections (from `among`, default all) one at a time, each the one whose removal
        adds the least loss given those already removed (the inverse Hessian is downdated after each);
        returns (chosen, compensated θ, predicted loss increase)."""
        h_inv, theta = self.h_inv.clone(), self.theta.clone()
        index = {c: i for i, c in enumerate(self.connections)}
        pool = [index[c] for c in (among if among is not None else self.connections)]
        chosen: list[Edge] = []
        total = 0.0
        for _ in range(min(k, len(pool))):
            idx = torch.tensor(pool, dtype=torch.long)
            d = h_inv.diagonal()[idx].clamp_min(1e-300)
            scores = theta[idx] ** 2 / (2 * d)
            j = int(torch.argmin(scores))
            q = pool.pop(j)
            total += float(scores[j])
            col = h_inv[:, q].clone()
            theta -= (theta[q] / col[q]) * col
            theta[q] = 0.0
            h_inv -= torch.outer(col, col) / col[q]  # inverse Hessian on the subspace where w_q stays 0
            chosen.append(self.connections[q])
        return chosen, theta, total


def saliency(ng: NeuronGraph, X: torch.Tensor, y: torch.Tensor, kind: str = "obs", damping: float = 1e-4
             ) -> dict[Edge, float]:
    """Saliency of every connection (see the module docstring); lower means less useful."""
    if kind not in SALIENCIES:
        raise GraphError(f"saliency must be one of {list(SALIENCIES)}, got {kind!r}")
    conns = ng.connections
    if not conns:
        return {}
    if kind == "magnitude":
        return {e: abs(ng.weight(*e)) for e in conns}
    if kind == "obs":
        return Surgeon.at(ng, X, y, damping).saliencies()
    module = ng.to_module(dtype=F64)
    X64, y64 = X.to(F64), y.to(F64)
    w = module.weight.detach()
    if kind == "obd":
        h = module.gauss_newton_diagonal(X64) * (2.0 / (X.shape[0] * y.shape[1]))
        return {e: float(0.5 * h[k] * w[k] ** 2) for k, e in enumerate(conns)}
    with torch.no_grad():
        base = float(torch.mean((module(X64) - y64) ** 2))
        out: dict[Edge, float] = {}
        for k, e in enumerate(conns):
            old = float(module.weight[k])
            module.weight[k] = 0.0
            out[e] = float(torch.mean((module(X64) - y64) ** 2)) - base
            module.weight[k] = old
    return out


# -- new units --------------------------------------------------------------------------------------------------
def source_scores(S: torch.Tensor, r: torch.Tensor, thresholds: int = 7) -> torch.Tensor:
    """How well a one-input unit on each column of S (N, k) could explain the residual r (N, O): the largest
    squared correlation between r and a step-like feature tanh(4 (s - t) / spread) over `thresholds`
    quantiles t of s, plus s itself, summed over outputs. Plain correlation with s is useless here: after
    least squares the residual is uncorrelated with every linear source. Returns (k,)."""
    S64, r64 = S.to(F64), r.to(F64)
    rc = r64 - r64.mean(0)
    rn = rc.norm(dim=0).clamp_min(1e-300)  # (O,)
    qs = torch.linspace(0.1, 0.9, thresholds, dtype=F64)
    out = torch.zeros(S64.shape[1], dtype=F64)
    for j in range(S64.shape[1]):
        s = S64[:, j]
        spread = float(s.std()) + 1e-12
        feats = [s] + [torch.tanh(4 * (s - t) / spread) for t in torch.quantile(s, qs)]
        F = torch.stack(feats, 1)
        F = F - F.mean(0)
        fn = F.norm(dim=0).clamp_min(1e-300)
        corr = (F.t() @ rc) / (fn[:, None] * rn[None, :])  # (features, O)
        out[j] = float((corr ** 2).max(0).values.sum())
    return out


def fit_unit(S: torch.Tensor, r: torch.Tensor, activation: str, *, candidates: int = 4, steps: int = 40,
             init_scale: float = 2.0, seed: int = 0) -> tuple[list[float], float, list[float], list[float], float]:
    """Fit one new neuron h = act(S w + b) to the residual `r` by r ~ h a + c (least squares), trying
    `candidates` random starts (w, b uniform +-init_scale/sqrt(k)) each refined by at most `steps`
    Levenberg-Marquardt iterations over (w, b, a, c); returns (w, b, a, c, mse) of the best one. S (N, k) the
    source values, r (N, O).

    Each start begins at the least-squares (a, c) of the random unit and LM only accepts steps that lower
    the loss, so the result leaves at most mean(r^2) minus what that unit explains: inserting it never raises
    the training loss."""
    S64, r64 = S.to(F64), r.to(F64)
    n, k = S64.shape
    o = r64.shape[1]
    gen = torch.Generator().manual_seed(int(seed))
    bound = init_scale / math.sqrt(max(k, 1))
    ones = torch.ones(n, 1, dtype=F64)
    Sb = torch.cat([S64, ones], 1)  # (N, k + 1): sources and the bias input

    def residual(p: torch.Tensor, jacobian: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
        wb, a, c = p[:k + 1], p[k + 1:k + 1 + o], p[k + 1 + o:]
        z = Sb @ wb
        h = activate(activation, z)
        res = (h[:, None] * a + c - r64).t().reshape(-1)  # (O*N,) output-major
        if not jacobian:
            return res, None
        # d res_(o, n) / d (w, b) = a_o act'(z_n) Sb_n;  / d a_o' = h_n [o = o'];  / d c_o' = [o = o']
        J = torch.zeros(o * n, p.numel(), dtype=F64)
        dh = activate_grad(activation, h, z)
        for j in range(o):
            rows = slice(j * n, (j + 1) * n)
            J[rows, :k + 1] = (a[j] * dh)[:, None] * Sb
            J[rows, k + 1 + j] = h
            J[rows, k + 1 + o + j] = 1.0
        return res, J

    best: tuple[list[float], float, list[float], list[float], float] | None = None
    for _ in range(max(1, candidates)):
        wb = (torch.rand(k + 1, generator=gen, dtype=F64) * 2 - 1) * bound
        a, c = _ls_out(activate(activation, Sb @ wb), r64)
        p = lm_minimise(torch.cat([wb, a, c]), residual, steps)
        mse = float(torch.mean(residual(p, False)[0] ** 2))
        if best is None or mse < best[4]:
            best = (p[:k].tolist(), float(p[k]), p[k + 1:k + 1 + o].tolist(), p[k + 1 + o:].tolist(), mse)
    assert best is not None
    return best


def _ls_out(h: torch.Tensor, r: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Least-squares a (O,), c (O,) for r (N, O) ~ h (N,) a + c."""
    hc = h - h.mean()
    var = float(torch.sum(hc * hc))
    a = (hc[:, None] * (r - r.mean(0))).sum(0) / var if var > 1e-12 else torch.zeros(r.shape[1], dtype=r.dtype)
    c = r.mean(0) - h.mean() * a
    return a, c
