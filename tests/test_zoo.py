"""Real models in: `transformers` models from small configs (a few here, the rest `slow`) and `timm`
architectures across families (`make zoo`, which runs this file in its own venv with torch 2.14.1 and
torchvision). Each model passes every stage of tests/zoo.py: import, compiled output equal to the original,
save/load with weights, `to_python` without GraphBuilder, ONNX in onnxruntime (1e-4), TorchScript and
torch.export where the original supports them, and train mode for models with batch norm."""

from __future__ import annotations

import importlib.util
from typing import Any

import pytest
import torch
import zoo
from zoo_models import DEFAULT_TRANSFORMERS, TIMM, transformers_cases

import graphbuilder as gb

HAS_TIMM = importlib.util.find_spec("timm") is not None
TIMM_NAMES = [name for models in TIMM.values() for name, _, _ in models]


def _check(case: zoo.Case) -> None:
    result = zoo.run_case(case)
    failures = {k: v for k, v in result.stages.items() if v not in ("pass", "n/a")}
    assert result.ok, f"{case.name}: {failures}"


@pytest.mark.parametrize("name", [pytest.param(c.name, marks=() if c.name in DEFAULT_TRANSFORMERS else pytest.mark.slow)
                                  for c in transformers_cases()])
def test_transformers_model_through_every_stage(name: str) -> None:
    torch.set_num_threads(1)
    _check(next(c for c in transformers_cases() if c.name == name))


@pytest.mark.slow
@pytest.mark.zoo
@pytest.mark.skipif(not HAS_TIMM, reason="timm runs in the zoo venv: make zoo")
@pytest.mark.parametrize("name", TIMM_NAMES)
def test_timm_model_through_every_stage(name: str) -> None:
    from zoo_models import timm_cases

    torch.set_num_threads(1)
    _check(next(c for c in timm_cases() if c.name == name))


def test_keyword_none_and_named_outputs() -> None:
    """Keyword inputs, a None input left at its default, and dict outputs become named graph inputs/outputs."""
    class Net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.proj = torch.nn.Linear(4, 3)

        def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None, bias: torch.Tensor | None = None
                    ) -> dict[str, torch.Tensor]:
            h = self.proj(x)
            if mask is not None:
                h = h.masked_fill(mask, 0.0)
            return {"hidden": h, "pooled": h.mean(1)}

    net, x, mask = Net(), torch.randn(2, 5, 4), torch.rand(2, 5, 3) > 0.5
    g = gb.from_module(net, (x,), example_kwargs={"mask": mask, "bias": None})
    assert [n.name for n in g.inputs] == ["x", "mask"] and [n.name for n in g.outputs] == ["hidden", "pooled"]
    got, want = gb.compile(g)(x, mask), net(x, mask=mask)
    assert torch.equal(got[0], want["hidden"]) and torch.equal(got[1], want["pooled"])


def test_functional_calls_on_own_parameters_become_layer_ops() -> None:
    """A torch layer subclass whose forward calls the functional form on its own tensors (timm's BatchNormAct2d,
    LayerNorm2d) imports as that layer's op carrying those tensors, plus its activation as its own node."""
    class BatchNormAct(torch.nn.BatchNorm2d):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = torch.nn.functional.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                                               self.training, self.momentum, self.eps)
            return torch.relu(x)

    class LayerNorm2d(torch.nn.LayerNorm):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = x.permute(0, 2, 3, 1)
            x = torch.nn.functional.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
            return x.permute(0, 3, 1, 2)

    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), BatchNormAct(4), LayerNorm2d(4)).eval()
    net[1].running_mean.uniform_(-1, 1)
    x = torch.randn(2, 3, 8, 8)
    g = gb.from_module(net, (x,))
    ops = [n.op for n in g["1"].block] + [n.op for n in g["2"].block]
    assert "batch_norm2d" in ops and "relu" in ops and "layer_norm" in ops
    assert torch.equal(g["1"].block.weights["batch_norm"]["running_mean"], net[1].running_mean)
    assert torch.equal(gb.compile(g).eval()(x), net(x))


def test_module_tensors_become_shared_parameter_and_constant_nodes() -> None:
    class Tokens(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.cls_token = torch.nn.Parameter(torch.randn(1, 1, 4))
            self.register_buffer("index", torch.tensor([2, 0, 1]))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            tokens = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], 1)
            return tokens[:, self.index] * 0.5 + self.cls_token

    net, x = Tokens(), torch.randn(2, 2, 4)
    g = gb.from_module(net, (x,))
    params = [n for n in g if n.op == "parameter"]
    assert len(params) == 1 and len(params[0].users) == 2  # one node, read twice
    assert [n.op for n in g if n.op == "constant"] == ["constant"]
    assert torch.equal(gb.compile(g)(x), net(x))


def test_data_dependent_control_flow_is_a_graph_error_naming_the_module() -> None:
    class Branchy(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x * 2 if x.sum() > 0 else x - 1

    with pytest.raises(gb.GraphError, match="Branchy"):
        gb.from_module(torch.nn.Sequential(Branchy()), (torch.randn(2, 3),))


def test_a_module_called_twice_shares_one_set_of_weights(tmp_path: Any) -> None:
    """Weight sharing survives import, the file, the compiled state_dict, to_python and ONNX."""
    class Twice(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = torch.nn.Linear(4, 4)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.fc(torch.relu(self.fc(x)))

    net, x = Twice(), torch.randn(2, 4)
    g = gb.from_module(net, (x,))
    assert g.shared == {"fc_1": "fc"} and list(g.weights) == ["fc"]
    compiled = gb.compile(g)
    assert sorted(compiled.state_dict()) == ["fc.bias", "fc.weight"]
    assert torch.equal(compiled(x), net(x))
    g.save(str(tmp_path / "t.graph.json"))
    loaded = gb.Graph.load(str(tmp_path / "t.graph.json"))
    assert loaded.shared == {"fc_1": "fc"} and torch.equal(gb.compile(loaded)(x), net(x))
    source = gb.export.to_python(loaded)
    assert torch.equal(zoo.run_without_graphbuilder({"net": (source, compiled.state_dict(), [x])})["net"][0], net(x))
    onnx_out = gb.export.run_onnx(gb.export.runtime.onnx_bytes(loaded, dynamic_batch=True), (x,))[0]
    torch.testing.assert_close(onnx_out, net(x), rtol=0, atol=1e-6)
    gb.compile(loaded).fc.weight.data.zero_()  # one tensor: training one use trains both
    loaded["fc"].update(out_features=5)
    with pytest.raises(gb.GraphError, match="shares the weights"):
        loaded.check()
