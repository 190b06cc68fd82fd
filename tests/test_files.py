"""Graph files: round trips, atomic saves, the JSON Schema, and a corpus of hostile files."""

from __future__ import annotations

import json
import os
from pathlib import Path

import jsonschema
import pytest
import torch

import graphbuilder as gb
from graphbuilder.ir import serialize

BAD = Path(__file__).parent / "data" / "bad_graphs"
SCHEMA = json.loads((Path(serialize.__file__).parent / "graph.schema.json").read_text())


def sample() -> gb.Graph:
    block = gb.Graph("res")
    bx = block.input("x", shape=(1, 4, 8, 8))
    block.output(block.add("relu", block.add("add", block.add("conv2d", bx, out_channels=4, kernel_size=1), bx)))
    g = gb.Graph("sample")
    x = g.input("x", shape=(2, 4, 8, 8))
    s = g.add("split", x, split_size_or_sections=2, dim=1, name="halves")
    c = g.add("cat", s[1], s[0], dim=1)
    b = g.add(block, c, name="block 1")
    g["block 1"].meta["position"] = {"x": 10.5, "y": -3}
    g.output(g.add("mean", b, dim=(2, 3)))
    return g


def test_round_trip_same_structure_and_output(tmp_path: Path) -> None:
    g = sample()
    path = tmp_path / "sample.graph.json"
    g.save(path)
    g2 = gb.Graph.load(path)
    assert g2.to_dict() == g.to_dict()
    assert [n.name for n in g2] == [n.name for n in g]
    assert g2["block 1"].meta["position"] == {"x": 10.5, "y": -3}
    torch.manual_seed(0)
    m1 = gb.compile(g)
    m2 = gb.compile(g2)
    m2.load_state_dict(m1.state_dict())
    x = torch.randn(2, 4, 8, 8)
    assert torch.equal(m1(x), m2(x))


def test_file_is_stable_sorted_and_tagged(tmp_path: Path) -> None:
    g = sample()
    path = tmp_path / "a.graph.json"
    g.save(path)
    text = path.read_text()
    data = json.loads(text)
    assert data["format"] == "graphbuilder.graph" and data["version"] == 2
    assert text == json.dumps(data, indent=1, sort_keys=True, ensure_ascii=False) + "\n"
    g.save(path)
    assert path.read_text() == text  # no volatile fields: saving twice is byte-identical


def test_saved_files_match_the_shipped_schema(tmp_path: Path) -> None:
    jsonschema.validate(sample().to_dict(), SCHEMA)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**sample().to_dict(), "extra": 1}, SCHEMA)


