"""Networks from the papers (`gb.models`): parameters and multiply-adds beside each paper's figures, exact
counts against the authors' reference code, and the networks as editable graphs (blocks, the editor palette).

Figures. Each row below states what GraphBuilder measures (meta tensors, no forward pass) beside the figure
the paper prints. MAdds = summary FLOPs / 2: the summary counts a multiply-add as 2 FLOPs, the papers count
it as 1 (OctConv's and GloRe's "FLOPs" are multiply-adds too). "reference code" counts were measured by
building the authors' released models (liyunsheng13/micronet with its eval scripts' settings,
zhoudaquan/dvit_repo, d-li14/octconv.pytorch); with the same weights those produce the same outputs as the
graphs here (max |diff| 3e-8 for MicroNet, 0 in float64 for OctResNet-50 and DeepViT), checked outside
this repository because their code is not vendored.
"""

from __future__ import annotations

import pytest
import torch

import graphbuilder as gb
from graphbuilder.models import NETWORKS, compare
from graphbuilder.models.catalog import TOLERANCE
from graphbuilder.ops.glore import glore_params

M = 1e6
# network: (measured params, measured MAdds, paper params, paper MAdds or None, reason when outside 2%)
FIGURES: dict[str, tuple[int, int, float, float | None, str]] = {
    "micronet_m0": (1_019_590, 4_054_128, 1.0 * M, 4 * M, ""),
    "micronet_m1": (1_777_587, 6_120_032, 1.8 * M, 6 * M,
                    "MAdds +2.0005%: 32 multiply-adds over 2% of a figure the paper rounds to whole millions"),
    "micronet_m2": (2_393_876, 12_743_440, 2.4 * M, 12 * M,
                    "MAdds +6.2% (10.34M without the shift-max fusions, -13.8%); the paper's 12M is rounded"),
    "micronet_m3": (2_622_960, 20_807_520, 2.6 * M, 21 * M, ""),
    "oct_resnet50_a0_125": (25_557_032, 3_565_196_288, 25.6 * M, 3.6e9, ""),
    "oct_resnet50_a0_25": (25_557_032, 3_103_526_912, 25.6 * M, 3.1e9, ""),
    "oct_resnet50_a0_5": (25_557_032, 2_367_143_936, 25.6 * M, 2.367e9, ""),
    "glore_resnet50_res4x3": (30_481_448, 5_316_018_176, 30.5 * M, 5.2e9,
                              "GFLOPs +2.2%: torchvision's ResNet-50 costs 4.09 G, the paper's baseline 4.0 G; "
                              "the units add 1.23 G (paper: 1.2 G)"),
    "glore_resnet50_res3x2_res4x3": (31_303_720, 5_957_746_688, 31.4 * M, 6.0e9, ""),
    "dy_mobilenet_v2_x1_0": (11_149_736, 310_194_368, 11.1 * M, 312.9 * M, ""),
    "dy_mobilenet_v2_x0_75": (7_012_118, 214_463_272, 7.0 * M, 217.5 * M, ""),
    "dy_mobilenet_v2_x0_5": (3_946_334, 99_571_240, 4.0 * M, 101.4 * M, ""),
    "deepvit_16": (24_426_664, 5_272_300_800, 24.5 * M, None, ""),
    "deepvit_24": (36_261_448, 7_879_357_824, 36.3 * M, None, ""),
    "deepvit_32": (48_096_232, 10_486_414_848, 48.1 * M, None, ""),
}


def _case(name: str):  # noqa: ANN202  (a pytest param)
    reason = FIGURES[name][4]
    return pytest.param(name, marks=pytest.mark.xfail(reason=reason, strict=True)) if reason else name


@pytest.mark.parametrize("name", [_case(n) for n in FIGURES])
def test_params_and_madds_match_the_paper_within_two_percent(name: str) -> None:
    params, madds, paper_params, paper_madds, _ = FIGURES[name]
    network = NETWORKS[name]
    assert (network.params, network.madds) == (paper_params, paper_madds)  # the catalog states the same figures
    measured = compare(name)
    assert (measured.params, measured.madds) == (params, madds)
    assert abs(params / paper_params - 1) <= TOLERANCE
    if paper_madds is not None:
        assert abs(madds / paper_madds - 1) <= TOLERANCE
    assert measured.within_tolerance


def test_exact_counts_against_the_reference_code_and_closed_forms() -> None:
    # parameters of the authors' released models (see the module docstring), equal to FIGURES
    reference = {"micronet_m0": 1_019_590, "micronet_m1": 1_777_587, "micronet_m2": 2_393_876,
                 "micronet_m3": 2_622_960, "deepvit_16": 24_426_664, "oct_resnet50_a0_5": 25_557_032}
    assert all(FIGURES[k][0] == v for k, v in reference.items())
    resnet = 25_557_032  # torchvision's ResNet-50
    assert all(FIGURES[f"oct_resnet50_a{a}"][0] == resnet for a in ("0_125", "0_25", "0_5"))  # OctConv adds none
    res4, res3 = glore_params(1024, 512, 256), glore_params(512, 256, 128)  # C/2 states, C/4 nodes
    assert FIGURES["glore_resnet50_res4x3"][0] == resnet + 3 * res4
    assert FIGURES["glore_resnet50_res3x2_res4x3"][0] == resnet + 3 * res4 + 2 * res3
    per_block = 384 * 1152 + 1152 + 384 * 384 + 384 + 2 * 384 * 1152 + 1152 + 384 + 4 * 384 + 12 * 12 + 12 + 24
    outside = 3 * 256 * 384 + 384 + 197 * 384 + 384 + 2 * 384 + 384 * 1000 + 1000
    assert FIGURES["deepvit_16"][0] == 16 * per_block + outside


