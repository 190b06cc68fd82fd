"""Property tests: random DAGs built from the ops' declared examples either compile and run or raise GraphError;
files round-trip.

Also: any node name, however hostile, compiles to code that only uses identifiers we generated.
"""

from __future__ import annotations

import ast
import builtins
from typing import Any

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import graphbuilder as gb
from graphbuilder.ir.schema import OpDef, Param, TensorSpec
from graphbuilder.ops.examples import example_tensors

STRUCTURAL = {"input", "output"}  # every random graph has them


def _ops() -> list[OpDef]:
    return [d for d in gb.ops.all_ops() if d.name not in STRUCTURAL]


def _value(draw: st.DrawFn, p: Param) -> Any:
    if p.optional and draw(st.booleans()):
        return None
    lo = -3 if p.min is None else p.min
    hi = 6 if p.max is None else min(p.max, 6)
    ints = st.integers(int(max(lo, -3)), int(max(min(hi, 6), max(lo, -3))))
    kind = p.kind
    if kind in ("int_or_ints", "float_or_floats"):
        kind = draw(st.sampled_from([kind.split("_or_")[0], kind.split("_or_")[0] + "s"]))
    if kind == "int":
        return draw(ints)
    if kind == "float" or (kind == "number" and draw(st.booleans())):
        return draw(st.floats(float(max(lo, -2.0)), float(max(min(hi, 2.0), max(lo, -2.0))), allow_nan=False))
    if kind == "number":
        return draw(ints)
    if kind == "bool":
        return draw(st.booleans())
    if kind == "enum":
        return draw(st.sampled_from(p.choices))
    if kind == "str":
        return draw(st.text(max_size=5))
    n = p.length or draw(st.integers(p.min_length, 4))
    if kind == "ints":
        return tuple(draw(st.lists(ints, min_size=n, max_size=n)))
    return tuple(draw(st.lists(st.floats(0.5, 2.0), min_size=n, max_size=n)))


@st.composite
def random_graph(draw: st.DrawFn) -> tuple[gb.Graph, list[torch.Tensor]]:
    """A random DAG built from the ops' declared examples, and inputs for it.

    Each step takes an op and one of its examples. Ops on float tensors read any earlier float value or a
    fresh input, and get some params redrawn at random from their schema, so most steps probe errors.
    Ops with integer or bool inputs (ids, indices, masks) keep their example's inputs and params, whose
    values are only valid together."""
    g = gb.Graph("random")
    feeds: list[torch.Tensor] = []
    values: list[gb.Port] = []

    def fresh(spec: Any, tensor: torch.Tensor) -> gb.Port:
        feeds.append(tensor)
        return g.input(f"x{len(feeds)}", shape=spec.shape, dtype=spec.dtype)[0]

    for _ in range(draw(st.integers(1, 6))):
        opdef = draw(st.sampled_from(_ops()))
        ex = draw(st.sampled_from(opdef.examples))
        tensors = example_tensors(ex, seed=len(feeds))
        floats_only = all(s.dtype.startswith("float") for s in ex.inputs)
        inputs = []
        for spec, tensor in zip(ex.inputs, tensors, strict=True):
            reusable = [v for v in values if v.dtype == "float32"]
            if floats_only and reusable and draw(st.booleans()):
                inputs.append(draw(st.sampled_from(reusable)))
            else:
                inputs.append(fresh(spec, tensor))
        params = dict(ex.params)
        if floats_only:
            for p in opdef.params:
                if p.kind != "json" and draw(st.integers(0, 3)) == 0:
                    params[p.name] = _value(draw, p)
        try:
            node = g.add(opdef.name, *inputs, **params)
        except gb.GraphError:
            g.lint()  # a refused node leaves the graph as it was
            continue
        g.lint()
        values.extend(node[i] for i in range(node.num_outputs))
    if not values:
        values.append(fresh(TensorSpec((2, 3)), torch.randn(2, 3)))
    g.output(values[-1])
    if not g.inputs:  # a graph of learnable tensors and constants only
        g.output(fresh(TensorSpec((1,)), torch.zeros(1)))
    g.lint()
    return g, feeds


def _run(model: torch.nn.Module, feeds: list[torch.Tensor]) -> list[torch.Tensor]:
    with torch.no_grad():
        out = model(*feeds)
    return list(out) if isinstance(out, (tuple, list)) else [out]


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_graph())
def test_random_graphs_compile_and_run_or_raise_graph_error(case: tuple[gb.Graph, list[torch.Tensor]]) -> None:
    g, feeds = case
    try:
        model = gb.compile(g).eval()
    except gb.GraphError:
        return
    outs = _run(model, feeds)
    assert [tuple(o.shape) for o in outs] == [n.shape for n in g.outputs]
    assert [str(o.dtype).removeprefix("torch.") for o in outs] == [n.dtype for n in g.outputs]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_graph())
def test_save_load_compile_gives_same_structure_and_output(case: tuple[gb.Graph, list[torch.Tensor]]) -> None:
    g, feeds = case
    try:
        model = gb.compile(g).eval()
    except gb.GraphError:
        return
    g2 = gb.Graph.from_dict(g.to_dict()).lint()
    assert g2.to_dict() == g.to_dict()
    model2 = gb.compile(g2).eval()
    model2.load_state_dict(model.state_dict())
    for a, b in zip(_run(model2, feeds), _run(model, feeds), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0, equal_nan=True)


HOSTILE = ["__import__('os').system('touch pwned')", "a\nb = 1\nimport os", "'; drop", '"""', "class", "self",
           "torch", "forward", "名前", "1st layer", "x.y[0]", "\\", "None", "__class__", "F", "_", " ", "lambda: 0"]


@pytest.mark.parametrize("style", ["chain", "block"])
def test_hostile_names_compile_to_safe_code(style: str) -> None:
    g = gb.Graph("hostile; import os")
    value: gb.Node = g.input(HOSTILE[0], shape=(2, 4))
    for name in HOSTILE[1:]:
        value = g.add("linear", value, out_features=4, name=name)
    if style == "block":
        outer = gb.Graph("outer")
        value = outer.add(g.output(value).graph, outer.input("in", shape=(2, 4)), name="__import__('sys')")
        g = outer
    g.output(value, name="return 1")
    model = gb.compile(g)
    modules = [model] + [m for m in model.modules() if isinstance(m, torch.fx.GraphModule) and m is not model]
    for m in modules:
        tree = ast.parse(m.code)
        names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
        allowed_globals = {"torch", "self", "getattr"}
        for name in names:
            assert name.isidentifier() and name.isascii()
            assert name in allowed_globals or not hasattr(builtins, name), name
        assert not any(isinstance(n, (ast.Import, ast.ImportFrom)) for n in ast.walk(tree))
        for attr in (n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)):
            assert attr.isidentifier() and not attr.startswith("__"), attr
    out = model(torch.randn(2, 4))
    assert out.shape == (2, 4)
