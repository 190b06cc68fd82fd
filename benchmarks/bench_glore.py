"""GloRe benchmark: does global reasoning pay, and what does it cost? (arXiv:1811.12814)

Boundary: measures and prints; asserts nothing about time. Three parts:
  1. Relational task (graphbuilder/datasets/relational.py): a small ResNet built in the IR, and the same net
     after `gb.passes.insert_glore`, trained on CPU with equal epochs and seeds: test accuracy, params, FLOPs.
     The baseline's receptive field (measured with autograd) is smaller than the gap between the shapes.
  2. Cost at ResNet-50's Res4 size (C=1024, 14x14, m=256): the unit's params and FLOPs as reported by the
     graph, against the closed forms of ALGORITHMS.md section 2.
  3. CPU latency of one unit beside a plain bottleneck block of the same width (1024 -> 256 -> 1024),
     medians over repeats; the ratio is the unit's overhead relative to one block.

    .venv/bin/python benchmarks/bench_glore.py            # full (a few minutes on 2 cores)
    .venv/bin/python benchmarks/bench_glore.py --quick    # smaller data and fewer epochs (~1 minute)

Measured (CPU, 2 threads, torch 2.11, colour relation, width 4, 6000/1000 images, 15 epochs; test accuracy):
    seed                 0     1     2     3     4     5
    ResNet (lr 3e-3)     0.50  0.52  0.51  0.53  0.50  0.46
    + GloRe (lr 3e-3)    0.85  1.00  0.90  0.78  0.89  0.50
    + GloRe (lr 1e-2)                      0.97  0.82  0.78      (ResNet at lr 1e-2: 0.50  0.51  0.50)
    params 8,650 -> 15,242 (1.76x), FLOPs/img 3.10 M -> 3.93 M (1.27x)
The unit starts as the identity, so whether and when it "takes off" varies with the initialisation.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F
from tqdm import tqdm

import graphbuilder as gb
from graphbuilder.datasets.relational import relational_shapes
from graphbuilder.ops.glore import glore_macs, glore_params


# -- models ----------------------------------------------------------------------------------------------------
def bottleneck(g: gb.Graph, x: gb.Node, planes: int, stride: int = 1) -> gb.Node:
    """A ResNet-50 bottleneck (1x1 reduce, 3x3, 1x1 expand x4, BN after each) joined to its skip by `add`."""
    cin = x.shape[1]
    h = g.add("relu", g.add("batch_norm2d", g.add("conv2d", x, out_channels=planes, kernel_size=1, bias=False)))
    h = g.add("relu", g.add("batch_norm2d", g.add("conv2d", h, out_channels=planes, kernel_size=3, stride=stride,
                                                      padding=1, bias=False)))
    h = g.add("batch_norm2d", g.add("conv2d", h, out_channels=4 * planes, kernel_size=1, bias=False))
    skip = x
    if stride != 1 or cin != 4 * planes:
        skip = g.add("batch_norm2d", g.add("conv2d", x, out_channels=4 * planes, kernel_size=1, stride=stride,
                                           bias=False))
    return g.add("relu", g.add("add", h, skip))


def small_resnet(layers: tuple[int, ...] = (1, 1, 1), width: int = 4, size: int = 32, classes: int = 2) -> gb.Graph:
    """A small ResNet in the IR: 3x3 stem, stages of bottlenecks (stride 2 from the second), GAP, linear.

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


def relational_experiment(n_train: int, n_test: int, epochs: int, *, relation: str = "colour", lr: float = 3e-3,
                          width: int = 4, seed: int = 0, where: str = "res4x1") -> dict[str, dict]:
    """Train the small ResNet with and without GloRe (one unit after Res4's block) on the relational task."""
    data = (*relational_shapes(n_train, relation=relation, seed=seed),
            *relational_shapes(n_test, relation=relation, seed=seed + 1))
    base = small_resnet(width=width)
    nets = {"resnet": base, "resnet+glore": gb.passes.insert_glore(base, where, seed=seed)}
    out = {}
    for name, g in nets.items():
        summary = g.summary()
        _, curve = train(g, data, epochs, lr=lr, seed=seed, label=name)
        out[name] = {"graph": g, "curve": curve, "acc": curve[-1], "params": summary.total_params,
                     "flops": summary.total_flops // g.inputs[0].shape[0]}  # per image
    return out


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
    parser.add_argument("--quick", action="store_true", help="small data, few epochs, few latency repeats")
    parser.add_argument("--relation", choices=("colour", "shape"), default="colour")
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--width", type=int, default=4, help="first stage planes of the small ResNet")
    parser.add_argument("--lr", type=float, default=None, help="peak learning rate (one-cycle schedule)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(min(2, torch.get_num_threads()))
    # peak lr 1e-2: in a sweep over seeds the GloRe net took off in 3 of 3 runs at 1e-2, 5 of 6 at 3e-3
    n_train, n_test, epochs, lr, repeats = (2000, 500, 6, 1e-2, 10) if args.quick else (6000, 1000, 15, 1e-2, 30)
    epochs = args.epochs or epochs
    lr = args.lr or lr

    print(f"== relational task ({args.relation}), {n_train} train / {n_test} test, {epochs} epochs, CPU ==")
    print(f"baseline receptive field: {receptive_field(small_resnet(width=args.width))} px; "
          "shapes are >= 12 px apart")
    res = relational_experiment(n_train, n_test, epochs, relation=args.relation, lr=lr, width=args.width,
                                seed=args.seed)
    base, glore = res["resnet"], res["resnet+glore"]
    print(f"{'net':<14}{'test acc':>10}{'params':>10}{'MFLOP/img':>10}   accuracy per epoch")
    for name, r in res.items():
        curve = " ".join(f"{a:.2f}" for a in r["curve"])
        print(f"{name:<14}{r['acc']:>10.3f}{r['params']:>10,}{r['flops'] / 1e6:>10.2f}   {curve}")
    print(f"ratio glore/base: accuracy {glore['acc'] / base['acc']:.2f}x, "
          f"params {glore['params'] / base['params']:.2f}x, FLOPs {glore['flops'] / base['flops']:.2f}x "
          "(chance accuracy = 0.50)")

    print("\n== one GloRe unit at ResNet-50 Res4 size (C=1024, 14x14, Cs=512, N=256), batch 1 ==")
    c = res4_cost(repeats)
    print(f"params      {c['params']:>14,}   formula 5mC+5m^2+4m+2C = {c['params_formula']:,}  "
          f"(match: {c['params'] == c['params_formula'] == c['params_closed']})")
    print(f"MACs        {c['flops'] // 2:>14,}   formula L(C*Cs+C*N+2*Cs*N+Cs*C)+N*Cs*(N+Cs) = {c['macs_formula']:,}  "
          f"(match: {c['flops'] == 2 * c['macs_formula']}; FLOPs = 2 x MACs = {c['flops']:,})")
    print(f"bottleneck  params {c['block_params']:,}, MACs {c['block_flops'] // 2:,}: unit/block params "
          f"{c['params'] / c['block_params']:.2f}x, FLOPs {c['flops'] / c['block_flops']:.2f}x")
    print(f"CPU latency (median of {repeats}): unit {c['unit_ms']:.2f} ms, bottleneck {c['block_ms']:.2f} ms, "
          f"overhead of one unit = {c['unit_ms'] / c['block_ms']:.2f} blocks")


if __name__ == "__main__":
    main()
