"""Fuzzers, seeded and bounded: the editor session against a model of the graph, mutated graph and weights
files through load and compile, and hostile names through compile and `to_python`.

Each fuzzer has a fast slice in the default run and a longer one under ``-m slow``; both are derandomized
(the same cases every run, so a failure reproduces) and print how many cases they ran (``pytest -s``).
What each must hold:

* editor: every request gets exactly one reply; a failing patch op leaves the graph, the document and the
  undo history as they were; an accepted op does what the protocol says (the model predicts its effect);
  the browser's replayed document always equals a fresh document of the graph; undo and redo return the
  recorded states; the graph always saves, reopens and ungroups, and compiles when it is valid;
* files: loading a mutated file either gives a graph (which then saves and reloads to the same document, and
  compiles or raises `GraphError`) or raises `GraphError`; nothing in a file runs;
* names: any node, block or graph name compiles, exports with `to_python` to a file whose top level holds
  only imports and classes, and runs equal to the compiled module; a name that is not Unicode text is refused
  with `GraphError`.
"""

from __future__ import annotations

import ast
import copy
import json
import math
import os
import warnings
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save
from test_files import sample

import graphbuilder as gb
from graphbuilder.compile import weights_io
from graphbuilder.compile.names import inlined_names, module_attributes
from graphbuilder.ir import paths, serialize
from graphbuilder.passes import group, ungroup
from graphbuilder.widget.document import FlopCache, apply_changes, document
from graphbuilder.widget.session import Session

CASES: Counter[str] = Counter()  # cases run per fuzzer, printed at the end of the module


@pytest.fixture(scope="module", autouse=True)
def report_cases() -> Iterator[None]:
    yield
    print("\nfuzz cases run: " + ", ".join(f"{k} {v}" for k, v in sorted(CASES.items())))


def fast_and_slow(fast: int, slow: int, **kw: Any) -> tuple[settings, settings]:
    common = dict(deadline=None, derandomize=True, database=None, print_blob=True,
                  suppress_health_check=list(HealthCheck), **kw)
    return settings(max_examples=fast, **common), settings(max_examples=slow, **common)


# -- shared hostile values ---------------------------------------------------------------------------------------------
RESERVED = sorted(module_attributes() | inlined_names())
NAMES = st.one_of(
    st.sampled_from(["train", "training", "state_dict", "half", "cuda", "zero_grad", "register_buffer", "forward",
                     "Neuron", "ACTIVATIONS", "MixedOp", "Any", "class", "None", "super", "math", "torch", "nn",
                     "self", "__init__", "__import__('os').system('touch pwned')", "a/b", "a\\/b", "\\", "/",
                     "x\nimport os", '"""', "名前", "\ud800", "ok\udfffok", " ", "1st", "_", "-" * 300]),
    st.sampled_from(RESERVED),
    st.text(max_size=12),
)
JSON_LEAVES = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(),
                        st.text(max_size=6), st.sampled_from(["\ud800", "x\udc80"]))


def deep(levels: int, leaf: Any = 0) -> Any:
    value = leaf
    for _ in range(levels):
        value = {"a": value}
    return value


JSON_VALUES = st.one_of(
    st.recursive(JSON_LEAVES, lambda kids: st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=4), kids,
                                                                                         max_size=3), max_leaves=8),
    st.integers(60, 900).map(deep),
)


# -- 1. the editor session against a model -----------------------------------------------------------------------------
def seed_graph() -> gb.Graph:
    g = gb.Graph("fuzz")
    x = g.input("x", shape=(2, 3, 8, 8))
    c = g.add("conv2d", x, out_channels=4, kernel_size=3, padding=1, name="conv")
    r = g.add("relu", c, name="relu")
    cat = g.add("cat", r, x, dim=1, name="cat")
    f = g.add("flatten", g.add("adaptive_avg_pool2d", cat, output_size=1, name="pool"), name="flat")
    g.output(g.add("linear", f, out_features=5, name="fc"), name="out")
    g.replace_contents(group(g, ["conv", "relu"], name="stem"))
    return g


