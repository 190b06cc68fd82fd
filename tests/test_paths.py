"""Node paths (`graphbuilder.ir.paths`): the one encoding for editor ids, tied weights, weights file keys and
labels; files written with the old percent-escaped paths still load."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

import graphbuilder as gb
from graphbuilder.compile import weights_io
from graphbuilder.ir import paths, serialize
from graphbuilder.ir.graph import Node
from graphbuilder.passes.glore import _find

# Names the IR accepts: any non-empty text; the escape characters and the old escape character are favoured.
NAMES = st.text(st.sampled_from("/\\%2F5a") | st.characters(), min_size=1, max_size=8)


@given(st.lists(NAMES, min_size=1, max_size=6))
def test_split_inverts_join_all(names: list[str]) -> None:
    path = paths.join_all(names)
    assert paths.split(path) == names
    built: str | None = None
    for name in names:
        built = paths.join(built, name)
    assert built == path
    assert paths.split(paths.escape(names[0])) == names[:1]


def test_the_encoding() -> None:
    assert paths.join_all(["net", "stage\\2", "conv/1"]) == "net/stage\\\\2/conv\\/1"
    assert paths.split("a\\/b/c") == ["a/b", "c"]
    assert paths.join(None, "a/b") == "a\\/b" and paths.join("x", "%") == "x/%"


def nested() -> gb.Graph:
    """Three block levels, with names holding ``/``, ``\\`` and ``%``, and more than one node per level."""
    deepest = gb.Graph("deepest")
    deepest.output(deepest.add("relu", deepest.input("d", shape=(2, 3)), name="x%/y"))
    middle = gb.Graph("middle")
    h = middle.input("m", shape=(2, 3))
    middle.output(middle.add(deepest, middle.add("relu", h, name="r"), name="in\\ner"))
    g = gb.Graph("top")
    x = g.input("x", shape=(2, 3))
    b = g.add(middle, x, name="outer/1")
    g.output(g.add("relu", b, name="after"))
    return g


def test_resolve_through_nested_blocks() -> None:
    g = nested()
    node = paths.resolve(g, paths.join_all(["outer/1", "in\\ner", "x%/y"]))
    assert node is g["outer/1"].block["in\\ner"].block["x%/y"]
    assert paths.resolve(g, "outer\\/1/in\\\\ner/x%\\/y") is node
    assert paths.resolve_graph(g, "outer\\/1") is g["outer/1"].block
    assert paths.resolve_graph(g, None) is g


@pytest.mark.parametrize(("path", "message"), [
    ("outer/1", "no node 'outer/1'"),  # the unescaped / separates: there is no node "outer"
    ("outer\\/1/gone", "no node 'outer\\\\\\\\/1/gone'"),
    ("after/x", "node 'after' in 'after/x' is not a block"),
])
def test_resolve_errors_name_the_path(path: str, message: str) -> None:
    with pytest.raises(gb.GraphError, match=message) as err:
        paths.resolve(nested(), path)
    assert tuple(err.value.nodes) == (path,)
    with pytest.raises(gb.GraphError, match="is not a block"):
        paths.resolve_graph(nested(), "after")


def _recursive_walk(graph: gb.Graph, parent: str | None = None) -> Iterator[tuple[str, str | None, Node]]:
    """The editor's walk as it was written before `paths.walk`: recursive, each node then its block."""
    for node in graph._nodes.values():
        name = node.name.replace("\\", "\\\\").replace("/", "\\/")
        node_id = name if parent is None else f"{parent}/{name}"
        yield node_id, parent, node
        if node.block is not None:
            yield from _recursive_walk(node.block, node_id)


def test_walk_order_is_the_recursive_order() -> None:
    g = nested()
    got = [(i, p, id(n)) for i, p, n in paths.walk(g)]
    assert got == [(i, p, id(n)) for i, p, n in _recursive_walk(g)]
    assert [i for i, _, _ in got] == ["x", "outer\\/1", "outer\\/1/m", "outer\\/1/r", "outer\\/1/in\\\\ner",
                                      "outer\\/1/in\\\\ner/d", "outer\\/1/in\\\\ner/x%\\/y",
                                      "outer\\/1/in\\\\ner/output", "outer\\/1/output", "after", "output"]
    assert [i for i, _, _ in paths.walk(g["outer/1"].block, "outer\\/1")] == [i for i, _, _ in got[2:9]]


def test_glore_finds_a_name_holding_a_slash_by_its_escaped_path() -> None:
    body = gb.Graph("body")
    body.output(body.add("relu", body.input("i", shape=(2, 8, 6, 6)), name="a/b"))
    g = gb.Graph("net")
    g.output(g.add(body, g.input("x", shape=(2, 8, 6, 6)), name="stage"))
    place = _find(g, "stage/a\\/b")
    assert place.node is g["stage"].block["a/b"] and place.path == "stage/a\\/b"
    assert place.chain == (g["stage"],)
    with pytest.raises(gb.GraphError, match="has no place 'stage/a/b'; did you mean"):
        _find(g, "stage/a/b")


# -- tied weights and weights file keys -----------------------------------------------------------------------
OUTER, BLOCK, INNER = "a/b%", "blk%2F", "fc\\1/"  # what each old and new escape rule must get right


def hostile() -> gb.Graph:
    """A linear layer whose weight is tied to that of a linear layer inside a block, all names hostile."""
    body = gb.Graph("body")
    body.output(body.add("linear", body.input("i", shape=(2, 4)), out_features=4, name=INNER))
    g = gb.Graph("net")
    outer = g.add("linear", g.input("x", shape=(2, 4)), out_features=4, name=OUTER)
    g.output(g.add(body, outer, name=BLOCK))
    g.tie_weights(paths.join_all([BLOCK, INNER, "weight"]), paths.join_all([OUTER, "weight"]))
    gb.store_weights(g, gb.compile(g))
    return g


