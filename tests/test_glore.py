"""GloRe (arXiv:1811.12814): the `glore_unit` op and its parts, the editor block, and the `insert_glore` pass.

References checked against: the closed forms in graphbuilder/ops/glore.py (parameters, multiply-accumulates),
a reference forward pass written here with einsum straight from that description, torch's flop counter,
the unit's properties (identity at init, permutation equivariance, global receptive field), and an imported
ResNet-50-style model (tests/models.py) whose outputs must not change when units are inserted.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from models import resnet50
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

import graphbuilder as gb
from graphbuilder.compile import store_weights
from graphbuilder.ops.glore import glore_macs, glore_params
from graphbuilder.passes.glore import INSERTED_BY, glore_block, insert_glore, residual_stages


def unit_graph(shape: tuple[int, ...], **params) -> gb.Graph:
    g = gb.Graph("unit")
    g.output(g.add("glore_unit", g.input("x", shape=shape), name="glore", **params))
    return g


def randomise(module: nn.Module, seed: int = 0) -> nn.Module:
    """Random weights everywhere, BN included (nonzero scale, random running stats)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in module.state_dict().items():
            if t.dtype.is_floating_point:
                values = torch.randn(t.shape, generator=gen) * 0.3
                if name.endswith("running_var"):
                    values = values.abs() + 0.5
                t.copy_(values)
    return module


def reference_glore(x: torch.Tensor, w: dict[str, torch.Tensor], normalize: bool, eps: float = 1e-4) -> torch.Tensor:
    """GloRe from the paper (arXiv:1811.12814) with einsum, BN in eval mode; `w` holds the unit's weights."""
    b, c = x.shape[:2]
    xf = x.reshape(b, c, -1)  # (B, C, L)
    length = xf.shape[2]
    mat = lambda key: w[key].reshape(w[key].shape[0], -1)  # noqa: E731  (out, in) of a 1x1 conv
    xs = torch.einsum("sc,bcl->bsl", mat("conv_state.weight"), xf) + w["conv_state.bias"][:, None]  # reduce
    proj = torch.einsum("nc,bcl->bnl", mat("conv_proj.weight"), xf) + w["conv_proj.bias"][:, None]  # B
    v = torch.einsum("bsl,bnl->bsn", xs, proj)  # V = Xs B^T
    if normalize:
        v = v / length
    # node-wise conv N -> N with bias (acts on the node axis), plus V itself; ReLU; state-wise conv, no bias
    h = torch.einsum("mn,bsn->bsm", mat("gcn.conv1.weight"), v) + w["gcn.conv1.bias"] + v
    z = torch.einsum("ts,bsn->btn", mat("gcn.conv2.weight"), torch.relu(h))
    ys = torch.einsum("bsn,bnl->bsl", z, proj)  # reverse projection with the same B
    ext = torch.einsum("cs,bsl->bcl", mat("conv_extend.weight"), ys)
    scale = w["blocker.weight"] / torch.sqrt(w["blocker.running_var"] + eps)
    bn = (ext - w["blocker.running_mean"][:, None]) * scale[:, None] + w["blocker.bias"][:, None]
    return x + bn.reshape(x.shape)


# -- the op ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("channels", "m"), [(32, 16), (64, 16), (12, 3)])
def test_param_count_is_closed_form(channels, m):
    g = unit_graph((2, channels, 6, 6), num_state=2 * m, num_node=m)
    expected = 5 * m * channels + 5 * m * m + 4 * m + 2 * channels
    assert g["glore"].num_params == expected == glore_params(channels, 2 * m, m)
    assert sum(p.numel() for p in gb.compile(g).parameters()) == expected
    if (channels, m) == (32, 16):
        assert expected == 3968


def test_default_sizes_are_half_and_quarter_of_channels():
    model = gb.compile(unit_graph((1, 40, 5, 5)))
    assert model.glore.conv_state.out_channels == 20 and model.glore.conv_proj.out_channels == 10
    with pytest.raises(gb.GraphError, match="num_state"):
        unit_graph((1, 2, 5, 5))
    with pytest.raises(gb.GraphError, match=r"\(N, C, L\)"):
        unit_graph((4, 16))


