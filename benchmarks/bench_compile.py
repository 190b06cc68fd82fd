"""Compile-layer benchmarks. Prints each figure beside a baseline measured in the same run.

1. Forward latency: ResNet-18 built in the IR and compiled, vs the same net hand-written as an nn.Module
   (batch 8, 3x64x64, CPU, same weights, interleaved runs, medians). Goal: ratio <= 1.02.
2. Validate + infer + compile a 1,000-node graph (goal <= 0.5 s), and incremental re-inference after changing
   one param (goal <= 10 ms), beside torch.fx.symbolic_trace + recompile of the equivalent module.

Run: .venv/bin/python benchmarks/bench_compile.py [--quick]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
from torch import nn

import graphbuilder as gb
from graphbuilder.ops.declare import clear_inference_cache


# -- ResNet-18, twice ------------------------------------------------------------------------------------------
def ir_basic_block(channels: int, stride: int, in_channels: int) -> gb.Graph:
    b = gb.Graph("basic_block")
    x = b.input("x", shape=(1, in_channels, 64, 64))
    h = b.add("conv2d", x, out_channels=channels, kernel_size=3, stride=stride, padding=1, bias=False, name="conv1")
    h = b.add("relu", b.add("batch_norm2d", h, name="bn1"), name="relu1")
    h = b.add("batch_norm2d", b.add("conv2d", h, out_channels=channels, kernel_size=3, padding=1, bias=False,
                                    name="conv2"), name="bn2")
    skip = x
    if stride != 1 or in_channels != channels:
        skip = b.add("batch_norm2d", b.add("conv2d", x, out_channels=channels, kernel_size=1, stride=stride,
                                           bias=False, name="down_conv"), name="down_bn")
    b.output(b.add("relu", b.add("add", h, skip, name="residual"), name="relu2"))
    return b


def ir_resnet18(batch: int = 8, size: int = 64) -> gb.Graph:
    g = gb.Graph("resnet18")
    x = g.input("x", shape=(batch, 3, size, size))
    h = g.add("conv2d", x, out_channels=64, kernel_size=7, stride=2, padding=3, bias=False, name="conv1")
    h = g.add("max_pool2d", g.add("relu", g.add("batch_norm2d", h, name="bn1")), kernel_size=3, stride=2, padding=1)
    in_ch = 64
    for stage, ch in enumerate((64, 128, 256, 512), start=1):
        for i in range(2):
            stride = 2 if (stage > 1 and i == 0) else 1
            h = g.add(ir_basic_block(ch, stride, in_ch), h, name=f"layer{stage}_{i}")
            in_ch = ch
    h = g.add("flatten", g.add("adaptive_avg_pool2d", h, output_size=1))
    g.output(g.add("linear", h, out_features=1000, name="fc"))
    return g


class BasicBlock(nn.Module):
    def __init__(self, in_ch: int, ch: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, ch, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(ch)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(ch, ch, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(ch)
        self.relu2 = nn.ReLU()
        self.down = None
        if stride != 1 or in_ch != ch:
            self.down = nn.Sequential(nn.Conv2d(in_ch, ch, 1, stride, bias=False), nn.BatchNorm2d(ch))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.bn2(self.conv2(self.relu1(self.bn1(self.conv1(x)))))
        return self.relu2(h + (x if self.down is None else self.down(x)))


class ResNet18(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU()
        self.pool = nn.MaxPool2d(3, 2, 1)
        blocks, in_ch = [], 64
        for stage, ch in enumerate((64, 128, 256, 512), start=1):
            for i in range(2):
                blocks.append(BasicBlock(in_ch, ch, 2 if (stage > 1 and i == 0) else 1))
                in_ch = ch
        self.layers = nn.Sequential(*blocks)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(512, 1000)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.layers(self.pool(self.relu(self.bn1(self.conv1(x)))))
        return self.fc(torch.flatten(self.avgpool(h), 1))


def copy_weights(ir_model: nn.Module, ref: ResNet18) -> None:
    """Copy the hand-written net's weights into the compiled one, layer by layer in order."""
    src = [m for m in ref.modules() if isinstance(m, (nn.Conv2d, nn.BatchNorm2d, nn.Linear))]
    dst = [m for m in ir_model.modules() if isinstance(m, (nn.Conv2d, nn.BatchNorm2d, nn.Linear))]
    assert len(src) == len(dst), (len(src), len(dst))
    for s, d in zip(src, dst, strict=True):
        d.load_state_dict(s.state_dict())