def test_save_is_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "g.graph.json"
    sample().save(path)
    before = path.read_bytes()

    def crash(*args: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    g = sample()
    g["halves"].rename("renamed")
    with pytest.raises(OSError):
        g.save(path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.graph.json"]  # no temp file left behind


def test_saving_unsaveable_meta_fails_before_writing(tmp_path: Path) -> None:
    g = sample()
    g["x"].meta["callback"] = print
    with pytest.raises(gb.GraphError, match="cannot be saved"):
        g.save(tmp_path / "x.graph.json")
    assert not (tmp_path / "x.graph.json").exists()


@pytest.mark.parametrize("name", sorted(p.name for p in BAD.glob("*.json")))
def test_hostile_file_gives_graph_error_and_runs_nothing(name: str, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(gb.GraphError) as err:
        g = gb.Graph.load(BAD / name)
        gb.compile(g)
    assert str(err.value)
    assert not (tmp_path / "gb_code_ran").exists() and not (tmp_path / "gb_pickle_ran").exists()


@pytest.mark.parametrize("name, path", [
    ("wrong_type_param.json", "nodes[1].params.kernel_size"),
    ("unknown_op.json", "nodes[1].op"),
    ("cycle.json", "nodes"),
    ("dangling_input.json", "nodes[1].inputs[0]"),
    ("duplicate_names.json", "nodes[2].name"),
    ("shape_mismatch.json", "nodes[2]"),
    ("huge_size.json", "nodes[1].params.out_features"),
    ("unknown_field.json", "code"),
    ("lone_surrogate.json", "nodes[1].name"),
    ("rank_too_high.json", "nodes[0].params.shape"),
    ("float_beyond_float32.json", "nodes[1].params.negative_slope"),
    ("block_port_mismatch.json", "nodes[1].inputs"),
])
def test_errors_point_at_json_path(name: str, path: str) -> None:
    with pytest.raises(gb.GraphError) as err:
        gb.Graph.load(BAD / name)
    assert err.value.path == path


def test_unknown_op_suggests_and_cycle_names_nodes() -> None:
    with pytest.raises(gb.GraphError, match="did you mean 'conv2d'"):
        gb.Graph.load(BAD / "unknown_op.json")
    with pytest.raises(gb.GraphError) as err:
        gb.Graph.load(BAD / "cycle.json")
    assert set(err.value.nodes) == {"a", "b", "c"}


def test_huge_params_refused_before_allocation() -> None:
    g = gb.Graph.load(BAD / "huge_params.json")
    with pytest.raises(gb.GraphError, match="would allocate"):
        gb.compile(g)


def test_non_strict_load_keeps_broken_graph_for_editing() -> None:
    g = gb.Graph.load(BAD / "shape_mismatch.json", strict=False)
    assert "s" in g.errors()
    g["c"].params["out_channels"] = 3
    assert g.errors() == {}


# -- the graph file and its weights file are one pair --------------------------------------------------------------
def trained() -> gb.Graph:
    g = gb.Graph("net")
    x = g.input("x", shape=(2, 3))
    g.output(g.add("linear", x, out_features=4, name="fc"))
    gb.store_weights(g, gb.compile(g))
    return g


def pair(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_failed_save_keeps_both_old_files(tmp_path: Path) -> None:
    path = tmp_path / "net.graph.json"
    trained().save(path)
    before = pair(tmp_path)
    assert sorted(before) == ["net.graph.json", "net.safetensors"]
    g2 = trained()
    g2.weights = {}
    g2.meta["n"] = "\udc80"  # a lone surrogate: not Unicode text, cannot be encoded
    with pytest.raises(gb.GraphError) as err:
        g2.save(path)
    assert err.value.path == "meta.n"
    assert pair(tmp_path) == before


def test_weights_that_cannot_be_encoded_keep_both_old_files(tmp_path: Path) -> None:
    path = tmp_path / "net.graph.json"
    trained().save(path)
    before = pair(tmp_path)
    g2 = trained()
    g2["fc"].meta["note"] = "edited"
    g2.weights["fc"]["weight"] = [1.0, 2.0]  # not a tensor
    with pytest.raises(gb.GraphError, match="not a tensor"):
        g2.save(path)
    assert pair(tmp_path) == before


@pytest.mark.parametrize("fail_at", [1, 2])
def test_crash_while_replacing_restores_both_old_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                       fail_at: int) -> None:
    path = tmp_path / "net.graph.json"
    trained().save(path)
    before = pair(tmp_path)
    g2 = trained()
    g2["fc"].meta["note"] = "edited"
    g2.weights["fc"]["bias"] = torch.ones(4)
    real, calls = os.replace, []

    def flaky(src: str, dst: str) -> None:
        calls.append(dst)
        if len(calls) == fail_at:
            raise OSError("disk full")
        real(src, dst)

    monkeypatch.setattr(os, "replace", flaky)
    with pytest.raises(OSError):
        g2.save(path)
    monkeypatch.setattr(os, "replace", real)
    assert pair(tmp_path) == before  # no temp or backup file left either
    g3 = gb.Graph.load(path)
    assert "note" not in g3["fc"].meta and not torch.equal(g3.weights["fc"]["bias"], torch.ones(4))


def test_saving_without_weights_removes_the_old_weights_file(tmp_path: Path) -> None:
    path = tmp_path / "net.graph.json"
    trained().save(path)
    g2 = trained()
    g2.weights = {}
    g2.save(path)
    assert sorted(pair(tmp_path)) == ["net.graph.json"]
    assert gb.Graph.load(path).weights == {}


# -- one strict JSON rule for the writer and the reader ------------------------------------------------------------
def deep(levels: int) -> dict[str, object]:
    value: dict[str, object] = {}
    for _ in range(levels):
        value = {"a": value}
    return value


@pytest.mark.parametrize("where, value, path", [
    ("graph", float("nan"), "meta.v"),
    ("graph", float("inf"), "meta.v"),
    ("node", float("-inf"), "nodes[0].meta.v"),
    ("position", float("nan"), "nodes[0].meta.position.x"),
    ("node", 10**30, "nodes[0].meta.v"),
    ("node", "\ud800", "nodes[0].meta.v"),
    ("key", "\udfff", 'nodes[0].meta["\\udfff"]'),
])
def test_writer_refuses_what_the_reader_refuses(tmp_path: Path, where: str, value: object, path: str) -> None:
    g = sample()
    if where == "graph":
        g.meta["v"] = value
    elif where == "node":
        g["x"].meta["v"] = value
    elif where == "position":
        g["x"].meta["position"] = {"x": value, "y": 0}
    else:
        g["x"].meta[value] = 1
    with pytest.raises(gb.GraphError) as err:
        g.save(tmp_path / "g.graph.json")
    assert err.value.path == path
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("text, message", [
    ('{"v": NaN}', "not a JSON number"),
    ('{"v": -Infinity}', "not a JSON number"),
    ('{"v": 1e400}', "not a JSON number"),
    ('{"v": 123456789012345678901234567890}', "beyond 64 bits"),
    ('{"v": 1' + "0" * 5000 + "}", "64 bits"),
    ('{"v": "\\ud800"}', "lone surrogate"),
    ('{"\\udc80": 1}', "lone surrogate"),
    ('{"v": 1, "v": 2}', "appears twice"),
])
def test_reader_refuses_non_strict_json_in_meta(tmp_path: Path, text: str, message: str) -> None:
    doc = sample().to_dict()
    raw = json.dumps(doc).replace('"meta": {}', '"meta": ' + text, 1)
    path = tmp_path / "g.graph.json"
    path.write_text(raw)
    with pytest.raises(gb.GraphError, match=message):
        gb.Graph.load(path)


def test_lone_surrogate_in_a_file_with_weights_is_a_graph_error(tmp_path: Path) -> None:
    path = tmp_path / "net.graph.json"
    trained().save(path)
    path.write_text(path.read_text().replace('"name": "fc"', '"name": "fc\\ud800"').replace('"fc"', '"fc\\ud800"'))
    with pytest.raises(gb.GraphError, match="lone surrogate") as err:
        gb.Graph.load(path)
    assert err.value.path == "nodes[1].name"


@pytest.mark.parametrize("value, message", [
    ([float("nan")], "not a JSON number"),
    ({"a": "\ud800"}, "lone surrogate"),
    (deep(200), "nests deeper"),
    ({1.5: 0}, "not a string"),
])
def test_json_params_hold_strict_json(value: object, message: str) -> None:
    param = gb.Param("json", name="spec")
    with pytest.raises(gb.GraphError, match=message):
        param.validate(value)
    assert param.validate({"a": (1, 2), 3: None}) == {"a": [1, 2], "3": None}  # what a file would hold


@pytest.mark.parametrize("value", ["\ud800", "a\udfffb"])
def test_str_params_hold_unicode_text(value: str) -> None:
    with pytest.raises(gb.GraphError, match="lone surrogate"):
        gb.Param("str", name="label").validate(value)


@pytest.mark.parametrize("levels", [700, 900])
def test_deep_meta_is_a_graph_error_never_a_recursion_error(tmp_path: Path, levels: int) -> None:
    g = sample()
    g["x"].meta["deep"] = deep(levels)
    copied = g.copy()  # copying is iterative: any depth
    assert copied["x"].meta["deep"] == g["x"].meta["deep"]
    with pytest.raises(gb.GraphError, match="nests deeper") as err:
        g.save(tmp_path / "g.graph.json")
    assert err.value.path.startswith("nodes[0].meta.deep.a.a")
    assert list(tmp_path.iterdir()) == []
    doc = sample().to_dict()
    doc["nodes"][0]["meta"] = deep(levels)
    path = tmp_path / "deep.graph.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(gb.GraphError, match="nests deeper"):
        gb.Graph.load(path)


def test_graph_at_the_depth_limit_round_trips(tmp_path: Path) -> None:
    from graphbuilder.ir.limits import MAX_DOCUMENT_DEPTH

    g = sample()
    # doc, node list, node, meta, then deep(k) holds k + 1 objects: the deepest a top-level node's meta can be
    g["x"].meta["deep"] = deep(MAX_DOCUMENT_DEPTH - 5)
    g.save(tmp_path / "g.graph.json")
    assert gb.Graph.load(tmp_path / "g.graph.json")["x"].meta == g["x"].meta
    g["x"].meta["deep"] = deep(MAX_DOCUMENT_DEPTH - 4)
    with pytest.raises(gb.GraphError, match="nests deeper"):
        g.save(tmp_path / "g.graph.json")


# -- the weights file is data too ---------------------------------------------------------------------------------
def rewrite_weights(path: Path, *, nodes: str | None = None, tensors: dict[str, torch.Tensor] | None = None) -> None:
    """Rewrite the weights file beside `path` with other metadata or tensors, keeping the rest."""
    from safetensors.torch import load as st_load
    from safetensors.torch import save as st_save

    from graphbuilder.compile import weights_io

    wpath = Path(serialize.weights_path(str(path)))
    data = wpath.read_bytes()
    metadata = weights_io._metadata(data)
    if nodes is not None:
        metadata["nodes"] = nodes
    wpath.write_bytes(st_save({**st_load(data), **(tensors or {})}, metadata=metadata))


@pytest.mark.parametrize("nodes", ["not json", "[1, 2]", "[" * 100_000, '{"fc": 3}', '{"fc": NaN}'])
def test_weights_metadata_is_validated(tmp_path: Path, nodes: str) -> None:
    path = tmp_path / "net.graph.json"
    trained().save(path)
    rewrite_weights(path, nodes=nodes)
    path.write_text(path.read_text().replace('"meta": {}', '"meta": {"edited": true}', 1))  # hash differs: nodes read
    with pytest.raises(gb.GraphError, match="net.safetensors"):
        gb.Graph.load(path)


@pytest.mark.parametrize("bad", [
    torch.ones(4, 3, dtype=torch.int32),
    torch.ones(4, 3, dtype=torch.bool),
    torch.ones(4, 3, dtype=torch.complex64),
    torch.randn(4, 3).view(torch.int32),  # float bytes relabelled I32
])
def test_weights_of_a_dtype_a_layer_cannot_hold_are_refused_on_load(tmp_path: Path, bad: torch.Tensor) -> None:
    path = tmp_path / "net.graph.json"
    trained().save(path)
    rewrite_weights(path, tensors={"fc/weight": bad})
    with pytest.raises(gb.GraphError, match="dtype") as err:
        gb.Graph.load(path)
    assert "fc" in err.value.nodes and "weight" in str(err.value)


def test_weights_dtype_rule_at_compile_and_save(tmp_path: Path) -> None:
    g = trained()
    g.weights["fc"]["weight"] = g.weights["fc"]["weight"].double()  # another float dtype: converted, loudly
    with pytest.warns(UserWarning, match="float64 -> float32"):
        model = gb.compile(g)
    assert torch.equal(model.fc.weight, g.weights["fc"]["weight"].float())
    g.weights["fc"]["weight"] = torch.ones(4, 3, dtype=torch.int64)  # not floating: refused
    with pytest.raises(gb.GraphError, match="dtype int64"):
        gb.compile(g)
    g.weights["fc"]["weight"] = torch.ones(4, 3, dtype=torch.int32)
    with pytest.raises(gb.GraphError, match="dtype int32"):
        g.save(tmp_path / "net.graph.json")
    assert list(tmp_path.iterdir()) == []


def test_renamed_block_in_an_edited_file_loads_without_its_weights(tmp_path: Path) -> None:
    inner = gb.Graph("body")
    inner.output(inner.add("linear", inner.input("bi", shape=(2, 3)), out_features=3, name="lin"))
    g = gb.Graph("net")
    g.output(g.add("linear", g.add(inner, g.input("x", shape=(2, 3)), name="blk"), out_features=2, name="fc"))
    gb.store_weights(g, gb.compile(g))
    path = tmp_path / "net.graph.json"
    g.save(path)
    path.write_text(path.read_text().replace('"blk"', '"stage"'))  # a hand edit: the block renamed
    with pytest.warns(UserWarning, match="blk/lin"):
        g2 = gb.Graph.load(path)
    assert "lin" not in g2["stage"].block.weights
    assert torch.equal(g2.weights["fc"]["weight"], g.weights["fc"]["weight"])


# -- limits on every size that drives work ---------------------------------------------------------------------------
def test_node_limit_counts_every_block(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(serialize, "MAX_NODES", 40)
    body = gb.Graph("body")
    h = body.input("i", shape=(2, 3))
    for _ in range(14):
        h = body.add("relu", h)
    body.output(h)  # 16 nodes
    g = gb.Graph("many")
    h = g.input("x", shape=(2, 3))
    for k in range(3):
        h = g.add(body, h, name=f"b{k}")
    g.output(h)  # 5 + 3 * 16 nodes: each graph is under the limit, all together over it
    with pytest.raises(gb.GraphError, match="more than 40 nodes") as err:
        g.save(tmp_path / "g.graph.json")
    assert list(tmp_path.iterdir()) == []
    path = tmp_path / "g.graph.json"
    monkeypatch.setattr(serialize, "MAX_NODES", 100)
    g.save(path)
    monkeypatch.setattr(serialize, "MAX_NODES", 40)
    with pytest.raises(gb.GraphError, match="more than 40 nodes") as err:
        gb.Graph.load(path)
    assert err.value.path == "nodes[3].block.nodes"


def test_sizes_that_drive_work_are_bounded_before_the_work(tmp_path: Path) -> None:
    from graphbuilder.ir.limits import MAX_CANDIDATES, MAX_TUPLE

    g = gb.Graph("limits")
    with pytest.raises(gb.GraphError, match=f"at most {MAX_TUPLE}"):
        g.input("x", shape=(1,) * (MAX_TUPLE + 1))  # a rank-65 input: every op downstream would pay for it
    x = g.input("x", shape=(2, 8, 4, 4))
    with pytest.raises(gb.GraphError, match=f"at most {MAX_TUPLE}"):
        g.add("reshape", x, shape=(1,) * 1000)
    with pytest.raises(gb.GraphError, match=f"at most {MAX_CANDIDATES}"):
        g.add("mixed_op", x, candidates=["skip"] * (MAX_CANDIDATES + 1), out_channels=8)
    doc = g.to_dict()
    doc["nodes"][0]["params"]["shape"] = [1] * 100_000
    path = tmp_path / "rank.graph.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(gb.GraphError, match=f"at most {MAX_TUPLE}") as err:
        gb.Graph.load(path)
    assert err.value.path == "nodes[0].params.shape"


def test_neuron_graph_connections_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    from graphbuilder.ir import limits
    from graphbuilder.ops.neuron_graph import NeuronGraph

    topology = NeuronGraph.random(2, 1, 2, 4, seed=0).to_json()
    g = gb.Graph("ng")
    x = g.input("x", shape=(5, 2))
    g.add("neuron_graph", x, topology=topology)
    assert limits.MAX_CONNECTIONS <= 1_000_000  # 4M connections took minutes to check and build
    import graphbuilder.ops.neuron_graph as ng

    monkeypatch.setattr(ng, "MAX_CONNECTIONS", 3)
    with pytest.raises(gb.GraphError, match="at most 3"):
        g.add("neuron_graph", x, topology=topology)


def test_blocks_nest_at_most_the_file_limit() -> None:
    from graphbuilder.ir.limits import MAX_BLOCK_DEPTH

    inner = gb.Graph("level")
    inner.output(inner.add("relu", inner.input("i", shape=(2, 3))))
    for _ in range(MAX_BLOCK_DEPTH):  # each pass wraps the last graph in one more block
        outer = gb.Graph("level")
        outer.output(outer.add(inner, outer.input("i", shape=(2, 3))))
        inner = outer
    top = gb.Graph("top")
    with pytest.raises(gb.GraphError, match=f"deeper than {MAX_BLOCK_DEPTH}"):
        top.add(inner, top.input("i", shape=(2, 3)))
    assert gb.Graph.from_dict(outer.to_dict()).to_dict() == outer.to_dict()  # the deepest allowed round-trips


@pytest.mark.parametrize("value", [1e308, -1e39, 3.5e38])
def test_absurd_float_params_are_refused_at_validation(value: float) -> None:
    g = gb.Graph("f")
    x = g.input("x", shape=(2, 3))
    with pytest.raises(gb.GraphError, match="float32"):
        g.add("leaky_relu", x, negative_slope=value)
    g.add("leaky_relu", x, negative_slope=3e38)  # large but representable: torch runs it
