"""GloRe benchmark: does graph reasoning pay, against controls, and what does it cost? (arXiv:1811.12814)

Boundary: measures and prints; asserts nothing about time. Three parts:
  1. Relational task (graphbuilder/datasets/relational.py: are two far-apart shapes the same colour?). A small
     ResNet built in the IR, whose receptive field (measured with autograd) is smaller than the gap between
     the shapes, and five arms that differ only in what follows its last residual block:
        resnet        nothing (the baseline)
        +glore        one GloRe unit (`gb.passes.insert_glore(g, "res4x1")`)
        +bottleneck   one more bottleneck block, widened to about the GloRe unit's parameter count
                      (capacity and depth without global context; it also grows the receptive field)
        +gpool        a cheap global context: global average pool -> 1x1 conv -> BN (weight 0) added back
                      to every position (global-pool-and-broadcast, as in ParseNet / GCNet's context term)
        +nonlocal     a non-local block (Wang et al., arXiv:1711.07971, embedded Gaussian; here attention
                      scaled by 1/sqrt(d) through `scaled_dot_product_attention`), BN weight 0, residual
    Every arm starts as the baseline's function where that is possible (BN weight 0). Each arm is trained
    from 10 seeds (data, initialisation and order) with the same optimiser, schedule and epochs; reported:
    mean test accuracy, its 95% confidence interval (Student t), the fraction of runs that train at all
    (final test accuracy >= 0.6; chance is 0.5 and a 500-image test set puts 0.6 at 4.5 standard errors),
    and the mean over the runs that do. Parameters and FLOPs per image beside each.
  2. Cost at ResNet-50's Res4 size (C=1024, 14x14, m=256): the unit's params and FLOPs as reported by the
     graph, against the closed forms of the paper.
  3. CPU latency of one unit beside a plain bottleneck block of the same width (1024 -> 256 -> 1024),
     medians over repeats; the ratio is the unit's overhead relative to one block.

    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python benchmarks/bench_glore.py   # 5 arms x 10 seeds
    .venv/bin/python benchmarks/bench_glore.py --quick                        # 2 seeds, tiny data
    .venv/bin/python benchmarks/bench_glore.py --arms resnet,+glore --seeds 3 --epochs 8

The unit starts as the identity, so whether and when it "takes off" varies with the initialisation; that is
why the fraction of runs that train is reported beside the mean.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from tqdm import tqdm

import graphbuilder as gb
from graphbuilder.datasets.relational import relational_shapes
from graphbuilder.ops.glore import glore_macs, glore_params


# -- models ----------------------------------------------------------------------------------------------------
def bottleneck(g: gb.Graph, x: gb.Node, planes: int, stride: int = 1, out: int | None = None) -> gb.Node:
    """A ResNet-50 bottleneck (1x1 reduce, 3x3, 1x1 expand to `out` = 4 x planes, BN after each) joined to its
    skip by `add`."""
    cin, out = x.shape[1], out or 4 * planes
    h = g.add("relu", g.add("batch_norm2d", g.add("conv2d", x, out_channels=planes, kernel_size=1, bias=False)))
    h = g.add("relu", g.add("batch_norm2d", g.add("conv2d", h, out_channels=planes, kernel_size=3, stride=stride,
                                                      padding=1, bias=False)))
    h = g.add("batch_norm2d", g.add("conv2d", h, out_channels=out, kernel_size=1, bias=False))
    skip = x
    if stride != 1 or cin != out:
        skip = g.add("batch_norm2d", g.add("conv2d", x, out_channels=out, kernel_size=1, stride=stride, bias=False))
    return g.add("relu", g.add("add", h, skip))


def zero_bn(g: gb.Graph, bn: gb.Node) -> None:
    """Give a batch_norm2d node weight 0 (and bias 0), so the branch it ends adds nothing at first."""
    c = bn.shape[1]
    g.weights[bn.name] = {"weight": torch.zeros(c), "bias": torch.zeros(c), "running_mean": torch.zeros(c),
                          "running_var": torch.ones(c), "num_batches_tracked": torch.tensor(0)}


def global_pool_context(g: gb.Graph, x: gb.Node) -> gb.Node:
    """x + BN(conv1x1(mean over positions of x)), broadcast to every position; BN weight 0 (identity at first)."""
    c = x.shape[1]
    pooled = g.add("adaptive_avg_pool2d", x, output_size=1)  # (N, C, 1, 1)
    bn = g.add("batch_norm2d", g.add("conv2d", pooled, out_channels=c, kernel_size=1), name="gpool_bn")
    zero_bn(g, bn)
    return g.add("add", x, bn)


def non_local(g: gb.Graph, x: gb.Node, inner: int | None = None) -> gb.Node:
    """Non-local block (arXiv:1711.07971, embedded Gaussian): y = softmax(theta^T phi / sqrt(d)) g over all
    positions, 1x1 conv back to C, BN (weight 0), added to x."""
    _, c, h, w = x.shape
    inner = inner or c // 2

    def embed(name: str) -> gb.Node:  # (N, HW, inner)
        t = g.add("conv2d", x, out_channels=inner, kernel_size=1, name=name)
        return g.add("permute", g.add("reshape", t, shape=(-1, inner, h * w)), dims=(0, 2, 1))

    y = g.add("scaled_dot_product_attention", embed("theta"), embed("phi"), embed("g"))  # (N, HW, inner)
    y = g.add("reshape", g.add("permute", y, dims=(0, 2, 1)), shape=(-1, inner, h, w))
    bn = g.add("batch_norm2d", g.add("conv2d", y, out_channels=c, kernel_size=1, bias=False), name="nonlocal_bn")
    zero_bn(g, bn)
    return g.add("add", x, bn)


def small_resnet(layers: tuple[int, ...] = (1, 1, 1), width: int = 4, size: int = 32, classes: int = 2,
                 after: Callable[[gb.Graph, gb.Node], gb.Node] | None = None) -> gb.Graph:
    """A small ResNet in the IR: 3x3 stem, stages of bottlenecks (stride 2 from the second), `after` (an
    extra block after the last stage, if any), GAP, linear.

    With one block per stage the receptive field is 11 px at 32x32 (stem 3, then +2, +2, +4), below the
    12 px between the relational task's shapes.
    """
    g = gb.Graph("small_resnet")
    x = g.input("image", shape=(2, 3, size, size))
    h = g.add("relu", g.add("batch_norm2d", g.add("conv2d", x, out_channels=2 * width, kernel_size=3, padding=1,
                                                  bias=False)))
    for stage, blocks in enumerate(layers):
        for k in range(blocks):
            h = bottleneck(g, h, width * 2**stage, stride=2 if stage > 0 and k == 0 else 1)
    if after is not None:
        h = after(g, h)
    h = g.add("flatten", g.add("adaptive_avg_pool2d", h, output_size=1))
    g.output(g.add("linear", h, out_features=classes, name="fc"))
    return g


def receptive_field(graph: gb.Graph) -> int:
    """Width in pixels of the input region that one central position of the last spatial feature map sees."""
    last = gb.passes.residual_stages(graph)[-1].blocks[-1].node
    probe = graph.copy()
    for out in probe.outputs:
        probe.remove(out)
    probe.output(probe[last.name])
    model = gb.compile(probe).eval()
    x = torch.randn(graph.inputs[0].shape[1:]).unsqueeze(0).requires_grad_(True)
    feats = model(x)
    feats[0, :, feats.shape[2] // 2, feats.shape[3] // 2].sum().backward()
    cols = torch.nonzero(x.grad[0].abs().sum(dim=(0, 1)))
    return int(cols.max() - cols.min() + 1)


# -- training --------------------------------------------------------------------------------------------------
def evaluate(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int = 256) -> float:
    """Accuracy of `model` on (x, y), in eval mode."""
    model.eval()
    with torch.no_grad():
        correct = sum(int((model(x[i:i + batch]).argmax(1) == y[i:i + batch]).sum()) for i in range(0, len(x), batch))
    return correct / len(x)


def train(graph: gb.Graph, data: tuple[torch.Tensor, ...], epochs: int, *, lr: float = 3e-3, batch: int = 64,
          seed: int = 0, label: str = "") -> tuple[torch.nn.Module, list[float]]:
    """Adam on cross-entropy with a cosine schedule; returns the model and test accuracy after each epoch."""
    x_train, y_train, x_test, y_test = data
    torch.manual_seed(seed)
    model = gb.compile(graph)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    steps = epochs * ((len(x_train) + batch - 1) // batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps)
    gen = torch.Generator().manual_seed(seed)
    curve = []
    for _ in tqdm(range(epochs), desc=label or graph.name, leave=False):
        model.train()
        order = torch.randperm(len(x_train), generator=gen)
        for i in range(0, len(x_train), batch):
            idx = order[i:i + batch]
            loss = F.cross_entropy(model(x_train[idx]), y_train[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
        curve.append(evaluate(model, x_test, y_test))
    return model, curve


ARMS = ("resnet", "+glore", "+bottleneck", "+gpool", "+nonlocal")
TRAINS = 0.6  # a run "trains" when its final test accuracy reaches this (chance: 0.5)


def arm_graph(arm: str, width: int, seed: int) -> gb.Graph:
    """The small ResNet with `arm`'s block after its last stage (see the module docstring)."""
    if arm == "resnet":
        return small_resnet(width=width)
    if arm == "+glore":
        return gb.passes.insert_glore(small_resnet(width=width), "res4x1", seed=seed)
    if arm == "+gpool":
        return small_resnet(width=width, after=global_pool_context)
    if arm == "+nonlocal":
        return small_resnet(width=width, after=non_local)
    if arm == "+bottleneck":
        base = small_resnet(width=width).summary().total_params
        glore = arm_graph("+glore", width, seed).summary().total_params - base
        c = 4 * width * 4  # channels after the last stage

        def extra(planes: int) -> int:
            probe = gb.Graph("probe")
            probe.output(bottleneck(probe, probe.input("x", shape=(1, c, 8, 8)), planes, out=c))
            return probe.summary().total_params

        planes = min(range(1, 4 * c), key=lambda p: abs(extra(p) - glore))
        return small_resnet(width=width, after=lambda g, h: bottleneck(g, h, planes, out=c))
    raise ValueError(f"unknown arm {arm!r}; choose from {ARMS}")


