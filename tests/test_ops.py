"""Every registered op, driven from its declared examples: the compiled one-node graph equals the example's
hand-written torch reference (or, for ops whose references live in their own tests, the op's own eager call).
An op without examples fails here; the export and property tests read the same examples."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import graphbuilder as gb
from graphbuilder.ir.schema import Example, OpDef
from graphbuilder.ops.examples import example_graph, example_tensors, expected_outputs

CASES = [(d.name, i) for d in gb.ops.all_ops() for i in range(len(d.examples))]


def test_every_op_declares_examples() -> None:
    missing = [d.name for d in gb.ops.all_ops() if not d.examples]
    assert not missing, f"ops without examples (declare examples=[example(...)]): {missing}"


def test_unknown_declaration_keywords_raise() -> None:
    with pytest.raises(TypeError, match="exampels"):
        gb.ops.declare("never_registered", "custom", "doc", function=torch.neg, exampels=[])
    assert "never_registered" not in gb.ops.names()


@pytest.mark.parametrize(("op", "index"), CASES, ids=[f"{op}-{i}" for op, i in CASES])
def test_example_matches_reference(op: str, index: int) -> None:
    opdef = gb.ops.get(op)
    ex = opdef.examples[index]
    torch.manual_seed(0)
    graph, node = example_graph(opdef, ex)
    model = gb.compile(graph).eval()
    xs = example_tensors(ex)
    feed = list(xs)
    if op == "input":  # an input passes its tensor through
        feed = xs = example_tensors(Example((node.outputs[0],)))
    elif not ex.inputs:  # ops without inputs get a pass-through input (see example_graph)
        feed = [torch.zeros(1)]
    ident = model.meta["graphbuilder_modules"].get(node.name)
    module = getattr(model, ident) if ident else None
    with torch.no_grad():
        got = model(*feed)
        got = list(got) if isinstance(got, (tuple, list)) else [got]
        expected = xs if op == "input" else expected_outputs(opdef, ex, node, module, xs)
    got = got[:len(expected)]
    assert [tuple(t.shape) for t in got] == [tuple(t.shape) for t in expected] == [
        s.shape for s in node.outputs][:len(expected)]
    for a, b in zip(got, expected, strict=True):
        assert a.dtype == b.dtype, (a.dtype, b.dtype)
        torch.testing.assert_close(a, b, rtol=0, atol=ex.atol, equal_nan=True)


def _torch_side(opdef: OpDef) -> str:
    side = opdef.module or opdef.function
    return getattr(side, "__module__", "") or ""


def test_ops_made_of_torch_layers_and_functions_have_references() -> None:
    """Ops built from GraphBuilder's own modules (search spaces, GloRe) are checked against references in
    their own test files; every op that is a torch layer or function has one among its examples."""
    core = [d for d in gb.ops.all_ops() if _torch_side(d).startswith("torch")]
    assert len(core) > 40
    without = [d.name for d in core if not any(ex.ref is not None for ex in d.examples)]
    assert not without, f"core ops whose examples have no torch reference: {without}"


def test_split_multi_output() -> None:
    g = gb.Graph("split")
    x = g.input("x", shape=(2, 7, 3))
    s = g.add("split", x, split_size_or_sections=(2, 5), dim=1)
    assert s.num_outputs == 2 and s[1].shape == (2, 5, 3)
    g.output(s[1], s[0])
    t = torch.randn(2, 7, 3)
    a, b = gb.compile(g)(t)
    assert torch.equal(a, t[:, 2:]) and torch.equal(b, t[:, :2])


def test_multihead_attention_matches_module() -> None:
    g = gb.Graph("mha")
    q, kv = g.input("q", shape=(2, 5, 8)), g.input("kv", shape=(2, 6, 8))
    node = g.add("multihead_attention", q, kv, kv, num_heads=2, need_weights=True)
    g.output(node[0], node[1])
    model = gb.compile(g).eval()
    ref = nn.MultiheadAttention(8, 2, batch_first=True)
    ref.load_state_dict(model.multihead_attention.state_dict())
    ref.eval()
    a, b = torch.randn(2, 5, 8), torch.randn(2, 6, 8)
    out, weights = model(a, b)
    ref_out, ref_weights = ref(a, b, b, need_weights=True)
    assert torch.equal(out, ref_out) and torch.equal(weights, ref_weights)


def test_every_op_declares_doc_category_and_param_docs() -> None:
    for opdef in gb.ops.all_ops():
        assert opdef.doc and opdef.category, opdef.name
        for p in opdef.params:
            assert p.name, opdef.name
        assert opdef.to_json()["name"] == opdef.name
