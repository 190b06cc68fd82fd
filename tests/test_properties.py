"""Property tests: random DAGs from the registry either compile and run or raise GraphError; files round-trip.

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
from graphbuilder.ir.schema import OpDef, Param

SKIP_OPS = {"input", "output"}


def _ops() -> list[OpDef]:
    return [d for d in gb.ops.all_ops()
            if d.name not in SKIP_OPS and not any(p.kind == "json" for p in d.params)]


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
    if kind == "float":
        return draw(st.floats(float(max(lo, -2.0)), float(max(min(hi, 2.0), max(lo, -2.0))), allow_nan=False))
    if kind == "bool":
        return draw(st.booleans())
    if kind == "enum":
        return draw(st.sampled_from(p.choices))
    if kind == "str":
        return draw(st.text(max_size=5))
    n = p.length or draw(st.integers(1, 4))
    if kind == "ints":
        return tuple(draw(st.lists(ints, min_size=n, max_size=n)))
    return tuple(draw(st.lists(st.floats(0.5, 2.0), min_size=n, max_size=n)))


@st.composite
def random_graph(draw: st.DrawFn) -> gb.Graph:
    g = gb.Graph("random")
    rank = draw(st.integers(2, 4))
    shape = tuple(draw(st.lists(st.integers(1, 6), min_size=rank, max_size=rank)))
    values: list[gb.Node | gb.Port] = [g.input("x", shape=shape)]
    ops = _ops()
    for _ in range(draw(st.integers(1, 6))):
        opdef = draw(st.sampled_from(ops))
        params = {p.name: _value(draw, p) for p in opdef.params if p.required or draw(st.booleans())}
        arity = len(opdef.inputs) + (draw(st.integers(0, 2)) if opdef.variadic else 0)
        inputs = [draw(st.sampled_from(values)) for _ in range(arity)]
        try:
            node = g.add(opdef.name, *inputs, **params)
        except gb.GraphError:
            continue
        values.extend(node[i] for i in range(node.num_outputs))
    g.output(values[-1])
    return g


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_graph())
def test_random_graphs_compile_and_run_or_raise_graph_error(g: gb.Graph) -> None:
    try:
        model = gb.compile(g).eval()
    except gb.GraphError:
        return
    x = torch.randn(g["x"].shape)
    with torch.no_grad():
        out = model(x)
    assert tuple(out.shape) == g.outputs[0].shape


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_graph())
def test_save_load_compile_gives_same_structure_and_output(g: gb.Graph) -> None:
    try:
        model = gb.compile(g).eval()
    except gb.GraphError:
        return
    g2 = gb.Graph.from_dict(g.to_dict())
    assert g2.to_dict() == g.to_dict()
    model2 = gb.compile(g2).eval()
    model2.load_state_dict(model.state_dict())
    x = torch.randn(g["x"].shape)
    with torch.no_grad():
        torch.testing.assert_close(model2(x), model(x), rtol=0, atol=0, equal_nan=True)


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