def relational_study(arms: list[str], seeds: list[int], n_train: int, n_test: int, epochs: int, *, lr: float,
                     width: int, relation: str) -> dict[str, dict]:
    """Train every arm from every seed (data, initialisation and order all from the seed); per arm: params,
    FLOPs per image, and the final test accuracy of each run."""
    out: dict[str, dict] = {}
    for arm in arms:
        summary = arm_graph(arm, width, 0).summary()
        out[arm] = {"params": summary.total_params, "flops": summary.total_flops // 2, "acc": [], "curves": []}
    for seed in tqdm(seeds, desc="seeds"):
        data = (*relational_shapes(n_train, relation=relation, seed=seed),
                *relational_shapes(n_test, relation=relation, seed=10_000 + seed))
        for arm in arms:
            t = time.process_time()
            _, curve = train(arm_graph(arm, width, seed), data, epochs, lr=lr, seed=seed, label=f"{arm} seed {seed}")
            out[arm]["acc"].append(curve[-1])
            out[arm]["curves"].append(curve)
            tqdm.write(f"  seed {seed} {arm:<12} test accuracy {curve[-1]:.3f}  (per epoch "
                       f"{' '.join(f'{a:.2f}' for a in curve)}; {time.process_time() - t:.0f} CPU s)")
    return out


def mean_ci(values: list[float]) -> tuple[float, float]:
    """Mean and the half-width of its 95% confidence interval (Student t with n - 1 degrees of freedom)."""
    n = len(values)
    mean = statistics.fmean(values)
    if n < 2:
        return mean, float("nan")
    from scipy import stats

    return mean, float(stats.t.ppf(0.975, n - 1)) * statistics.stdev(values) / n ** 0.5


# -- cost at ResNet-50's Res4 size -----------------------------------------------------------------------------
def median_ms(model: torch.nn.Module, x: torch.Tensor, repeats: int) -> float:
    """Median wall time of one forward pass in milliseconds (eval, no grad, after warm-up)."""
    model.eval()
    times = []
    with torch.no_grad():
        for _ in range(2):
            model(x)
        for _ in range(repeats):
            t = time.perf_counter()
            model(x)
            times.append((time.perf_counter() - t) * 1e3)
    return statistics.median(times)


def res4_cost(repeats: int, channels: int = 1024, side: int = 14) -> dict[str, float]:
    """GloRe at Res4 size: params and FLOPs (graph vs closed form) and latency beside a bottleneck block."""
    m = channels // 4
    shape = (1, channels, side, side)
    unit = gb.Graph("glore_res4")
    unit.output(unit.add("glore_unit", unit.input("x", shape=shape), name="glore"))
    block = gb.Graph("bottleneck_res4")
    block.output(bottleneck(block, block.input("x", shape=shape), m))
    x = torch.randn(shape)
    u_sum, b_sum = unit.summary(), block.summary()
    return {
        "params": u_sum.total_params, "params_formula": 5 * m * channels + 5 * m * m + 4 * m + 2 * channels,
        "params_closed": glore_params(channels, 2 * m, m),
        "flops": u_sum.total_flops, "macs_formula": glore_macs(channels, side * side, 2 * m, m),
        "block_params": b_sum.total_params, "block_flops": b_sum.total_flops,
        "unit_ms": median_ms(gb.compile(unit), x, repeats), "block_ms": median_ms(gb.compile(block), x, repeats),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 seeds, small data, few epochs, few latency repeats")
    parser.add_argument("--arms", default=",".join(ARMS), help=f"comma-separated subset of {ARMS}")
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--relation", choices=("colour", "shape"), default="colour")
    parser.add_argument("--train", type=int, default=None, help="training images")
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--width", type=int, default=4, help="first stage planes of the small ResNet")
    parser.add_argument("--lr", type=float, default=1e-2, help="peak learning rate (one-cycle schedule)")
    parser.add_argument("--part", choices=("study", "cost", "all"), default="all")
    args = parser.parse_args()
    torch.set_num_threads(1)
    n_train, n_test, epochs, seeds, repeats = (600, 200, 2, 2, 5) if args.quick else (2000, 500, 8, args.seeds, 30)
    n_train, epochs = args.train or n_train, args.epochs or epochs
    arms = [a for a in args.arms.split(",") if a]

    if args.part in ("study", "all"):
        print(f"== relational task ({args.relation}): {len(arms)} arms x {seeds} seeds, {n_train} train / {n_test} "
              f"test images, {epochs} epochs, Adam one-cycle peak lr {args.lr}, CPU, 1 thread ==")
        print(f"baseline receptive field: {receptive_field(small_resnet(width=args.width))} px; the shapes are "
              ">= 12 px apart")
        t = time.perf_counter()
        res = relational_study(arms, list(range(seeds)), n_train, n_test, epochs, lr=args.lr, width=args.width,
                               relation=args.relation)
        base = res.get("resnet")
        print(f"{'arm':<12}{'params':>9}{'MFLOP/img':>10}{'mean acc':>10}{'95% CI':>9}{'trains':>8}"
              f"{'mean if trains':>15}   accuracy per seed")
        for arm, r in res.items():
            mean, ci = mean_ci(r["acc"])
            trained = [a for a in r["acc"] if a >= TRAINS]
            if_trains = f"{statistics.fmean(trained):.3f}" if trained else "-"
            ratio = f" ({r['params'] / base['params']:.2f}x)" if base and arm != "resnet" else ""
            print(f"{arm:<12}{r['params']:>9,}{r['flops'] / 1e6:>10.2f}{mean:>10.3f}{'+-':>3}{ci:.3f}"
                  f"{len(trained) / len(r['acc']):>8.0%}{if_trains:>15}   " + " ".join(f"{a:.2f}" for a in r["acc"])
                  + ratio)
        print(f"(trains: final test accuracy >= {TRAINS}; chance 0.5; {time.perf_counter() - t:.0f} s)")

    if args.part in ("cost", "all"):
        print("\n== one GloRe unit at ResNet-50 Res4 size (C=1024, 14x14, Cs=512, N=256), batch 1 ==")
        c = res4_cost(repeats)
        print(f"params      {c['params']:>14,}   formula 5mC+5m^2+4m+2C = {c['params_formula']:,}  "
              f"(match: {c['params'] == c['params_formula'] == c['params_closed']})")
        print(f"MACs        {c['flops'] // 2:>14,}   formula L(C*Cs+C*N+2*Cs*N+Cs*C)+N*Cs*(N+Cs) = "
              f"{c['macs_formula']:,}  (match: {c['flops'] == 2 * c['macs_formula']}; FLOPs = 2 x MACs = "
              f"{c['flops']:,})")
        print(f"bottleneck  params {c['block_params']:,}, MACs {c['block_flops'] // 2:,}: unit/block params "
              f"{c['params'] / c['block_params']:.2f}x, FLOPs {c['flops'] / c['block_flops']:.2f}x")
        print(f"CPU latency (median of {repeats}): unit {c['unit_ms']:.2f} ms, bottleneck {c['block_ms']:.2f} ms, "
              f"overhead of one unit = {c['unit_ms'] / c['block_ms']:.2f} blocks")


if __name__ == "__main__":
    main()
