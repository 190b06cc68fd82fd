"""Learnable tensors and constants as nodes: `g.parameter`/`g.constant`, their values as weights (compiled
state_dict, graph file + safetensors, standalone Python source, ONNX), and the low-level tensor ops beside them
in the editor's palette."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import graphbuilder as gb
from graphbuilder.ops.lowlevel import LOW, format_index, parse_index


def _vit_head() -> tuple[gb.Graph, torch.Tensor, torch.Tensor]:
    """Patch tokens + class token + position embedding + layer scale: ViT's learnable tensors."""
    cls, pos = torch.randn(1, 1, 8), torch.randn(1, 5, 8)
    g = gb.Graph("tokens")
    x = g.input("x", shape=(2, 4, 8))
    token = g.add("expand", g.parameter("cls_token", shape=(1, 1, 8), value=cls), size=(2, -1, -1))
    seq = g.add("add", g.add("cat", token, x, dim=1), g.parameter("pos_embed", shape=(1, 5, 8), value=pos))
    gamma = g.parameter("gamma", shape=(8,), init="ones")
    mask = g.constant("mask", torch.tensor([True, False, True, True, False]))
    scaled = g.add("mul", seq, gamma)
    g.output(g.add("masked_fill", scaled, g.add("unsqueeze", g.add("logical_not", mask), dim=-1), value=0.0))
    return g, cls, pos


def _reference(x: torch.Tensor, cls: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
    seq = torch.cat([cls.expand(2, -1, -1), x], 1) + pos
    keep = torch.tensor([True, False, True, True, False])
    return seq.masked_fill(~keep[:, None], 0.0)


def test_parameters_and_constants_compile_to_state_dict_and_train() -> None:
    g, cls, pos = _vit_head()
    model = gb.compile(g)
    state = model.state_dict()
    assert torch.equal(state["cls_token.value"], cls) and torch.equal(state["pos_embed.value"], pos)
    assert state["mask.value"].dtype == torch.bool
    assert {n for n, _ in model.named_parameters()} == {"cls_token.value", "pos_embed.value", "gamma.value"}
    x = torch.randn(2, 4, 8)
    assert torch.equal(model(x), _reference(x, cls, pos))
    model(x).sum().backward()
    assert model.cls_token.value.grad is not None and model.gamma.value.grad is not None
    assert g["gamma"].num_params == 8 and g["mask"].num_params == 0


def test_values_round_trip_through_files_and_exports(tmp_path: Path) -> None:
    g, cls, pos = _vit_head()
    g.save(str(tmp_path / "t.graph.json"))
    loaded = gb.Graph.load(str(tmp_path / "t.graph.json"))
    x = torch.randn(2, 4, 8)
    assert torch.equal(gb.compile(loaded)(x), _reference(x, cls, pos))
    source = gb.export.to_python(loaded)
    out = gb.export.run_python_source(source, "Net", gb.compile(loaded).state_dict(), (x,))[0]
    assert torch.equal(out, _reference(x, cls, pos))
    onnx_out = gb.export.run_onnx(gb.export.runtime.onnx_bytes(loaded, dynamic_batch=False), (x,))[0]
    torch.testing.assert_close(onnx_out, _reference(x, cls, pos), rtol=0, atol=1e-6)


def test_value_of_the_wrong_shape_is_refused() -> None:
    g = gb.Graph("bad")
    with pytest.raises(gb.GraphError, match="does not match"):
        g.parameter("p", shape=(2, 3), value=torch.zeros(3, 2))
    assert "p" not in g


def test_constant_fills_without_a_value() -> None:
    g = gb.Graph("fills")
    x = g.input("x", shape=(2, 3))
    g.output(g.add("add", x, g.constant("ramp", shape=(3,), fill="arange")))
    t = torch.randn(2, 3)
    assert torch.equal(gb.compile(g)(t), t + torch.arange(3.0))


@pytest.mark.parametrize("text", ["[:, 0, 1:3, None, ..., ::2, -1]", "[]", "[1:]", "[:-1, ::3]"])
def test_index_text_round_trips(text: str) -> None:
    assert format_index(parse_index(text)) == text.replace("[1:]", "[1:]")


@pytest.mark.parametrize("text", ["[__import__('os')]", "[1.5]", "[a]", "[..., ...]", "[1:2:3:4]"])
def test_index_text_is_parsed_never_evaluated(text: str) -> None:
    g = gb.Graph("idx")
    with pytest.raises(gb.GraphError, match="index"):
        g.add("getitem", g.input("x", shape=(2, 3)), index=text)


def test_low_level_ops_have_their_own_palette_category() -> None:
    schema = {op["name"]: op for op in gb.ops.schema_json()}
    for name in ("getitem", "expand", "pad", "roll", "einsum", "gather", "cast", "sum", "where"):
        assert schema[name]["category"] == LOW
    assert schema["parameter"]["inputs"] == [] and schema["constant"]["inputs"] == []
    assert {p["name"] for p in schema["parameter"]["params"]} == {"shape", "init", "std"}


def test_interpolate_every_mode_against_torch() -> None:
    for mode, shape in [("nearest", (1, 2, 5, 5)), ("nearest-exact", (1, 2, 5, 5)), ("linear", (1, 2, 5)),
                        ("bilinear", (1, 2, 5, 5)), ("bicubic", (1, 2, 5, 5)), ("trilinear", (1, 2, 3, 4, 5)),
                        ("area", (1, 2, 6, 6))]:
        corners = {"align_corners": True} if mode in ("linear", "bilinear", "bicubic", "trilinear") else {}
        g = gb.Graph(mode)
        g.output(g.add("interpolate", g.input("x", shape=shape), scale_factor=0.5 if mode == "area" else 1.5,
                       mode=mode, **corners))
        x = torch.randn(shape)
        want = F.interpolate(x, scale_factor=0.5 if mode == "area" else 1.5, mode=mode, **corners)
        assert torch.equal(gb.compile(g)(x), want), mode
