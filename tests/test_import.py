"""gb.from_module: every reference model imports with its weights and hierarchy, and compiles to the same
function; unmappable code raises GraphError naming the module path and type; edits drop only the weights
they invalidate. References: the hand-written modules in tests/models.py."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from models import MODELS, Bottleneck, resnet50
from torch import nn

import graphbuilder as gb
from graphbuilder.ir import registry


def _run(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(x)


@pytest.fixture(scope="module", params=sorted(MODELS))
def imported(request: pytest.FixtureRequest) -> tuple[str, nn.Module, torch.Tensor, gb.Graph]:
    module, x = MODELS[request.param]()
    return request.param, module, x, gb.from_module(module, (x,))


def test_compiled_import_equals_module(imported: tuple) -> None:
    name, module, x, graph = imported
    compiled = gb.compile(graph).eval()
    assert torch.equal(_run(compiled, x), _run(module, x)), name
    assert graph.meta["import"]["method"] == "fx"


def test_train_mode_matches_too() -> None:
    module, x = MODELS["resnet18"]()
    module.train()
    graph = gb.from_module(module, (x,))
    before = {k: v.clone() for k, v in module.state_dict().items()}
    compiled = gb.compile(graph).train()
    assert torch.equal(compiled(x), module(x))  # batch statistics in both
    # importing ran the module once but restored its buffers; the forward above changed them
    assert not torch.equal(before["bn1.running_mean"], module.state_dict()["bn1.running_mean"])


def test_import_does_not_change_the_module() -> None:
    module, x = MODELS["resnet18"]()
    module.train()
    before = {k: v.clone() for k, v in module.state_dict().items()}
    gb.from_module(module, (x,))
    after = module.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_resnet50_keeps_hierarchy_as_nested_blocks() -> None:
    module, x = MODELS["resnet50"]()
    graph = gb.from_module(module, (x,))
    top = [n.name for n in graph]
    assert top == ["x", "conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4", "avgpool",
                   "flatten", "fc", "output"]
    stages = [graph[f"layer{i}"].block for i in range(1, 5)]
    assert [len([n for n in s if n.op == "block"]) for s in stages] == [3, 4, 6, 3]
    first = stages[0]["0"].block
    assert first.name == "Bottleneck"
    ops = [n.op for n in first]
    assert ops.count("conv2d") == 3 and ops.count("batch_norm2d") == 3 and ops.count("add") == 1
    assert first["downsample"].op == "block" and [n.op for n in first["downsample"].block][1:3] == [
        "conv2d", "batch_norm2d"]
    # weights live in the graph that holds the node, keyed by node name
    w = first.weights["conv1"]["weight"]
    assert torch.equal(w, module.layer1[0].conv1.weight)
    assert set(first.weights["bn1"]) == {"weight", "bias", "running_mean", "running_var", "num_batches_tracked"}
    assert graph["fc"].params["out_features"] == 10 and torch.equal(graph.weights["fc"]["bias"], module.fc.bias)


def test_resnet18_view_with_size_becomes_flatten() -> None:
    module, x = MODELS["resnet18"]()
    graph = gb.from_module(module, (x,))
    assert graph["view"].op == "flatten" and graph["view"].params["start_dim"] == 1


def test_functions_methods_and_operators_map_to_ops() -> None:
    class Mixed(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(4, 4, 3, padding="same")

        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            a = F.relu(x) + torch.relu(x) + x.relu()
            b = torch.add(a, x)
            b += x
            c = torch.cat([b, self.conv(x)], dim=1)
            c = c.permute(0, 1, 3, 2).contiguous().transpose(2, 3)
            d = F.interpolate(c, scale_factor=2.0, mode="nearest")
            e = F.adaptive_avg_pool2d(d, 1).mean((2, 3), keepdim=True)
            h, w = torch.chunk(c, 2, dim=1)
            s = torch.sigmoid(h) * torch.tanh(w) - F.gelu(h, approximate="tanh")
            f = s.reshape(s.shape[0], 4, -1).softmax(-1)
            return f.flatten(1), e.flatten(1)

    torch.manual_seed(0)
    module, x = Mixed().eval(), torch.randn(2, 4, 6, 6)
    graph = gb.from_module(module, (x,))
    got, want = _run(gb.compile(graph).eval(), x), _run(module, x)
    # .contiguous() is dropped (values are the same; memory layout can change vectorised tanh/sigmoid by 1 ulp)
    assert all((a - b).abs().max() <= 1e-6 for a, b in zip(got, want, strict=True))
    ops = [n.op for n in graph]
    for op in ("relu", "add", "cat", "permute", "transpose", "chunk", "sigmoid", "tanh", "gelu", "mul", "sub",
               "reshape", "softmax", "flatten", "conv2d"):
        assert op in ops, op
    assert graph["reshape"].params["shape"] == (-1, 4, 36)  # batch kept dynamic
    assert graph["conv"].params["padding"] == 1


def test_multihead_attention_need_weights_gives_two_outputs() -> None:
    class Attn(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.attn = nn.MultiheadAttention(8, 2, batch_first=True)

        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            out, weights = self.attn(x, x, x)
            return out, weights

    torch.manual_seed(0)
    module, x = Attn().eval(), torch.randn(2, 5, 8)
    graph = gb.from_module(module, (x,))
    assert graph["attn"].params["need_weights"] is True
    got, want = _run(gb.compile(graph).eval(), x), _run(module, x)
    assert all(torch.equal(a, b) for a, b in zip(got, want, strict=True))


def test_registered_custom_module_imports_as_one_op() -> None:
    @gb.op("scaled_tanh_test_import")
    class ScaledTanh(nn.Module):
        def __init__(self, scale: float = 1.0) -> None:
            super().__init__()
            self.scale = scale
            self.gain = nn.Parameter(torch.ones(1))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.tanh(x) * self.scale * self.gain

    try:
        torch.manual_seed(0)
        module = nn.Sequential(nn.Linear(3, 4), ScaledTanh(2.5))
        with torch.no_grad():
            module[1].gain.fill_(0.7)
        x = torch.randn(2, 3)
        graph = gb.from_module(module, (x,))
        node = graph["1"]
        assert node.op == "scaled_tanh_test_import" and node.params["scale"] == 2.5
        assert torch.equal(_run(gb.compile(graph).eval(), x), _run(module, x))
    finally:
        registry.unregister("scaled_tanh_test_import")


class _NonZero(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.nonzero(x)


class _Masked(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[x > 0]


class _DataDependent(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.sum() > 0:
            return torch.relu(x)
        return torch.tanh(x)


class _UsesParameter(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(4, 4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight * 2)  # a weight computed at run time, not one of the module's tensors


@pytest.mark.parametrize(("inner", "kind", "words"), [
    (_NonZero(), "_NonZero", ["nonzero", "no op"]),
    (_Masked(), "_Masked", ["bool mask"]),
    (_DataDependent(), "_DataDependent", ["torch.export failed", "control flow"]),
    (_UsesParameter(), "_UsesParameter", ["module's own tensors"]),
])
def test_unmappable_code_names_module_path_and_type(inner: nn.Module, kind: str, words: list[str]) -> None:
    module = nn.Sequential(nn.Linear(4, 4), nn.Sequential(nn.ReLU(), inner))
    with pytest.raises(gb.GraphError) as info:
        gb.from_module(module, (torch.randn(2, 4),))
    message = str(info.value)
    assert "'1.1'" in message and kind in message and "@gb.op" in message
    for word in words:
        assert word in message


def test_shape_dependent_control_flow_falls_back_to_torch_export() -> None:
    class ShapeBranch(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3, padding=1)
            self.bn = nn.BatchNorm2d(4)
            self.fc = nn.Linear(4, 5)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = self.bn(self.conv(x))
            if y.shape[-1] > 4:  # symbolic tracing cannot branch on this; torch.export specialises
                y = F.max_pool2d(y, 2)
            y = torch.relu(y) + y
            return self.fc(torch.flatten(F.adaptive_avg_pool2d(y, 1), 1))

    torch.manual_seed(0)
    module, x = ShapeBranch().eval(), torch.randn(2, 3, 8, 8)
    graph = gb.from_module(module, (x,))
    assert graph.meta["import"]["method"] == "export"
    assert [n.op for n in graph] == ["input", "conv2d", "batch_norm2d", "max_pool2d", "relu", "add",
                                     "adaptive_avg_pool2d", "flatten", "linear", "output"]
    assert torch.equal(_run(gb.compile(graph).eval(), x), _run(module, x))


def test_export_fallback_keeps_blocks_and_attention() -> None:
    class Branchy(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.block = Bottleneck(16, 4)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.block(x) if x.shape[1] == 16 else x

    class Tokens(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.norm = nn.LayerNorm(8)
            self.attn = nn.MultiheadAttention(8, 2, batch_first=True)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            if x.shape[1] > 1:
                h = self.norm(x)
                x = x + self.attn(h, h, h, need_weights=False)[0]
            return x

    torch.manual_seed(0)
    for module, x in ((Branchy().eval(), torch.randn(2, 16, 4, 4)), (Tokens().eval(), torch.randn(2, 5, 8))):
        graph = gb.from_module(module, (x,))
        assert graph.meta["import"]["method"] == "export"
        got, want = _run(gb.compile(graph).eval(), x), _run(module, x)
        assert (got - want).abs().max() <= 1e-6
    assert graph["attn"].op == "multihead_attention"


def test_bad_arguments_raise_graph_error() -> None:
    with pytest.raises(gb.GraphError, match="torch.nn.Module"):
        gb.from_module("resnet", (torch.randn(1),))  # type: ignore[arg-type]
    with pytest.raises(gb.GraphError, match="example_inputs"):
        gb.from_module(nn.ReLU(), (3,))  # type: ignore[arg-type]


# -- weights drop rules on edits (Graph._set_params / _infer_node) --------------------------------------------------


def test_editing_params_drops_only_the_invalidated_weights() -> None:
    module, x = MODELS["resnet50"]()
    graph = gb.from_module(module, (x,))
    block = graph["layer1"].block["1"].block  # a bottleneck without downsample
    kept = {k: {p: t.clone() for p, t in v.items()} for k, v in block.weights.items()}
    # widening conv1 changes the shapes bn1 and conv2 see; bn1 and conv2 lose their weights, the rest keep them
    block["conv1"].params["out_channels"] = 12
    block.infer()
    assert set(block.weights) == set(kept) - {"conv1", "bn1", "conv2"}
    for name in block.weights:
        for p, t in block.weights[name].items():
            assert torch.equal(t, kept[name][p])
    # an edit that keeps output shapes (stride 1 -> padding unchanged, dilation 1 -> 1) drops only that node
    block2 = graph["layer1"].block["2"].block
    before = set(block2.weights)
    block2["bn2"].params["eps"] = 1e-3
    block2.infer()
    assert set(block2.weights) == before - {"bn2"}
    # every other block is untouched and the whole graph still compiles (dropped weights re-initialise)
    assert set(graph["layer2"].block["0"].block.weights) >= {"conv1", "bn1", "conv2", "bn2", "conv3", "bn3"}
    out = _run(gb.compile(graph).eval(), x)
    assert out.shape == (2, 10)


def test_unchanged_nodes_keep_trained_weights_through_compile() -> None:
    module = resnet50()
    x = torch.randn(1, 3, 32, 32)
    graph = gb.from_module(module.eval(), (x,))
    graph["fc"].params["out_features"] = 7
    compiled = gb.compile(graph)
    assert torch.equal(compiled.conv1.weight, module.conv1.weight)
    assert compiled.fc.weight.shape == (7, module.fc.in_features)