def test_octave_ratio_lowers_cost_as_the_paper_says() -> None:
    """Whole-network MAdds fall monotonically with alpha; at alpha = 0.5 res2-res4 convs cost 0.4375 of plain."""
    plain = gb.models.resnet50().summary().total_flops // 2
    costs = [FIGURES[f"oct_resnet50_a{a}"][1] for a in ("0_125", "0_25", "0_5")]
    assert plain == 4_089_184_256 and plain > costs[0] > costs[1] > costs[2]


def test_dynamic_mobilenet_adds_kernels_not_compute() -> None:
    """K = 4 kernels per dynamic conv: ~3.2x the parameters of MobileNetV2 for ~3% more multiply-adds."""
    static = gb.models.mobilenet_v2(1.0).summary()
    params, madds = FIGURES["dy_mobilenet_v2_x1_0"][:2]
    assert static.total_params == 3_504_872 and static.total_flops // 2 == 300_774_272
    assert 3.1 < params / static.total_params < 3.3 and 1.0 < madds / (static.total_flops // 2) < 1.04


# -- editable graphs -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("build", "shape"), [
    (lambda: gb.models.micronet("M0", num_classes=10, image_size=64, batch=2), (2, 10)),
    (lambda: gb.models.oct_resnet50(0.25, num_classes=10, image_size=64, batch=2), (2, 10)),
    (lambda: gb.models.dy_mobilenet_v2(0.5, num_classes=10, image_size=64, batch=2), (2, 10)),
    (lambda: gb.models.deepvit(2, num_classes=10, image_size=32, batch=2), (2, 10)),
])
def test_small_networks_compile_and_run(build, shape) -> None:
    g = build()
    model = gb.compile(g).eval()
    x = torch.randn(g.inputs[0].params["shape"])
    with torch.no_grad():
        y = model(x)
    assert y.shape == shape == g.outputs[0].shape and torch.isfinite(y).all()


def test_networks_are_blocks_a_user_expands_and_edits() -> None:
    g = gb.models.micronet("M1")
    blocks = [n for n in g if n.op == "block"]
    assert [n.name for n in blocks[:3]] == ["stem", "block1", "block2"]
    inner = g["block4"].block
    assert {n.op for n in inner} >= {"conv2d", "dynamic_shift_max", "micro_factorized_conv2d", "channel_shuffle"}
    before = g.summary().total_params
    inner["depthwise"].params["kernel_size"] = 3  # an edit inside a block re-infers it
    assert g["block4"].num_params < before and not g.infer()
    assert g.summary().total_params < before


def test_catalog_rejects_unknown_names() -> None:
    with pytest.raises(gb.GraphError, match="no network 'resnet51'"):
        gb.models.build("resnet51")
    with pytest.raises(gb.GraphError, match="MicroNet variant 'M9'"):
        gb.models.micronet("M9")


def test_palette_lists_the_networks_and_a_drop_adds_an_editable_block() -> None:
    from test_widget_model import Browser

    g = gb.Graph("canvas")
    g.input("image", shape=(1, 3, 224, 224))
    widget = gb.GraphWidget(g)
    entries = {e["name"]: e for e in widget.ops}
    assert set(NETWORKS) <= set(entries) and entries["micronet_m0"]["template"] is True
    assert entries["micronet_m0"]["category"] == "networks" and entries["dy_relu"]["category"] == "research"
    browser = Browser(widget)
    reply = browser.patch({"op": "add", "opName": "micronet_m0", "name": "net", "position": [200, 40]},
                          {"op": "connect", "source": ["image", 0], "target": ["net", 0]})
    assert reply["ok"] and reply["created"] == ["net"]
    node = widget.graph["net"]
    assert node.op == "block" and node.num_params == FIGURES["micronet_m0"][0] and node.shape == (1, 1000)
    assert browser.doc["nodes"]["net"]["isBlock"] and "net/block3" in browser.doc["nodes"]
    reply = browser.patch({"op": "meta", "node": "net", "meta": {"expanded": True}},
                          {"op": "params", "node": "net/block3/depthwise", "params": {"kernel_size": 3}})
    assert reply["ok"] and node.block["block3"].block["depthwise"].params["kernel_size"] == 3
    assert widget.graph["net"].num_params < FIGURES["micronet_m0"][0]
    assert widget.undo() and widget.graph["net"].num_params == FIGURES["micronet_m0"][0]


# -- full size (slow): a forward pass at the paper's input size -----------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("name", list(FIGURES))
def test_full_size_forward_pass(name: str) -> None:
    torch.set_num_threads(1)
    g = gb.models.build(name)
    model = gb.compile(g).eval()
    with torch.no_grad():
        y = model(torch.randn(1, 3, 224, 224))
    assert y.shape == (1, 1000) and torch.isfinite(y).all()