@pytest.mark.parametrize("shape", [(2, 16, 7), (2, 32, 6, 5), (1, 16, 3, 4, 5)])
def test_flops_match_the_closed_form_and_torch_counter(shape):
    """Summary FLOPs = 2 x batch x MACs of the closed form: a multiply-add counts 2 (torch's convention).

    torch's counter measures exactly the same on the running module: it counts the six matrix products (1x1
    convs, bmm) and nothing for biases, ReLU, the GCN identity, BN and the residual add, as the closed form.
    """
    c, length, cs, n = shape[1], math.prod(shape[2:]), shape[1] // 2, shape[1] // 4
    macs = length * (c * cs + c * n + 2 * cs * n + cs * c) + n * cs * (n + cs)
    assert glore_macs(c, length, cs, n) == macs
    g = unit_graph(shape)
    reported = g.summary().total_flops
    assert reported == 2 * shape[0] * macs
    counter = FlopCounterMode(display=False)
    with counter:
        gb.compile(g).eval()(torch.randn(shape))
    assert counter.get_total_flops() == reported
    counted_ops = {str(op).split(".")[1] for op in counter.get_flop_counts()["Global"]}
    assert counted_ops <= {"convolution", "bmm", "mm"}, counted_ops  # no BN/elementwise terms counted
    # the expandable block reports the same total through its parts
    block = gb.Graph("b")
    block.output(block.add(glore_block(c, shape[2:], batch=shape[0]), block.input("x", shape=shape)))
    assert block.summary().total_flops == reported


@pytest.mark.parametrize("shape", [(3, 8, 11), (2, 16, 6, 6), (2, 8, 3, 4, 2)])
@pytest.mark.parametrize("train", [False, True])
def test_identity_at_init_exactly(shape, train):
    model = gb.compile(unit_graph(shape, normalize=True)).train(train)
    x = torch.randn(shape)
    assert torch.equal(model(x), x)
    block_graph = glore_block(shape[1], shape[2:], batch=shape[0])
    assert torch.equal(gb.compile(block_graph).train(train)(x), x)


@pytest.mark.parametrize("normalize", [False, True])
@pytest.mark.parametrize("shape", [(2, 8, 13), (2, 16, 5, 6), (1, 8, 2, 3, 4)])
def test_matches_reference_written_from_the_paper(shape, normalize):
    model = randomise(gb.compile(unit_graph(shape, normalize=normalize)), seed=1).eval()
    x = torch.randn(shape)
    weights = {k.removeprefix("glore."): v for k, v in model.state_dict().items()}
    expected = reference_glore(x, weights, normalize)
    assert torch.allclose(model(x), expected, atol=1e-4, rtol=1e-4)
    assert not torch.allclose(expected, x, atol=1e-3)  # the check is not vacuous: the unit changes x


def test_block_equals_op_on_the_same_weights():
    shape = (3, 16, 5, 4)
    op_model = randomise(gb.compile(unit_graph(shape)), seed=2)
    state = {k.removeprefix("glore."): v for k, v in op_model.state_dict().items()}
    block_graph = glore_block(16, (5, 4), batch=3, state_dict=state)
    assert [n.op for n in block_graph][1:-1] == ["conv2d", "conv2d", "glore_project", "gcn_interaction",
                                                 "glore_reproject", "conv2d", "batch_norm2d", "add"]
    block_model = gb.compile(block_graph)
    x = torch.randn(shape)
    for train in (False, True):
        assert torch.allclose(block_model.train(train)(x), op_model.train(train)(x), atol=1e-6)
    assert sum(n.num_params for n in block_graph) == glore_params(16, 8, 4)


