"""The catalog of ready-made networks: builders, the figures their papers print, and the editor's palette entries.

Every entry builds an ordinary `gb.Graph` at the paper's input size (1 x 3 x 224 x 224). `compare()` measures
its parameters and multiply-adds on meta tensors and sets them beside the paper's figures;
``python -m graphbuilder.models`` prints that table.

Cost convention. Papers in this field report multiply-adds (MAdds, "FLOPs" in the OctConv and GloRe papers
mean the same count). GraphBuilder's summary counts FLOPs with a multiply-add as 2 (torch's flop counter), so
MAdds = summary FLOPs / 2, converted here explicitly. Dynamic Shift-Max and Dynamic ReLU add the multiply-adds
of their piecewise fusions, which torch's counter does not see (docs/research_palette.md).

Where a paper figure comes from matters, so each carries its source; figures read off a plot are marked.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from graphbuilder.ir.errors import GraphError
from graphbuilder.ir.graph import Graph
from graphbuilder.models.micronet import micronet
from graphbuilder.models.mobilenet import dy_mobilenet_v2, mobilenet_v2
from graphbuilder.models.resnet import glore_resnet50, oct_resnet50, resnet50
from graphbuilder.models.vit import deepvit

CATEGORY = "networks"
TOLERANCE = 0.02  # the paper's figure within 2%

_MICRONET = "MicroNet (ICCV) table, arXiv:2108.05894; same in liyunsheng13/micronet README"
_OCT_PLOT = "read off arXiv:1904.05049 Fig. 4 (facebookresearch/OctConv figs/ablation.png), +-0.05 G"
_OCT_TABLE = "d-li14/octconv.pytorch README (the paper's table: 2.4 G)"
_GLORE = "arXiv:1811.12814 Table 1 (ImageNet, ResNet-50)"
_DY = "arXiv:1912.03458 Table 1 (DY-MobileNetV2, K = 4)"
_DEEPVIT = "arXiv:2103.11886 Table 3; zhoudaquan/dvit_repo README"


@dataclass(frozen=True)
class Network:
    """A ready-made network: its builder, what it is, and the paper's parameter and multiply-add figures."""

    name: str
    title: str
    build: Callable[[], Graph]
    doc: str
    params: float | None = None  # the paper's parameter count
    madds: float | None = None  # the paper's multiply-adds at its input size
    source: str = ""
    note: str = ""  # what differs from the paper, where something does


NETWORKS: dict[str, Network] = {n.name: n for n in (
    *(Network(f"micronet_{v.lower()}", f"MicroNet-{v}", lambda v=v: micronet(v),
              f"MicroNet-{v} (arXiv:2011.12289): micro-factorized convs and Dynamic Shift-Max, {m}M MAdds.",
              p, m * 1e6, _MICRONET)
      for v, p, m in (("M0", 1.0e6, 4), ("M1", 1.8e6, 6), ("M2", 2.4e6, 12), ("M3", 2.6e6, 21))),
    *(Network(f"oct_resnet50_a{str(a).replace('.', '_')}", f"OctResNet-50 (alpha {a})", lambda a=a: oct_resnet50(a),
              f"ResNet-50 with octave convolutions, alpha = {a} (arXiv:1904.05049).", 25.6e6, f * 1e9,
              _OCT_TABLE if a == 0.5 else _OCT_PLOT)
      for a, f in ((0.125, 3.6), (0.25, 3.1), (0.5, 2.367))),
    Network("glore_resnet50_res4x3", "GloRe ResNet-50 (Res4 x3)", lambda: glore_resnet50("res4x3"),
            "ResNet-50 with 3 GloRe units in Res4 (arXiv:1811.12814).", 30.5e6, 5.2e9, _GLORE,
            "built on torchvision's ResNet-50 (4.09 G); the paper's pre-activation baseline is 4.0 G"),
    Network("glore_resnet50_res3x2_res4x3", "GloRe ResNet-50 (Res3 x2 + Res4 x3)",
            lambda: glore_resnet50("res3x2+res4x3"),
            "ResNet-50 with 2 GloRe units in Res3 and 3 in Res4 (arXiv:1811.12814).", 31.4e6, 6.0e9, _GLORE,
            "built on torchvision's ResNet-50 (4.09 G); the paper's pre-activation baseline is 4.0 G"),
    *(Network(f"dy_mobilenet_v2_x{str(w).replace('.', '_')}", f"DY-MobileNetV2 x{w}",
              lambda w=w: dy_mobilenet_v2(w),
              f"MobileNetV2 x{w} with K = 4 dynamic convolutions (arXiv:1912.03458).", p, m * 1e6, _DY)
      for w, p, m in ((1.0, 11.1e6, 312.9), (0.75, 7.0e6, 217.5), (0.5, 4.0e6, 101.4))),
    *(Network(f"deepvit_{d}", f"DeepViT-{d}", lambda d=d: deepvit(d),
              f"DeepViT-{d} (arXiv:2103.11886): {d} transformer blocks with re-attention.", p, None, _DEEPVIT,
              "the paper prints no multiply-adds for DeepViT-16/24/32")
      for d, p in ((16, 24.5e6), (24, 36.3e6), (32, 48.1e6))),
    Network("resnet50", "ResNet-50", resnet50, "ResNet-50 v1.5 (arXiv:1512.03385), the baseline of the variants.",
            25.6e6, 3.8e9, "arXiv:1512.03385 Table 1",
            "v1.5 layout (stride in the 3x3 conv, as torchvision and the OctConv/GloRe code): 4.09 G; the paper's "
            "v1 strides in the first 1x1 conv"),
    Network("mobilenet_v2_x1_0", "MobileNetV2 x1.0", mobilenet_v2,
            "MobileNetV2 (arXiv:1801.04381), the static baseline of DY-MobileNetV2.", 3.4e6, 300e6,
            "arXiv:1801.04381 Table 4", "torchvision's layout has 3.50M parameters"),
)}