def test_weights_and_ties_round_trip_hostile_names(tmp_path: Path) -> None:
    g = hostile()
    path = tmp_path / "net.graph.json"
    g.save(path)
    data = json.loads(path.read_text())
    assert data["version"] == 2
    assert data["tied"] == {"blk%2F/fc\\\\1\\//weight": "a\\/b%/weight"}
    raw = Path(serialize.weights_path(str(path))).read_bytes()
    assert weights_io._metadata(raw)["version"] == "2"
    assert set(st_load(raw)) == {"a\\/b%/weight", "a\\/b%/bias", "blk%2F/fc\\\\1\\//bias"}  # the tie stored once
    loaded = gb.Graph.load(path)
    assert loaded.tied == g.tied
    for name in (OUTER,):
        for key, tensor in g.weights[name].items():
            assert torch.equal(loaded.weights[name][key], tensor)
    inner = loaded[BLOCK].block.weights[INNER]
    assert inner["weight"] is loaded.weights[OUTER]["weight"]
    assert torch.equal(inner["bias"], g[BLOCK].block.weights[INNER]["bias"])
    x = torch.randn(2, 4)
    assert torch.equal(gb.compile(loaded)(x), gb.compile(g)(x))


def _node_hash(node: Node) -> str:
    text = json.dumps([node.op, serialize._jsonable(dict(node.params))], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def write_version_1(folder: Path, g: gb.Graph, *, edited: bool = False) -> Path:
    """`g` saved as version 1 wrote it: tied paths and weights file keys percent-escaped per name."""
    doc = g.to_dict()
    doc["version"] = 1
    doc["tied"] = {"blk%252F/fc\\1%2F/weight": "a%2Fb%25/weight"}
    text = json.dumps(doc, indent=1, sort_keys=True) + "\n"
    path = folder / "old.graph.json"
    path.write_text(text)
    outer, inner = g.weights[OUTER], g[BLOCK].block.weights[INNER]
    tensors = {"a%2Fb%25/weight": outer["weight"], "a%2Fb%25/bias": outer["bias"],
               "blk%252F/fc\\1%2F/bias": inner["bias"]}
    nodes = {"a%2Fb%25": _node_hash(g[OUTER]), "blk%252F/fc\\1%2F": _node_hash(g[BLOCK].block[INNER])}
    saved_with = "0" * 64 if edited else hashlib.sha256(text.encode()).hexdigest()
    metadata = {"format": "graphbuilder.weights", "version": "1", "graph_sha256": saved_with,
                "nodes": json.dumps(nodes, sort_keys=True)}
    (folder / "old.safetensors").write_bytes(st_save({k: v.contiguous() for k, v in tensors.items()},
                                                    metadata=metadata))
    return path


def check_loaded(loaded: gb.Graph, g: gb.Graph) -> None:
    assert loaded.tied == {paths.join_all([BLOCK, INNER, "weight"]): paths.join_all([OUTER, "weight"])}
    assert torch.equal(loaded.weights[OUTER]["weight"], g.weights[OUTER]["weight"])
    assert torch.equal(loaded.weights[OUTER]["bias"], g.weights[OUTER]["bias"])
    inner = loaded[BLOCK].block.weights[INNER]
    assert inner["weight"] is loaded.weights[OUTER]["weight"]
    assert torch.equal(inner["bias"], g[BLOCK].block.weights[INNER]["bias"])
    loaded.check()
    x = torch.randn(2, 4)
    assert torch.equal(gb.compile(loaded)(x), gb.compile(g)(x))


def test_version_1_files_load(tmp_path: Path, recwarn: pytest.WarningsRecorder) -> None:
    g = hostile()
    check_loaded(gb.Graph.load(write_version_1(tmp_path, g)), g)
    assert not [w for w in recwarn if "changed since" in str(w.message)]  # unedited: every weight loads


def test_edited_version_1_files_keep_the_weights_that_fit(tmp_path: Path) -> None:
    g = hostile()
    with pytest.warns(UserWarning, match="changed since its weights were saved"):
        loaded = gb.Graph.load(write_version_1(tmp_path, g, edited=True))
    check_loaded(loaded, g)  # the old per-node hashes are read with the old keys: nothing re-initialised


def test_version_1_files_resave_as_version_2(tmp_path: Path) -> None:
    g = hostile()
    loaded = gb.Graph.load(write_version_1(tmp_path, g))
    path = tmp_path / "new.graph.json"
    loaded.save(path)
    assert json.loads(path.read_text())["version"] == 2
    check_loaded(gb.Graph.load(path), g)


def test_percent_in_a_version_2_path_is_a_plain_character(tmp_path: Path) -> None:
    """Only version 1 decodes %2F: in a version 2 weights file the key names node ``a%2Fb`` itself."""
    g = gb.Graph("net")
    g.output(g.add("linear", g.input("x", shape=(2, 3)), out_features=2, name="a%2Fb"))
    gb.store_weights(g, gb.compile(g))
    g.save(tmp_path / "n.graph.json")
    raw = (tmp_path / "n.safetensors").read_bytes()
    assert set(st_load(raw)) == {"a%2Fb/weight", "a%2Fb/bias"}
    loaded = gb.Graph.load(tmp_path / "n.graph.json")
    assert torch.equal(loaded.weights["a%2Fb"]["weight"], g.weights["a%2Fb"]["weight"])
