"""graphbuilder.search.neuron_train: the optimisers, the Hessian and Optimal Brain Surgeon against
straightforward references.

The references are independent of the executor's reverse walk: a per-neuron torch evaluation (autograd does
every derivative, including the exact Hessian via torch.autograd.functional.hessian), and, for networks of
identity neurons, ordinary least squares (torch.linalg.lstsq), where the loss is exactly quadratic and OBS is
exact.
"""

from __future__ import annotations

import math

import pytest
import torch
from neuron_reference import reference_forward

from graphbuilder.search import NeuronGraph, neuron_train
from graphbuilder.search.neuron_train import AdamMoments, Surgeon

F64 = torch.float64


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny tensors: one torch thread is fastest, and much faster on a busy machine."""
    with neuron_train.torch_threads(1):
        yield


def reference_loss(ng: NeuronGraph, x: torch.Tensor, y: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    return torch.mean((reference_forward(ng, x, theta) - y) ** 2)


def small_net(seed: int = 0, acts: tuple[str, ...] = ("tanh", "sigmoid", "sin")) -> NeuronGraph:
    """A random DAG whose every parameter reaches an output (so its Hessian can be regular)."""
    ng = NeuronGraph.random(3, 4, 2, 16, seed=seed, activations=acts)
    ng.simplify()
    return ng


def test_jacobian_matches_autograd_through_a_per_neuron_reference() -> None:
    for seed in range(4):
        ng = small_net(seed, ("tanh", "sin", "relu", "softplus", "identity", "sigmoid"))
        x = torch.randn(6, 3, dtype=F64)
        theta = neuron_train.parameters(ng)
        want = torch.autograd.functional.jacobian(lambda t, ng=ng, x=x: reference_forward(ng, x, t), theta)
        for mode in ("dense", "sparse"):
            got = ng.to_module(mode=mode, dtype=F64).jacobian(x)
            assert torch.allclose(got, want, atol=1e-12), (seed, mode)


def test_gauss_newton_is_the_exact_hessian_at_zero_residual() -> None:
    ng = small_net(1)
    x = torch.randn(30, 3, dtype=F64)
    theta = neuron_train.parameters(ng)
    with torch.no_grad():
        y = reference_forward(ng, x, theta)  # targets the network fits exactly: residual 0
    exact = torch.autograd.functional.hessian(lambda t: reference_loss(ng, x, y, t), theta)
    H, grad = neuron_train.gauss_newton(ng, x, y)
    assert torch.allclose(H, exact, atol=1e-12) and float(grad.abs().max()) < 1e-12


def test_obs_saliency_and_compensation_match_the_formula_with_an_exact_hessian() -> None:
    """At a minimum (zero residual) with the brute-force Hessian: the saliency is w_q^2 / (2 [H^-1]_qq), the
    compensated update zeroes w_q and moves the others by -(w_q / [H^-1]_qq) H^-1 e_q, and the true loss
    after it converges to the predicted increase as w_q -> 0 (the formula is second-order exact)."""
    errors = []
    for eps in (1e-2, 1e-3):
        ng = NeuronGraph.layered(3, (3,), 2, seed=1, activation="tanh")
        e = ng.connections[4]
        ng.set_weight(*e, eps)
        x = torch.randn(100, 3, dtype=F64, generator=torch.Generator().manual_seed(1))
        theta = neuron_train.parameters(ng)
        with torch.no_grad():
            y = reference_forward(ng, x, theta)
        exact = torch.autograd.functional.hessian(lambda t, ng=ng, x=x, y=y: reference_loss(ng, x, y, t), theta)
        surgeon = Surgeon.at(ng, x, y, damping=0.0, hessian=exact)
        h_inv = torch.linalg.inv(exact)
        sal = surgeon.saliencies()
        for q, c in enumerate(ng.connections):
            assert sal[c] == pytest.approx(float(theta[q] ** 2 / (2 * h_inv[q, q])), rel=1e-6)
        new, predicted = surgeon.remove([e])
        q = ng.connections.index(e)
        assert new[q] == 0 and predicted == pytest.approx(sal[e], rel=1e-9)
        assert torch.allclose(new, theta - (theta[q] / h_inv[q, q]) * h_inv[:, q], atol=1e-12)
        actual = float(reference_loss(ng, x, y, new))  # the loss before was 0
        uncompensated = float(reference_loss(ng, x, y, torch.where(torch.arange(len(theta)) == q, 0.0, theta)))
        assert actual < uncompensated
        errors.append(abs(actual / predicted - 1))
    assert errors[1] < 0.01 and errors[1] < errors[0] / 5, errors


def linear_problem(seed: int = 0) -> tuple[NeuronGraph, torch.Tensor, torch.Tensor]:
    """Identity neurons with a hidden layer: a linear model in x, quadratic in the last layer's weights only
    when the first layer is fixed, so use a direct (one-layer) net: f = W x + b, exactly quadratic."""
    gen = torch.Generator().manual_seed(seed)
    ng = NeuronGraph.direct(5, 1, seed=seed)
    x = torch.randn(40, 5, generator=gen, dtype=F64)
    y = x @ torch.randn(5, 1, generator=gen, dtype=F64) + 0.3 * torch.randn(40, 1, generator=gen, dtype=F64)
    neuron_train.fit(ng, x, y, 50, "lm")
    return ng, x, y


def lstsq_loss(x: torch.Tensor, y: torch.Tensor, keep: list[int]) -> float:
    """The least-squares loss of y ~ x[:, keep] w + b (the brute-force optimum with the others removed)."""
    A = torch.cat([x[:, keep], torch.ones(len(x), 1, dtype=F64)], 1)
    sol = torch.linalg.lstsq(A, y).solution
    return float(torch.mean((A @ sol - y) ** 2))


def test_lm_reaches_least_squares_and_obs_is_exact_on_a_quadratic_loss() -> None:
    ng, x, y = linear_problem()
    base = neuron_train.rmse(ng, x, y) ** 2
    assert base == pytest.approx(lstsq_loss(x, y, list(range(5))), rel=1e-9)  # LM found the optimum
    surgeon = Surgeon.at(ng, x, y, damping=0.0)
    sal = surgeon.saliencies()
    for q, e in enumerate(ng.connections):
        new, predicted = surgeon.remove([e])
        keep = [k for k in range(5) if k != q]
        assert base + predicted == pytest.approx(lstsq_loss(x, y, keep), rel=1e-9)  # compensated = re-solved
        assert predicted == pytest.approx(sal[e], rel=1e-9)
        cut = ng.copy()
        neuron_train.set_parameters(cut, new)
        cut.remove_connection(*e)
        assert neuron_train.rmse(cut, x, y) ** 2 == pytest.approx(base + predicted, rel=1e-9)
    # several at once: the joint formula, and greedy selection agrees with it
    pair = ng.connections[1:4]
    new, predicted = surgeon.remove(pair)
    assert base + predicted == pytest.approx(lstsq_loss(x, y, [0, 4]), rel=1e-9)
    chosen, theta, total = surgeon.greedy(3)
    assert total == pytest.approx(surgeon.remove(chosen)[1], rel=1e-9)
    assert torch.allclose(theta, surgeon.remove(chosen)[0], atol=1e-10)
    best_pair = min(((a, b) for a in range(5) for b in range(a + 1, 5)),
                    key=lambda p: lstsq_loss(x, y, [k for k in range(5) if k not in p]))
    assert sorted(ng.connections.index(e) for e in surgeon.greedy(2)[0]) == list(best_pair)


def test_lm_descends_and_beats_adam_per_step() -> None:
    ng = NeuronGraph.layered(2, (6,), 1, seed=0)
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(200, 2, generator=gen) * 2 - 1
    y = torch.sin(3 * x[:, :1]) * torch.cos(2 * x[:, 1:])
    start = neuron_train.rmse(ng, x, y)
    losses = []
    net = ng.copy()
    for _ in range(5):
        losses.append(neuron_train.fit(net, x, y, 4, "lm"))
    assert losses[0] < start and all(b <= a + 1e-12 for a, b in zip(losses, losses[1:], strict=False))
    adam = ng.copy()
    assert losses[-1] < neuron_train.fit(adam, x, y, 200, "adam", lr=0.02)  # 20 LM steps vs 200 Adam steps


def adam_by_hand(ng: NeuronGraph, x: torch.Tensor, y: torch.Tensor, theta: torch.Tensor, m: torch.Tensor,
                 v: torch.Tensor, t: int, rates: list[float]) -> torch.Tensor:
    """Adam (Kingma & Ba) written out, one rate per step, autograd gradients of the reference loss."""
    for rate in rates:
        g = _grad(ng, x, y, theta)
        t += 1
        m, v = 0.9 * m + 0.1 * g, 0.999 * v + 0.001 * g * g
        theta = theta - rate * (m / (1 - 0.9 ** t)) / ((v / (1 - 0.999 ** t)).sqrt() + 1e-8)
    return theta


def test_adam_keeps_its_moments_across_edits_and_decays_its_rate() -> None:
    ng = NeuronGraph.direct(2, 1, seed=0)
    x = torch.tensor([[1.0, 2.0], [0.5, -1.0], [-1.0, 0.0]], dtype=F64)
    y = torch.tensor([[1.0], [0.0], [2.0]], dtype=F64)
    zeros = torch.zeros(3, dtype=F64)
    # within one retrain the rate decays by a cosine from lr to lr * lr_floor: 0.1, then 0.1 * 0.55
    moments = AdamMoments()
    theta0 = neuron_train.parameters(ng)
    neuron_train.fit(ng, x, y, 2, "adam", lr=0.1, lr_floor=0.1, moments=moments)
    want = adam_by_hand(ng, x, y, theta0, zeros, zeros, 0, [0.1, 0.055])
    assert torch.allclose(neuron_train.parameters(ng), want, atol=1e-9)
    assert moments.t == 2 and set(moments.m) == {("w", 0, 2), ("w", 1, 2), ("b", 2)}
    # remove a connection: the others continue from their moments (t = 3, bias-corrected), a new one starts at 0
    ng.remove_connection(1, 2)
    theta = neuron_train.parameters(ng)
    keys = [("w", 0, 2), ("b", 2)]
    m = torch.tensor([moments.m[k] for k in keys], dtype=F64)
    v = torch.tensor([moments.v[k] for k in keys], dtype=F64)
    neuron_train.fit(ng, x, y, 1, "adam", lr=0.1, moments=moments)
    assert torch.allclose(neuron_train.parameters(ng), adam_by_hand(ng, x, y, theta, m, v, 2, [0.1]), atol=1e-9)
    assert ("w", 1, 2) not in moments.m and moments.t == 3


def _grad(ng: NeuronGraph, x: torch.Tensor, y: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    t = theta.clone().requires_grad_()
    (g,) = torch.autograd.grad(reference_loss(ng, x, y, t), t)
    return g


def test_saliencies_match_brute_force() -> None:
    ng = NeuronGraph.random(3, 5, 1, 14, seed=4, activations=("tanh",))
    X, y = torch.randn(40, 3), torch.randn(40, 1)
    trial = neuron_train.saliency(ng, X, y, "trial")
    base = neuron_train.rmse(ng, X, y) ** 2
    e = ng.connections[3]
    cut = ng.copy()
    cut.remove_connection(*e)
    assert trial[e] == pytest.approx(neuron_train.rmse(cut, X, y) ** 2 - base, rel=1e-6, abs=1e-9)
    obd = neuron_train.saliency(ng, X, y, "obd")
    module = ng.to_module(dtype=F64)
    k = ng.connections.index(e)
    h = 0.0
    for n in range(40):
        (grad,) = torch.autograd.grad(module(X[n:n + 1].double())[0, 0], module.weight)
        h += float(grad[k]) ** 2
    assert obd[e] == pytest.approx(0.5 * (2 / 40) * h * ng.weight(*e) ** 2, rel=1e-6)
    assert neuron_train.saliency(ng, X, y, "magnitude")[e] == abs(ng.weight(*e))
    obs = neuron_train.saliency(ng, X, y, "obs")
    assert set(obs) == set(ng.connections) and all(v >= 0 for v in obs.values())


def test_fit_unit_matches_least_squares_and_lowers_the_residual() -> None:
    gen = torch.Generator().manual_seed(3)
    S, r = torch.randn(50, 3, generator=gen, dtype=F64), torch.randn(50, 1, generator=gen, dtype=F64)
    w, b, a, c, mse = neuron_train.fit_unit(S, r, "tanh", candidates=1, steps=0, seed=3)
    h = torch.tanh(S @ torch.tensor(w, dtype=F64) + b)
    A = torch.stack([h, torch.ones_like(h)], 1)
    slope, intercept = torch.linalg.lstsq(A, r).solution[:, 0].tolist()
    assert a[0] == pytest.approx(slope, rel=1e-9) and c[0] == pytest.approx(intercept, rel=1e-9, abs=1e-12)
    assert mse == pytest.approx(float(torch.mean((A @ torch.tensor([[slope], [intercept]], dtype=F64) - r) ** 2)))
    # a residual that is a step in source 1: fitting finds it, and source_scores ranks source 1 first
    target = (S[:, 1:2] > 0.3).to(F64) + 0.01 * r
    w, b, a, c, mse = neuron_train.fit_unit(S, target, "tanh", candidates=2, steps=40, seed=0)
    assert mse < 0.05 * float(target.var())
    scores = neuron_train.source_scores(S, target)
    assert int(torch.argmax(scores)) == 1 and float(scores[1]) > 3 * float(scores[[0, 2]].max())
    assert math.isfinite(float(scores.sum()))