def build(name: str) -> Graph:
    """The graph of catalog network `name` (a new graph each call)."""
    try:
        return NETWORKS[name].build()
    except KeyError:
        raise GraphError(f"no network {name!r} in the catalog; choose one of {sorted(NETWORKS)}") from None


def palette() -> list[dict[str, Any]]:
    """Palette entries for the editor: one per network, an op-schema-shaped dict with ``"template": True``.

    Dropping one adds the network as a block node (expandable, editable); it has no params to set.
    """
    return [{"name": n.name, "category": CATEGORY, "doc": n.doc, "params": [], "inputs": ["image"],
             "variadic": False, "input_hint": "(N, 3, 224, 224) images", "source": "graphbuilder.models",
             "template": True} for n in NETWORKS.values()]


@dataclass(frozen=True)
class Comparison:
    """One network's measured parameters and multiply-adds beside the paper's (None where it prints none)."""

    network: Network
    params: int
    madds: int

    @property
    def params_ratio(self) -> float | None:
        """measured / paper parameters."""
        return self.params / self.network.params if self.network.params else None

    @property
    def madds_ratio(self) -> float | None:
        """measured / paper multiply-adds."""
        return self.madds / self.network.madds if self.network.madds else None

    @property
    def within_tolerance(self) -> bool:
        """Both figures the paper prints are matched within `TOLERANCE`."""
        return all(abs(r - 1) <= TOLERANCE for r in (self.params_ratio, self.madds_ratio) if r is not None)


def compare(name: str) -> Comparison:
    """Build network `name` and measure it: parameters, and multiply-adds = summary FLOPs / 2."""
    summary = build(name).summary()
    return Comparison(NETWORKS[name], summary.total_params, summary.total_flops // 2)


def table(names: list[str] | None = None) -> str:
    """The comparison table as text: measured beside paper, ratio, and the paper figure's source."""
    lines = [f"{'network':<38} {'params':>9} {'paper':>7} {'ratio':>6}  {'MAdds':>9} {'paper':>9} {'ratio':>6}  "
             "source / note"]
    for name in names or list(NETWORKS):
        c = compare(name)
        n = c.network
        lines.append(f"{n.title:<38} {c.params / 1e6:>8.3f}M {_m(n.params):>7} {_r(c.params_ratio):>6}  "
                     f"{_g(c.madds):>9} {_g(n.madds) if n.madds else '-':>9} {_r(c.madds_ratio):>6}  "
                     f"{n.source}{'; ' + n.note if n.note else ''}")
    return "\n".join(lines)


def _m(value: float | None) -> str:
    return f"{value / 1e6:.1f}M" if value else "-"


def _g(value: float) -> str:
    return f"{value / 1e9:.3f}G" if value >= 1e9 else f"{value / 1e6:.2f}M"


def _r(ratio: float | None) -> str:
    return f"{ratio:.3f}" if ratio is not None else "-"