def test_permuting_positions_permutes_the_output():
    shape = (2, 16, 6, 7)
    model = randomise(gb.compile(unit_graph(shape)), seed=3).eval()
    x = torch.randn(shape)
    perm = torch.randperm(42, generator=torch.Generator().manual_seed(0))
    permute = lambda t: t.flatten(2)[:, :, perm].reshape(shape)  # noqa: E731
    out = model(x)
    assert torch.allclose(model(permute(x)), permute(out), atol=1e-5)
    assert not torch.allclose(permute(out), out, atol=1e-3)  # the permutation is not trivial


def test_global_receptive_field_once_bn_weight_is_nonzero():
    shape = (1, 16, 9, 9)
    model = gb.compile(unit_graph(shape)).eval()
    x = torch.randn(shape, requires_grad=True)
    model(x)[0, :, 0, 0].sum().backward()
    assert torch.count_nonzero(x.grad[0, :, -1, -1]) == 0  # at init the unit is the identity: local
    with torch.no_grad():
        model.glore.blocker.weight.fill_(1.0)
    x.grad = None
    model(x)[0, :, 0, 0].sum().backward()
    assert torch.count_nonzero(x.grad[0, :, -1, -1]) > 0  # top-left output depends on bottom-right input


def test_gcn_interaction_op():
    g = gb.Graph("gcn")
    g.output(g.add("gcn_interaction", g.input("v", shape=(2, 12, 5)), name="gcn"))
    assert g["gcn"].num_params == 5 * 5 + 5 + 12 * 12
    model = randomise(gb.compile(g), seed=4)
    v = torch.randn(2, 12, 5)
    a, bias, w = model.gcn.conv1.weight[:, :, 0], model.gcn.conv1.bias, model.gcn.conv2.weight[:, :, 0]
    expected = torch.einsum("ts,bsn->btn", w, torch.relu(torch.einsum("mn,bsn->bsm", a, v) + bias + v))
    assert torch.allclose(model(v), expected, atol=1e-5)
    with pytest.raises(gb.GraphError, match=r"\(B, Cs, N\)"):
        g.add("gcn_interaction", g.input("bad", shape=(2, 12, 5, 5)))


def test_project_parts_say_what_fits():
    g = gb.Graph("parts")
    states, proj = g.input("s", shape=(2, 8, 4, 4)), g.input("p", shape=(2, 3, 4, 5))
    with pytest.raises(gb.GraphError, match="same batch and positions"):
        g.add("glore_project", states, proj)
    nodes = g.input("z", shape=(2, 8, 4))
    with pytest.raises(gb.GraphError, match="same B and N"):
        g.add("glore_reproject", nodes, proj)


# -- the pass --------------------------------------------------------------------------------------------------
def ir_resnet(layers=(2, 2, 6, 2), width=4, size=16) -> gb.Graph:
    """A flat ResNet built in the IR: bottleneck blocks joined with `add` + ReLU (no block nodes, no names)."""
    g = gb.Graph("ir_resnet")
    x = g.add("relu", g.add("batch_norm2d", g.add("conv2d", g.input("x", shape=(2, 3, size, size)), out_channels=width,
                                                    kernel_size=3, padding=1, bias=False)))
    cin = width
    for stage, blocks in enumerate(layers):
        planes = width * 2**stage
        for k in range(blocks):
            stride = 2 if stage > 0 and k == 0 else 1
            h = g.add("relu", g.add("batch_norm2d", g.add("conv2d", x, out_channels=planes, kernel_size=1)))
            h = g.add("relu", g.add("batch_norm2d", g.add("conv2d", h, out_channels=planes, kernel_size=3,
                                                          stride=stride, padding=1)))
            h = g.add("batch_norm2d", g.add("conv2d", h, out_channels=4 * planes, kernel_size=1))
            skip = x if stride == 1 and cin == 4 * planes else g.add(
                "batch_norm2d", g.add("conv2d", x, out_channels=4 * planes, kernel_size=1, stride=stride))
            x = g.add("relu", g.add("add", h, skip))
            cin = 4 * planes
    pooled = g.add("flatten", g.add("adaptive_avg_pool2d", x, output_size=1), name="flat")
    g.output(g.add("linear", pooled, out_features=5, name="fc"))
    return g