def interleaved_medians(fns: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return {k: statistics.median(v) for k, v in times.items()}


def bench_latency(repeats: int) -> None:
    torch.manual_seed(0)
    ref = ResNet18().eval()
    model = gb.compile(ir_resnet18()).eval()
    copy_weights(model, ref)
    x = torch.randn(8, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(model(x), ref(x), atol=1e-5), "compiled ResNet-18 differs from the hand-written one"
        for _ in range(3):
            model(x), ref(x)
        med = interleaved_medians({"graphbuilder": lambda: model(x), "hand-written": lambda: ref(x)}, repeats)
    print(f"ResNet-18 forward, batch 8, 3x64x64, CPU ({torch.get_num_threads()} threads), median of {repeats}:")
    print(f"  hand-written nn.Module   {med['hand-written'] * 1e3:8.2f} ms")
    print(f"  gb.compile(IR graph)     {med['graphbuilder'] * 1e3:8.2f} ms")
    print(f"  ratio                    {med['graphbuilder'] / med['hand-written']:8.3f}   (goal <= 1.02)")


# -- a 1,000-node graph ------------------------------------------------------------------------------------------
def big_graph(blocks: int) -> gb.Graph:
    """A flat residual conv net: 7 nodes per block, so 143 blocks give ~1,000 nodes."""
    g = gb.Graph("big")
    h = g.input("x", shape=(1, 16, 16, 16))
    for i in range(blocks):
        a = g.add("conv2d", h, out_channels=16, kernel_size=3, padding=1, name=f"b{i}_conv1")
        a = g.add("relu", g.add("batch_norm2d", a, name=f"b{i}_bn1"), name=f"b{i}_relu1")
        a = g.add("batch_norm2d", g.add("conv2d", a, out_channels=16, kernel_size=3, padding=1, name=f"b{i}_conv2"),
                  name=f"b{i}_bn2")
        h = g.add("relu", g.add("add", a, h, name=f"b{i}_add"), name=f"b{i}_relu2")
    g.output(h)
    return g


class BigNet(nn.Module):
    def __init__(self, blocks: int) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(
            nn.ModuleList([nn.Conv2d(16, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
                           nn.Conv2d(16, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU()])
            for _ in range(blocks))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for c1, b1, r1, c2, b2, r2 in self.blocks:
            x = r2(b2(c2(r1(b1(c1(x))))) + x)
        return x


def median_time(fn: Callable[[], object], repeats: int) -> float:
    return interleaved_medians({"f": fn}, repeats)["f"]


def bench_big_graph(repeats: int) -> None:
    blocks = 143
    doc = big_graph(blocks).to_dict()
    n_nodes = len(doc["nodes"])

    def validate_infer_compile() -> None:
        g = gb.Graph.from_dict(doc)
        g.infer()
        gb.compile(g)

    cold = median_time(lambda: (clear_inference_cache(), validate_infer_compile()), repeats)
    warm = median_time(validate_infer_compile, repeats)
    net = BigNet(blocks)
    baseline = median_time(lambda: torch.fx.symbolic_trace(net).recompile(), repeats)
    print(f"\n{n_nodes}-node graph, median of {repeats}:")
    print(f"  torch.fx.symbolic_trace + recompile (baseline)             {baseline * 1e3:8.1f} ms")
    print(f"  validate + infer + compile, cold inference cache           {cold * 1e3:8.1f} ms   (goal <= 500 ms)"
          f"   ratio {cold / baseline:.2f}")
    print(f"  validate + infer + compile, warm cache (same layer shapes) {warm * 1e3:8.1f} ms"
          f"   ratio {warm / baseline:.2f}")

    g = gb.Graph.from_dict(doc)
    g.infer()
    mid = g[f"b{blocks // 2}_conv1"]
    edits = {"same shape (padding_mode)": ("padding_mode", ["zeros", "reflect"]),
             "shape change that the next layer absorbs (out_channels)": ("out_channels", [16, 24])}
    for label, (param, values) in edits.items():
        samples = []
        for k in range(max(repeats * 4, 20)):
            clear_inference_cache()  # cold: every re-inferred node really runs on meta tensors
            t0 = time.perf_counter()
            mid.params[param] = values[k % 2]
            g.infer()
            samples.append(time.perf_counter() - t0)
        mid.params[param] = values[0]
        g.infer()
        print(f"  incremental re-infer after one edit, {label}: {statistics.median(samples) * 1e3:6.2f} ms "
              f"(goal <= 10 ms; {statistics.median(samples) / baseline:.3f} of the baseline)")
    full = median_time(lambda: (clear_inference_cache(), g._dirty.update(g._nodes.values()), g.infer()), repeats)
    print(f"  full cold re-inference of all {n_nodes} nodes (for reference):   {full * 1e3:6.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    args = parser.parse_args()
    bench_latency(repeats=10 if args.quick else 50)
    bench_big_graph(repeats=3 if args.quick else 7)


if __name__ == "__main__":
    main()