def own_fields(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """`entries` without what follows from other nodes: a block's inside (compared node by node) and the shape
    of a block's inner input nodes (its ports take the shapes that reach the block)."""
    out = {}
    for node_id, entry in entries(doc).items():
        entry = {k: v for k, v in entry.items() if k != "block"}
        if entry["op"] == "input" and len(paths.split(node_id)) > 1:
            entry["params"] = {k: v for k, v in entry["params"].items() if k != "shape"}
        out[node_id] = entry
    return out


def entries(doc: dict[str, Any], parent: str = "") -> dict[str, dict[str, Any]]:
    """Node entries of a file document by node id (blocks' insides included)."""
    out: dict[str, dict[str, Any]] = {}
    for node in doc["nodes"]:
        node_id = (parent + "/" if parent else "") + node["name"].replace("\\", "\\\\").replace("/", "\\/")
        out[node_id] = node
        if "block" in node:
            out.update(entries(node["block"], node_id))
    return out


def check_structure(graph: gb.Graph) -> None:
    """What every graph the editor leaves must be: saveable, reopenable, and whole (`Graph.lint`: def-use
    links, acyclicity, block ports, inference up to date)."""
    doc = graph.to_dict()
    assert serialize.graph_from_dict(doc, strict=False).to_dict() == doc
    serialize.loads(serialize.dumps(graph), strict=False)
    graph.lint()


PARAM_VALUES = {
    "out_channels": [1, 6, 0, -1, 2**40, 2.5, "8", None, [3]],
    "kernel_size": [1, 3, 9, [1, 3], [], 0],
    "out_features": [2, 5, 0, float("nan")],
    "dim": [0, 1, -1, 7, 10**30],
    "negative_slope": [0.1, 1e308, float("inf")],
    "nope": [1],
}
OPS = ["relu", "conv2d", "linear", "cat", "add", "flatten", "leaky_relu", "input", "identity", "nonexistent_op"]


class EditorMachine(RuleBasedStateMachine):
    """Drives `Session.handle` like a browser (and edits in Python like a notebook), keeping the browser's
    replayed document and a model of the expected graph, and checks every reply against them."""

    def __init__(self) -> None:
        super().__init__()
        self.graph = seed_graph()
        self.sent: list[dict[str, Any]] = []
        self.session = Session(self.graph, self.sent.append)
        snap = self.session.snapshot()
        self.doc = {"version": snap["version"], "graph": snap["graph"], "totals": snap["totals"],
                    "nodes": dict(snap["nodes"])}
        self.flops = FlopCache()
        self.states = [self.graph.to_dict()]  # the undo history as the model sees it
        self.at = 0
        self.counter = 0

    # -- plumbing ------------------------------------------------------------------------------------------------
    def ids(self) -> list[str]:
        return sorted(self.doc["nodes"]) or ["no such node"]  # every node may have been removed

    def blocks(self) -> list[str]:
        return sorted(i for i, entry in self.doc["nodes"].items() if entry["is_block"])

    def request(self, message: dict[str, Any]) -> dict[str, Any]:
        """Send one request; check it gets exactly one reply; replay the updates; return the reply."""
        CASES["editor requests"] += 1
        self.counter += 1
        rid = f"r{self.counter}"
        self.sent.clear()
        if isinstance(message, dict) and "id" not in message:
            self.session.handle({**message, "id": rid})
            replies = [m for m in self.sent
                       if m.get("reply_to", "-") == rid or m.get("reply", {}).get("id", "-") == rid]
        else:  # not an object, or its own (maybe malformed) id: still exactly one answer
            self.session.handle(message)
            replies = [m for m in self.sent if m["kind"] != "update" or "reply" in m]
        assert len(replies) == 1, (message, self.sent)
        self.replay()
        return replies[0]

    def replay(self) -> None:
        for m in self.sent:
            if m["kind"] == "update":
                assert m["base"] == self.doc["version"], "an update must apply on the version it was made from"
                self.doc = apply_changes(self.doc, m["changes"], m["version"])
            elif m["kind"] == "snapshot":
                self.doc = {**m["document"], "nodes": dict(m["document"]["nodes"])}
        self.sent.clear()

    def patch(self, *ops: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
        """Send a patch; check all-or-nothing for a single op; keep the model's history; return (reply, before,
        after) as file documents."""
        before, version = self.graph.to_dict(), self.session.version
        update = self.request({"kind": "patch", "ops": list(ops), "base_version": self.doc["version"]})
        reply = update["reply"]
        after = self.graph.to_dict()
        if len(ops) == 1 and not reply["ok"]:
            assert after == before, (ops, reply)  # a failing op changes nothing...
            assert self.session.version == version and reply["created"] == [] and reply["ids"] == {}
        if update.get("changes"):
            self.push(after)
        return reply, before, after

    def push(self, state: dict[str, Any]) -> None:
        del self.states[self.at + 1:]
        self.states.append(state)
        self.at = len(self.states) - 1

    # -- browser requests ----------------------------------------------------------------------------------------
    @rule(data=st.data())
    def move(self, data: st.DataObject) -> None:
        picked = data.draw(st.lists(st.sampled_from(self.ids()), max_size=3, unique=True))
        if data.draw(st.booleans()):
            picked.append(data.draw(st.sampled_from(["ghost", "stem/ghost", ""])))
        xy = data.draw(st.tuples(st.floats(-1e4, 1e4), st.floats(-1e4, 1e4)) | st.just((math.inf, 0)))
        reply, before, after = self.patch({"op": "move", "positions": {i: list(xy) for i in picked}})
        if reply["ok"] and picked:
            want = entries(copy.deepcopy(before))
            for i in picked:
                want[i]["meta"]["position"] = {"x": xy[0], "y": xy[1]}
            assert entries(after) == want

    @rule(data=st.data(), value=JSON_VALUES)
    def meta(self, data: st.DataObject, value: Any) -> None:
        node_id = data.draw(st.sampled_from(self.ids()))
        key = data.draw(st.sampled_from(["note", "expanded", "\ud800"]))
        reply, before, after = self.patch({"op": "meta", "node": node_id, "meta": {key: value}})
        if reply["ok"]:
            want = entries(copy.deepcopy(before))
            if value is None:
                want[node_id]["meta"].pop(key, None)
            else:
                want[node_id]["meta"][key] = json.loads(json.dumps(value))
            assert entries(after) == want

    @rule(data=st.data(), name=NAMES)
    def rename(self, data: st.DataObject, name: str) -> None:
        node_id = data.draw(st.sampled_from(self.ids()))
        reply, before, after = self.patch({"op": "rename", "node": node_id, "name": name})
        if reply["ok"]:
            old = paths.split(node_id)[-1]
            assert name.encode("utf-8", "strict")  # only Unicode text is accepted
            renamed = entries(after)
            parts = paths.split(node_id)
            parent = paths.join_all(parts[:-1]) + "/" if len(parts) > 1 else ""  # a name may hold "/" itself
            assert sum(1 for e in renamed.values() if e["name"] == name) >= 1
            if name != old:
                assert reply["ids"].get(node_id, node_id).startswith(parent)

    @rule(data=st.data())
    def params(self, data: st.DataObject) -> None:
        node_id = data.draw(st.sampled_from(self.ids()))
        key = data.draw(st.sampled_from(sorted(PARAM_VALUES)))
        value = data.draw(st.sampled_from(PARAM_VALUES[key]))
        reply, before, after = self.patch({"op": "params", "node": node_id, "params": {key: value}})
        if reply["ok"]:
            got, want = own_fields(after), own_fields(copy.deepcopy(before))
            assert got[node_id]["params"][key] == json.loads(json.dumps(value)) or isinstance(value, list)
            want[node_id]["params"] = got[node_id]["params"]
            assert got == want  # nothing else changed

    @rule(data=st.data())
    def remove(self, data: st.DataObject) -> None:
        picked = data.draw(st.lists(st.sampled_from(self.ids()), min_size=1, max_size=3, unique=True))
        if data.draw(st.booleans()):
            picked.insert(data.draw(st.integers(0, len(picked))), "no such node")
        reply, before, after = self.patch({"op": "remove", "nodes": picked})
        if reply["ok"]:  # every id is gone (the inputs of their users are checked by check_structure)
            assert not set(picked) & set(entries(after))

    @rule(data=st.data())
    def connect(self, data: st.DataObject) -> None:
        ids = self.ids()
        src, dst = data.draw(st.sampled_from(ids)), data.draw(st.sampled_from(ids))
        out, port = data.draw(st.integers(0, 2)), data.draw(st.integers(0, 3))
        reply, before, after = self.patch({"op": "connect", "source": [src, out], "target": [dst, port]})
        if reply["ok"]:
            target = entries(after)[dst]
            assert target["inputs"][port] == [paths.split(src)[-1], out]

    @rule(data=st.data())
    def disconnect(self, data: st.DataObject) -> None:
        dst = data.draw(st.sampled_from(self.ids()))
        port = data.draw(st.integers(0, 3))
        reply, before, after = self.patch({"op": "disconnect", "target": [dst, port]})
        if reply["ok"]:
            got, was = entries(after)[dst], entries(before)[dst]
            assert len(got["inputs"]) == len(was["inputs"]) - 1 or got["inputs"][port] is None

    @rule(data=st.data(), name=NAMES)
    def add(self, data: st.DataObject, name: str) -> None:
        parents = [None, *self.blocks()]
        parent = data.draw(st.sampled_from(parents))
        op_name = data.draw(st.sampled_from(OPS))
        params = data.draw(st.sampled_from([{}, {"out_channels": 4}, {"out_features": 3}, {"shape": [2, 3, 8, 8]},
                                            {"nope": 1}, {"out_channels": float("nan")}]))
        op: dict[str, Any] = {"op": "add", "op_name": op_name, "name": name, "params": params,
                              "position": [1.0, 2.0], "parent": parent}
        reply, before, after = self.patch(op)
        if reply["ok"]:
            (created,) = reply["created"]
            assert entries(after)[created]["op"] == op_name
            assert not (op_name == "input" and parent is not None)  # blocks keep their ports

    @rule(data=st.data())
    def group(self, data: st.DataObject) -> None:
        picked = data.draw(st.lists(st.sampled_from(self.ids()), min_size=1, max_size=3, unique=True))
        name = data.draw(st.sampled_from([None, "grp", "stem"]))
        reply, before, after = self.patch({"op": "group", "nodes": picked, "name": name})
        if reply["ok"]:
            assert any(entries(after)[i]["op"] == "block" for i in reply["created"])

    @rule(data=st.data())
    def ungroup(self, data: st.DataObject) -> None:
        blocks = self.blocks() or ["stem"]
        reply, before, after = self.patch({"op": "ungroup", "node": data.draw(st.sampled_from(blocks))})

    @rule(data=st.data())
    def copy_paste(self, data: st.DataObject) -> None:
        picked = data.draw(st.lists(st.sampled_from(self.ids()), min_size=1, max_size=3, unique=True))
        copied = self.request({"kind": "copy", "nodes": picked})
        assert copied["kind"] == "copied"
        if not copied["ok"]:
            return
        fragment = copied["fragment"]
        if data.draw(st.booleans()) and fragment["nodes"]:  # a clipboard edited by hand
            key = data.draw(st.sampled_from(["op", "name", "params", "inputs", "block", "meta"]))
            fragment["nodes"][0][key] = data.draw(st.sampled_from([None, "input", 3, [], {"x": deep(200)},
                                                                    ["a", 0]]))
        parents = [None, *self.blocks()]
        reply, before, after = self.patch({"op": "paste", "fragment": fragment,
                                           "parent": data.draw(st.sampled_from(parents))})
        if reply["ok"]:
            assert len(reply["created"]) == len(fragment["nodes"])

    @rule(data=st.data())
    def probe(self, data: st.DataObject) -> None:
        source = data.draw(st.sampled_from(self.ids()))
        answer = self.request({"kind": "probe", "source": [source, data.draw(st.integers(0, 3))]})
        assert answer["kind"] == "probed"

    @rule(kind=st.sampled_from(["undo", "redo"]))
    def history(self, kind: str) -> None:
        update = self.request({"kind": kind})
        moved = update["reply"]["ok"]
        if kind == "undo":
            assert moved == (self.at > 0)
            self.at -= moved
        else:
            assert moved == (self.at < len(self.states) - 1)
            self.at += moved
        assert self.graph.to_dict() == self.states[self.at]

    @rule(message=st.one_of(
        st.dictionaries(st.sampled_from(["kind", "id", "ops", "source", "nodes", "name", "selection", "record",
                                         "base_version", "x"]), JSON_VALUES, max_size=4),
        st.fixed_dictionaries({"kind": st.sampled_from(["patch", "probe", "copy", "action", "undo", "sync"]),
                               "ops": st.lists(st.dictionaries(st.sampled_from(["op", "node", "nodes", "meta"]),
                                                               JSON_VALUES, max_size=3), max_size=2)}),
        JSON_VALUES).filter(lambda m: not (isinstance(m, dict) and m.get("kind") in ("undo", "redo"))))
    def malformed(self, message: Any) -> None:
        before, version = self.graph.to_dict(), self.session.version
        self.request(message)
        if self.graph.to_dict() == before:
            assert self.session.version == version
        else:  # a well-formed patch hidden in the noise: recorded like any other
            self.push(self.graph.to_dict())

    # -- Python-side edits ------------------------------------------------------------------------------------------
    @rule(data=st.data(), name=NAMES)
    def python_edit(self, data: st.DataObject, name: str) -> None:
        CASES["editor python edits"] += 1
        top = [n for n in self.graph._nodes.values()]
        if not top:  # every node was removed
            return
        node = data.draw(st.sampled_from(top))
        kind = data.draw(st.sampled_from(["add", "add_bad", "rename", "params"]))
        before = self.graph.to_dict()
        self.sent.clear()
        try:
            if kind == "add":
                self.graph.add("relu", node, name=name)
            elif kind == "add_bad":
                self.graph.add("conv2d", node, out_channels=3, kernel_size=99, name=name)
            elif kind == "rename":
                node.rename(name)
            else:
                node.params["out_features" if node.op == "linear" else "nope"] = 7
        except gb.GraphError:
            assert self.graph.to_dict() == before  # builders and edits that raise change nothing
        self.session.flush()  # the edit's event may have been flushed already (the batch window had passed)
        changed = any(m["kind"] == "update" and m["changes"] for m in self.sent)
        self.replay()
        if changed:  # one Python edit, one undo step
            self.push(self.graph.to_dict())

    # -- invariants -----------------------------------------------------------------------------------------------
    @invariant()
    def browser_sees_the_graph(self) -> None:
        fresh = document(self.graph, self.session.version, self.flops)
        assert self.doc["version"] == self.session.version
        assert self.doc["nodes"] == fresh["nodes"]
        assert self.doc["totals"] == fresh["totals"] and self.doc["graph"] == fresh["graph"]

    @invariant()
    def graph_is_whole(self) -> None:
        check_structure(self.graph)

    @precondition(lambda self: self.counter % 7 == 3)
    @invariant()
    def valid_graph_compiles_and_blocks_ungroup(self) -> None:
        if not self.graph.errors() and self.graph.inputs and self.graph.outputs:
            model = gb.compile(self.graph)
            outs = model(*(torch.randn(n.shape) for n in self.graph.inputs))
            assert outs is not None
        for node in list(self.graph._nodes.values()):
            if node.block is not None and all(p is not None for p in node.inputs):
                try:
                    ungroup(self.graph, node.name)
                except gb.GraphError:
                    pass

    @initialize()
    def start(self) -> None:
        CASES["editor sessions"] += 1


EDITOR_FAST, EDITOR_SLOW = fast_and_slow(12, 100, stateful_step_count=25)
TestEditorSession = EditorMachine.TestCase
TestEditorSession.settings = EDITOR_FAST


@pytest.mark.slow
@pytest.mark.timeout(3600)
class TestEditorSessionLong(EditorMachine.TestCase):  # type: ignore[name-defined, misc]
    settings = settings(EDITOR_SLOW, stateful_step_count=40)


# -- 2. mutated files through load and compile -------------------------------------------------------------------------
def seed_files() -> list[gb.Graph]:
    """Small graphs covering the file format: blocks, variadic and multi-output ops, json params, weights."""
    g = sample()
    gb.store_weights(g, gb.compile(g))
    from graphbuilder.ops.neuron_graph import NeuronGraph

    n = gb.Graph("neurons")
    topology = NeuronGraph.random(4, 3, 2, 9, seed=1).to_json()
    n.output(n.add("neuron_graph", n.input("v", shape=(3, 4)), topology=topology))
    return [g, n]


HOSTILE_JSON = ["NaN", "-Infinity", "1e400", "1" + "0" * 400, '"\\ud800"', '"\\udfff x"', "[" * 300 + "]" * 300,
                '{"a": 1, "a": 2}', "null", "true", "-1", "2147483648", "[]", "{}", '"block"', '"input"',
                '"__import__(\'os\').system(\'touch gb_code_ran\')"', "[1e308, -1e308]", '"' + "x" * 5000 + '"']


def json_paths(doc: Any) -> list[tuple[Any, ...]]:
    """Every path (keys and indices) into `doc`."""
    out, stack = [], [((), doc)]
    while stack:
        path, value = stack.pop()
        out.append(path)
        if isinstance(value, dict):
            stack.extend(((*path, k), v) for k, v in value.items())
        elif isinstance(value, list):
            stack.extend(((*path, i), v) for i, v in enumerate(value))
    return out


def _at(doc: Any, path: tuple[Any, ...]) -> Any:
    for key in path:
        doc = doc[key]
    return doc


def set_at(doc: Any, path: tuple[Any, ...], value: Any) -> None:
    _at(doc, path[:-1])[path[-1]] = value


def mutate(text: str, data: st.DataObject) -> str:
    """One mutation of a graph file: a value replaced (by JSON or by hostile raw text), a field dropped or
    added, or raw bytes changed."""
    how = data.draw(st.sampled_from(["value", "raw", "drop", "add", "bytes", "swap"]))
    doc = json.loads(text)
    path = data.draw(st.sampled_from(json_paths(doc)[1:]))
    if how == "value":
        set_at(doc, path, data.draw(JSON_VALUES.filter(lambda v: not isinstance(v, float) or math.isfinite(v))))
    elif how == "drop" and isinstance(path[-1], str):
        del _at(doc, path[:-1])[path[-1]]
    elif how == "add":  # a field added to an object
        objects = [p for p in json_paths(doc) if isinstance(_at(doc, p), dict)]
        target = data.draw(st.sampled_from(objects))
        _at(doc, target)[data.draw(st.sampled_from(["code", "block", "meta", "params", "x"]))] = \
            data.draw(JSON_VALUES.filter(lambda v: not isinstance(v, float) or math.isfinite(v)))
    elif how == "swap":
        other = data.draw(st.sampled_from(json_paths(doc)[1:]))
        a, b = _at(doc, path), _at(doc, other)
        if other[: len(path)] != path and path[: len(other)] != other:
            set_at(doc, path, copy.deepcopy(b))
            set_at(doc, other, copy.deepcopy(a))
    marker = "\u0000MARK\u0000"
    if how == "raw":
        set_at(doc, path, marker)
    out = json.dumps(doc, indent=1)
    if how == "raw":
        out = out.replace(json.dumps(marker), data.draw(st.sampled_from(HOSTILE_JSON)))
    if how == "bytes":
        raw = bytearray(out.encode())
        for _ in range(data.draw(st.integers(1, 4))):
            i = data.draw(st.integers(0, len(raw) - 1))
            raw[i] = data.draw(st.integers(0, 255))
        return raw.decode("utf-8", "surrogateescape")
    return out


def mutate_weights(data_bytes: bytes, data: st.DataObject) -> bytes:
    """One mutation of a weights file: its metadata, a tensor's dtype label, or raw bytes."""
    how = data.draw(st.sampled_from(["nodes", "hash", "dtype", "tensor", "bytes"]))
    tensors, metadata = st_load(data_bytes), weights_io._metadata(data_bytes)
    if how == "nodes":
        metadata["nodes"] = data.draw(st.sampled_from(HOSTILE_JSON))
    elif how == "hash":
        metadata["graph_sha256"] = "0" * 64  # as if the graph file had been edited
        metadata["nodes"] = data.draw(st.sampled_from([metadata["nodes"], "{}", '{"fc": "x"}', "[]"]))
    elif how == "dtype":
        key = data.draw(st.sampled_from(sorted(tensors)))
        kind = data.draw(st.sampled_from([torch.int32, torch.int64, torch.bool, torch.float64, torch.float16,
                                          torch.complex64, torch.uint8]))
        t = tensors[key]
        tensors[key] = t.to(kind) if kind.is_complex or kind == torch.bool else (
            t.view(kind) if t.element_size() == torch.empty(0, dtype=kind).element_size() else t.to(kind))
    elif how == "tensor":
        key = data.draw(st.sampled_from(sorted(tensors)))
        tensors[data.draw(st.sampled_from([key, "ghost/weight", "block 1/ghost/w", "x", "fc/%2F/w"]))] = \
            torch.zeros(data.draw(st.sampled_from([(1,), (4, 3), (3, 4), (0,)])))
    out = st_save(tensors, metadata=metadata)
    if how == "bytes":
        raw = bytearray(out)
        i = data.draw(st.integers(0, min(len(raw) - 1, 400)))  # mostly the header
        raw[i] = data.draw(st.integers(0, 255))
        out = bytes(raw)
    return out


def load_and_use(path: Path) -> str:
    """Load a (maybe hostile) file; a graph that loads must save, reload the same and compile or refuse."""
    try:
        g = gb.Graph.load(path, strict=False)
    except gb.GraphError:
        return "refused"
    again = path.with_name("again.graph.json")
    g.save(again)  # what loads also saves ...
    assert gb.Graph.load(again, strict=False).to_dict() == g.to_dict()  # ... and reloads the same
    try:
        model = gb.compile(g)
    except gb.GraphError:
        return "loaded, refused by compile"
    with torch.no_grad():
        model(*(torch.zeros(n.shape, dtype=getattr(torch, n.dtype)) for n in g.inputs))
    return "loaded and ran"


def file_fuzz(data: st.DataObject, tmp: Path) -> None:
    seeds = seed_files()
    g = data.draw(st.sampled_from(seeds))
    folder = tmp / f"case{CASES['files'] + CASES['weights files']}"
    folder.mkdir()
    path = folder / "g.graph.json"
    g.save(path)
    wpath = Path(serialize.weights_path(str(path)))
    if wpath.exists() and data.draw(st.booleans()):
        wpath.write_bytes(mutate_weights(wpath.read_bytes(), data))
        if data.draw(st.booleans()):
            path.write_text(mutate(path.read_text(), data), errors="surrogateescape")
        CASES["weights files"] += 1
    else:
        path.write_bytes(mutate(path.read_text(), data).encode("utf-8", "surrogateescape"))
        CASES["files"] += 1
    cwd = os.getcwd()
    os.chdir(folder)  # anything a file could run would leave its marker here
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # edited-file warnings are expected
            outcome = load_and_use(path)
    finally:
        os.chdir(cwd)
    CASES[f"files: {outcome}"] += 1
    assert not (folder / "gb_code_ran").exists() and not (folder / "pwned").exists()


FILES_FAST, FILES_SLOW = fast_and_slow(150, 3000)


@FILES_FAST
@given(data=st.data())
def test_mutated_files_load_or_raise_graph_error(data: st.DataObject, tmp_path_factory: pytest.TempPathFactory
                                                 ) -> None:
    file_fuzz(data, tmp_path_factory.mktemp("files"))


@pytest.mark.slow
@pytest.mark.timeout(3600)
@FILES_SLOW
@given(data=st.data())
def test_mutated_files_load_or_raise_graph_error_long(data: st.DataObject,
                                                      tmp_path_factory: pytest.TempPathFactory) -> None:
    file_fuzz(data, tmp_path_factory.mktemp("files"))


# -- 3. hostile names through compile and to_python --------------------------------------------------------------------
def build_named(names: list[str], graph_name: str, in_block: list[bool]) -> gb.Graph:
    """A chain of layers named `names` (some inside blocks named from the list too), or GraphError."""
    g = gb.Graph(graph_name)
    h = g.input(names[0], shape=(2, 3))
    for k, name in enumerate(names[1:]):
        op = "linear" if k % 2 == 0 else "tanh"
        if in_block[k % len(in_block)]:
            body = gb.Graph(name)
            inner = body.input(names[(k + 2) % len(names)], shape=(2, 3))
            body.output(body.add(op, inner, name=name, **({"out_features": 3} if op == "linear" else {})),
                        name=names[(k + 3) % len(names)])
            h = g.add(body, h, name=name)
        else:
            h = g.add(op, h, name=name, **({"out_features": 3} if op == "linear" else {}))
    g.output(h, name=names[-1] + "_out" if names[-1] + "_out" not in g else None)
    return g


def names_fuzz(names: list[str], graph_name: str, in_block: list[bool], class_name: str) -> None:
    from graphbuilder.compile.names import class_name_taken

    CASES["names"] += 1
    texts = [*names, graph_name]
    try:
        g = build_named(names, graph_name, in_block)
    except gb.GraphError as e:
        not_text = any(not _is_text(t) for t in texts)
        duplicate = len(set(names)) < len(names) or "duplicate" in e.message or "taken" in e.message
        assert not_text or duplicate or "must be a non-empty string" in e.message, e
        CASES["names: refused"] += 1
        return
    assert all(_is_text(t) for t in texts)
    compiled = gb.compile(g)
    x = torch.randn(2, 3)
    with torch.no_grad():
        want = compiled(x)
    try:
        source = gb.export.to_python(g, class_name=class_name)
    except gb.GraphError:
        assert class_name_taken(class_name)
        source, class_name = gb.export.to_python(g), "Net"
    tree = ast.parse(source)
    for stmt in tree.body:  # only the docstring, imports and classes at top level
        assert isinstance(stmt, (ast.Expr, ast.Import, ast.ImportFrom, ast.ClassDef)), ast.dump(stmt)[:200]
    assert tree.body[0] is not None and all(isinstance(s.value, ast.Constant) for s in tree.body
                                            if isinstance(s, ast.Expr))
    namespace: dict[str, Any] = {"__name__": "fuzzed"}
    exec(compile(source, "fuzzed.py", "exec"), namespace)  # noqa: S102  (our own generated code, checked above)
    model = namespace[class_name]()
    model.load_state_dict(compiled.state_dict())
    with torch.no_grad():
        assert torch.equal(model(x), want)
    CASES["names: compiled and exported"] += 1


def _is_text(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


NAMES_FAST, NAMES_SLOW = fast_and_slow(40, 800)
NAME_CASES = dict(names=st.lists(NAMES, min_size=3, max_size=7, unique=True), graph_name=NAMES.filter(bool),
                  in_block=st.lists(st.booleans(), min_size=1, max_size=3), class_name=NAMES)


@NAMES_FAST
@given(**NAME_CASES)
def test_hostile_names_compile_and_export(names: list[str], graph_name: str, in_block: list[bool],
                                          class_name: str) -> None:
    names_fuzz(names, graph_name, in_block, class_name)


@pytest.mark.slow
@pytest.mark.timeout(3600)
@NAMES_SLOW
@given(**NAME_CASES)
def test_hostile_names_compile_and_export_long(names: list[str], graph_name: str, in_block: list[bool],
                                               class_name: str) -> None:
    names_fuzz(names, graph_name, in_block, class_name)