def pretend_trained(module: nn.Module, seed: int = 0) -> nn.Module:
    """'Pretrained' weights: the default conv init plus random BN scales, shifts and running stats."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, nn.BatchNorm2d):
                for t, base in ((m.weight, 1.0), (m.bias, 0.0), (m.running_mean, 0.0), (m.running_var, 1.0)):
                    t.copy_(base + 0.2 * torch.rand(t.shape, generator=gen))
    return module


def trained_weights(g: gb.Graph, seed: int = 0) -> gb.Graph:
    """`g` with such 'pretrained' weights stored in g.weights."""
    return store_weights(g, pretend_trained(gb.compile(g), seed))


def submodule(model: nn.Module, node: gb.Node) -> nn.Module:
    return getattr(model, model.meta["graphbuilder_names"][node.name])


def test_stages_found_from_structure_in_a_flat_ir_resnet():
    g = ir_resnet()
    stages = residual_stages(g)
    assert [(s.name, len(s.blocks), s.spatial) for s in stages] == [
        ("res2", 2, (16, 16)), ("res3", 2, (8, 8)), ("res4", 6, (4, 4)), ("res5", 2, (2, 2))]
    assert all(p.node.op == "relu" and p.node.inputs[0].node.op == "add" for s in stages for p in s.blocks)


def test_insert_into_flat_ir_resnet_keeps_outputs_and_weights():
    g = trained_weights(ir_resnet())
    before = g.to_dict()
    x = torch.randn(2, 3, 16, 16)
    expected = gb.compile(g).eval()(x)
    g2 = insert_glore(g, "res4x3", seed=0)
    assert g.to_dict() == before and "glore" not in str(g)  # input untouched
    inserted = [n for n in g2 if n.meta.get("inserted_by") == INSERTED_BY]
    res4 = residual_stages(g)[2].blocks
    assert [n.inputs[0].node.name for n in inserted] == [res4[k].node.name for k in (0, 2, 4)]
    assert all(n.op == "block" and n.shape == (2, 64, 4, 4) for n in inserted)
    assert all(n.meta["glore"]["num_state"] == 32 and n.meta["glore"]["num_node"] == 16 for n in inserted)
    for name, tensors in g.weights.items():
        assert g2.weights[name].keys() == tensors.keys()
        assert all(torch.equal(g2.weights[name][k], t) for k, t in tensors.items())
    model2 = gb.compile(g2).eval()
    assert torch.equal(model2(x), expected)
    with torch.no_grad():  # once the units learn (BN weight nonzero) the output changes: the units are wired in
        for n in inserted:
            submodule(model2, n).blocker.weight.fill_(1.0)
    assert not torch.allclose(model2(x), expected, atol=1e-4)


def test_insert_into_imported_resnet50_keeps_outputs():
    torch.manual_seed(0)
    module = pretend_trained(resnet50(width=8), seed=5).eval()
    x = torch.randn(2, 3, 32, 32)
    g = gb.from_module(module, (x,))
    stages = residual_stages(g)
    assert [(s.name, len(s.blocks)) for s in stages] == [("res2", 3), ("res3", 4), ("res4", 6), ("res5", 3)]
    with torch.no_grad():
        expected = module(x)
    for preset, count in (("res4x3", 3), ("res3x2+res4x3", 5)):
        g2 = insert_glore(g, preset)
        places = [n.meta["glore"]["place"] for b in g2 if b.op == "block" for n in b.block
                  if n.meta.get("inserted_by") == INSERTED_BY]
        assert len(places) == count
        assert places[-3:] == ["layer3/0", "layer3/2", "layer3/4"]
        extra = sum(glore_params(c, c // 2, c // 4) for c in [64] * (count - 3) + [128] * 3)
        assert sum(n.num_params for n in g2) == sum(n.num_params for n in g) + extra
        with torch.no_grad():
            assert torch.equal(gb.compile(g2).eval()(x), expected)
    assert sum(1 for _ in residual_stages(g2)[2].blocks) == 6  # inserted units are not counted as blocks


def test_explicit_places_op_form_and_nested_paths():
    g = trained_weights(ir_resnet(layers=(1, 1, 1, 1)))
    x = torch.randn(2, 3, 16, 16)
    expected = gb.compile(g).eval()(x)
    last_block = residual_stages(g)[-1].blocks[0].node.name
    g2 = insert_glore(g, [last_block], unit="op", num_state=8, num_node=4, normalize=True)
    (unit,) = [n for n in g2 if n.op == "glore_unit"]
    assert unit.params["num_state"] == 8 and unit.num_params == glore_params(unit.shape[1], 8, 4)
    assert torch.equal(gb.compile(g2).eval()(x), expected)
    outer = gb.Graph("outer")  # a place inside a block: 'block/inner'
    outer.output(outer.add(g, outer.input("img", shape=(2, 3, 16, 16)), name="net"))
    g3 = insert_glore(outer, [f"net/{last_block}"])
    assert sum(1 for n in g3["net"].block if n.meta.get("inserted_by")) == 1
    assert g3["net"].num_params > outer["net"].num_params


def test_bad_places_raise_graph_errors():
    g = ir_resnet(layers=(1, 1, 3, 1))
    with pytest.raises(gb.GraphError, match="no place 'nope'"):
        insert_glore(g, ["nope"])
    with pytest.raises(gb.GraphError, match="no spatial dims"):
        insert_glore(g, ["flat"])
    with pytest.raises(gb.GraphError, match="graph output"):
        insert_glore(g, [g.outputs[0].name])
    with pytest.raises(gb.GraphError, match="no stage res7"):
        insert_glore(g, "res7x1")
    with pytest.raises(gb.GraphError, match="at most 2 units"):
        insert_glore(g, "res4x3")
    with pytest.raises(gb.GraphError, match="preset"):
        insert_glore(g, [])
    assert "glore" not in str(g)


def test_editor_action_is_the_pass():
    g = trained_weights(ir_resnet(layers=(1, 1, 3, 1)))
    action = gb.passes.glore_action("res4x2", seed=1)
    assert action.__name__ == "insert_glore"
    assert action(g).to_dict() == insert_glore(g, "res4x2", seed=1).to_dict()


def test_save_load_round_trip_keeps_unit_weights(tmp_path):
    g = trained_weights(ir_resnet(layers=(1, 1, 3, 1)))
    g2 = insert_glore(g, "res4x2", seed=1)
    for n in g2:
        if n.meta.get("inserted_by"):  # a trained unit: BN scale no longer zero
            n.block.weights["blocker"]["weight"] = torch.full_like(n.block.weights["blocker"]["weight"], 0.5)
    path = str(tmp_path / "net.graph.json")
    g2.save(path)
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        out = gb.compile(g2).eval()(x)
        assert torch.equal(gb.compile(gb.Graph.load(path)).eval()(x), out)
        assert not torch.allclose(out, gb.compile(g).eval()(x), atol=1e-4)


def test_training_reaches_the_inserted_units():
    g2 = insert_glore(ir_resnet(layers=(1, 1, 3, 1)), "res4x1", seed=0)
    model = gb.compile(g2).train()
    loss = F.cross_entropy(model(torch.randn(4, 3, 16, 16)[:2]), torch.tensor([0, 1]))
    loss.backward()
    (unit,) = [n for n in g2 if n.meta.get("inserted_by")]
    bn = submodule(model, unit).blocker
    assert bn.weight.grad is not None and bn.weight.grad.abs().sum() > 0


def apply_highlights(graph: gb.Graph, inserted: list[str]) -> dict[str, str]:
    """What `GraphWidget.apply` should colour after inserting units: the units as added, the nodes that now
    read a unit as changed (rewired), by path."""
    expected = {i: "added" for i in inserted}
    for path in inserted:
        *blocks, name = path.split("/")
        scope = graph
        for block in blocks:
            scope = scope[block].block
        prefix = "/".join(blocks)
        for user in scope[name].users:
            name = f"{prefix}/{user.name}" if prefix else user.name
            expected.setdefault(name, "changed")
    return expected


def test_widget_apply_inserts_highlights_and_undoes_in_one_step():
    g = trained_weights(ir_resnet(layers=(1, 1, 3, 1)))
    widget = gb.GraphWidget(g)
    x = torch.randn(2, 3, 16, 16)
    before, expected = g.to_dict(), gb.compile(g).eval()(x)
    inserted = widget.apply(lambda graph: gb.passes.insert_glore(graph, "res4x2"))
    assert len(inserted) == 2 and all(widget.graph[i].meta["inserted_by"] == INSERTED_BY for i in inserted)
    assert widget.highlights == apply_highlights(widget.graph, inserted)
    assert torch.equal(gb.compile(widget.graph).eval()(x), expected)
    last = residual_stages(widget.graph)[-1].blocks[0].node.name  # the editor action on a selected node
    assert len(widget.apply(lambda graph: gb.passes.glore_editor_action(graph, [last]))) == 1
    assert widget.undo() and widget.undo()
    assert widget.graph.to_dict() == before


def test_relational_task_is_deterministic_balanced_and_labelled_right():
    from graphbuilder.datasets.relational import relational_shapes

    x, y = relational_shapes(200, relation="colour", seed=3)
    x2, y2 = relational_shapes(200, relation="colour", seed=3)
    assert torch.equal(x, x2) and torch.equal(y, y2) and not torch.equal(x, relational_shapes(200, seed=4)[0])
    assert 70 < int(y.sum()) < 130
    corner = 10  # shape_size 7 + jitter 3
    for img, label in zip(x, y, strict=True):
        regions = [img[:, :corner, :corner], img[:, -corner:, -corner:], img[:, :corner, -corner:],
                   img[:, -corner:, :corner]]
        colours = [r.flatten(1)[:, r.sum(0).flatten().argmax()] for r in regions if r.max() > 0.8]
        assert len(colours) == 2  # exactly two opposite corners hold a shape
        assert bool(torch.allclose(colours[0], colours[1])) == bool(label)


def test_op_and_block_export_to_every_format():
    """Standalone Python (modules inlined from ops/modules/glore.py), TorchScript, torch.export and ONNX."""
    for form in ("op", "block"):
        g = gb.Graph(f"glore_{form}")
        x = g.input("x", shape=(2, 16, 5, 5))
        unit = glore_block(16, (5, 5), batch=2, normalize=True) if form == "block" else "glore_unit"
        g.output(g.add(unit, x, name="unit", **({"normalize": True} if form == "op" else {})))
        model = gb.compile(g)
        with torch.no_grad():  # a nonzero BN scale: the unit is not the identity
            model.unit.blocker.weight.fill_(0.5)
        store_weights(g, model)
        report = gb.export.check(g, tolerance=1e-5)
        assert report.ok, report


def test_widget_apply_highlights_units_inside_imported_stage_blocks():
    from models import resnet50

    g = gb.from_module(resnet50().eval(), (torch.randn(1, 3, 32, 32),))
    widget = gb.GraphWidget(g)
    assert "Insert GloRe" in [a["name"] for a in widget.actions]
    inserted = widget.apply(lambda graph: gb.passes.insert_glore(graph, "res4x3"))
    assert len(inserted) == 3 and all("/" in i for i in inserted)  # inside the stage block, e.g. layer3/...
    assert widget.highlights == apply_highlights(widget.graph, inserted)
    assert widget.undo()
    assert widget.graph.to_dict() == g.to_dict()
