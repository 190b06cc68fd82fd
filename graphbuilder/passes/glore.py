"""Plug GloRe global reasoning units into existing graphs: `insert_glore`, and the unit as an editor block.

Paper: Graph-Based Global Reasoning Networks, arXiv:1811.12814 (reference code facebookresearch/GloRe).
The unit itself is the `glore_unit` op (`graphbuilder/ops/glore.py`).

Boundary: graph -> graph rewrites on the IR. A pass never edits its input: it copies the graph, inserts units
tagged ``meta["inserted_by"] = "insert_glore"`` and returns the copy. Every existing node keeps its weights,
and each new unit starts as the exact identity (its BN weight is zero), so a trained network computes the
same outputs right after insertion.

Where units go. ``where`` names places (node names, or ``"block/inner"`` paths into nested blocks) or is a
preset ``"res{S}x{K}"`` (joined with ``+``): K units in stage S after its blocks 1, 3, ..., 2K-1, as the paper
places them in ResNet-50 (``"res4x3"``: after blocks 1, 3, 5 of Res4; ``"res3x2+res4x3"``). Stages are found
from structure, never from names: a residual block is an ``add`` joining two paths that fork from a common
node (a branch and a skip; a directly following activation ends the block), or a block node whose graph has
such an ``add``; block nodes without one are searched inside (an imported ResNet's stage containers).
Residual blocks with the same spatial size in a row form a stage, numbered as in the ResNet paper: the first
stage is res2 (conv2_x), so Res4 is the third.

In the editor a unit is a block (``unit="block"``, the default): one box, expandable to the projection,
`gcn_interaction` and reverse projection nodes (`glore_block`). ``unit="op"`` inserts one `glore_unit` node.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from graphbuilder.ir import paths
from graphbuilder.ir.errors import GraphError
from graphbuilder.ir.graph import BLOCK, Graph, Node
from graphbuilder.ops.glore import glore_sizes
from graphbuilder.ops.modules.glore import BN_EPS, GloReUnit

INSERTED_BY = "insert_glore"
PRESET = re.compile(r"^res(\d+)x(\d+)(\+res(\d+)x(\d+))*$")
FIRST_STAGE = 2  # ResNet numbering: conv1 is the stem, the first residual stage is res2
_ACTIVATIONS = frozenset({"relu", "relu6", "leaky_relu", "gelu", "silu", "hardswish", "prelu", "sigmoid", "tanh"})


# -- the unit as a block ---------------------------------------------------------------------------------------
def glore_block(channels: int, spatial: Sequence[int] = (8, 8), *, batch: int = 1, num_state: int | None = None,
                num_node: int | None = None, normalize: bool = False, dtype: str = "float32",
                state_dict: dict[str, torch.Tensor] | None = None, name: str = "glore") -> Graph:
    """The GloRe unit as an IR graph, for use as a block: ``g.add(glore_block(64, (8, 8)), x)``.

    Nodes: ``conv_state`` and ``conv_proj`` (1x1 convs), ``project`` (`glore_project`), ``gcn``
    (`gcn_interaction`), ``reproject`` (`glore_reproject`), ``conv_extend``, ``blocker`` (BN) and the residual
    ``add``. The input is ``(batch, channels, *spatial)`` with 1 to 3 spatial dims: use the shape the block will
    see, since the core drops a node's weights when its input shape changes. Weights are those of
    `state_dict` (a `GloReUnit` / compiled ``glore_unit`` state dict, same keys) or a fresh reference
    initialisation (Xavier-uniform, zero biases, BN weight zero: the identity). The compiled block computes
    what the ``glore_unit`` op computes with the same weights.
    """
    dims = len(spatial)
    if not 1 <= dims <= 3:
        raise GraphError(f"glore_block: spatial={tuple(spatial)} must have 1 to 3 dims (L, (H, W) or (D, H, W))")
    cs, n = glore_sizes(channels, num_state, num_node)
    g = Graph(name)
    x = g.input("x", shape=(batch, channels, *spatial), dtype=dtype)
    conv = f"conv{dims}d"
    states = g.add(conv, x, name="conv_state", out_channels=cs, kernel_size=1)  # (B, Cs, *S)
    proj = g.add(conv, x, name="conv_proj", out_channels=n, kernel_size=1)  # (B, N, *S)
    v = g.add("glore_project", states, proj, name="project", normalize=normalize)  # (B, Cs, N)
    z = g.add("gcn_interaction", v, name="gcn")  # (B, Cs, N)
    y = g.add("glore_reproject", z, proj, name="reproject")  # (B, Cs, *S)
    ext = g.add(conv, y, name="conv_extend", out_channels=channels, kernel_size=1, bias=False)  # (B, C, *S)
    bn = g.add(f"batch_norm{dims}d", ext, name="blocker", eps=BN_EPS)  # (B, C, *S)
    g.output(g.add("add", x, bn, name="residual"), name="out")
    if state_dict is None:
        state_dict = GloReUnit(channels, cs, n, dims=dims, normalize=normalize).state_dict()
    g.weights.update(_block_weights(g, state_dict))
    return g


def _block_weights(g: Graph, state_dict: dict[str, torch.Tensor]) -> dict[str, dict[str, torch.Tensor]]:
    """Split a `GloReUnit` state dict into per-node weights of `glore_block`'s graph (same attribute names)."""
    out: dict[str, dict[str, torch.Tensor]] = {}
    for key, tensor in state_dict.items():
        node, _, rest = key.partition(".")
        if node not in g or not rest:
            raise GraphError(f"glore_block: state_dict key {key!r} matches no node of the block; pass the state "
                             f"dict of a GloReUnit (keys like 'conv_state.weight', 'gcn.conv1.weight')")
        out.setdefault(node, {})[rest] = tensor.detach().clone()
    return out


# -- finding residual stages -----------------------------------------------------------------------------------
@dataclass
class Place:
    """A place a unit can follow: node `node` of graph `graph`, reached through the block nodes `chain`."""

    graph: Graph
    node: Node
    path: str
    chain: tuple[Node, ...] = ()

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of the tensor at this place (output 0 of `node`)."""
        return self.node.shape


@dataclass
class Stage:
    """Residual blocks in a row with the same spatial size; `name` follows ResNet numbering (res2, res3...)."""

    name: str
    blocks: list[Place] = field(default_factory=list)

    @property
    def spatial(self) -> tuple[int, ...]:
        """Spatial size of the stage's feature maps."""
        return self.blocks[0].shape[2:]

    def __repr__(self) -> str:
        size = "x".join(map(str, self.spatial))
        return f"{self.name} ({len(self.blocks)} blocks, {self.blocks[0].shape[1]} channels at {size})"


def _is_inserted(node: Node) -> bool:
    return node.meta.get("inserted_by") == INSERTED_BY or node.op == "glore_unit"


def _is_residual_add(node: Node) -> bool:
    """An ``add`` of two distinct same-shape spatial tensors whose paths fork from a common node."""
    if node.op != "add" or node.error is not None or _is_inserted(node):
        return False
    a, b = node.inputs
    if a is None or b is None or a.node is b.node or len(node.shape) < 3 or a.shape != b.shape:
        return False
    g = node.graph
    return bool((g.ancestors(a.node) | {a.node}) & (g.ancestors(b.node) | {b.node}))


def _block_end(add: Node) -> Node:
    """The node that ends the residual block joined at `add`: a sole following activation, else the add."""
    users = add.users
    if len(users) == 1 and users[0].op in _ACTIVATIONS and len(users[0].inputs) == 1:
        return users[0]
    return add


def _residual_blocks(graph: Graph, parent: str | None = None, chain: tuple[Node, ...] = ()) -> list[Place]:
    found: list[Place] = []
    for node in graph:
        if _is_inserted(node):
            continue
        path = paths.join(parent, node.name)
        if node.op == BLOCK:
            assert node.block is not None
            if any(_is_residual_add(n) for n in node.block):
                if node.error is None and len(node.outputs) >= 1 and len(node.shape) >= 3:
                    found.append(Place(graph, node, path, chain))
            else:
                found += _residual_blocks(node.block, path, (*chain, node))
        elif _is_residual_add(node):
            end = _block_end(node)
            found.append(Place(graph, end, paths.join(parent, end.name), chain))
    return found


def residual_stages(graph: Graph) -> list[Stage]:
    """The residual stages of `graph`, found from structure (see the module docstring), in dataflow order."""
    graph.infer()
    stages: list[Stage] = []
    for place in _residual_blocks(graph):
        if stages and stages[-1].blocks[-1].shape[2:] == place.shape[2:]:
            stages[-1].blocks.append(place)
        else:
            stages.append(Stage(f"res{FIRST_STAGE + len(stages)}", [place]))
    return stages


# -- resolving `where` -----------------------------------------------------------------------------------------
def _preset_places(graph: Graph, preset: str) -> list[Place]:
    stages = {s.name: s for s in residual_stages(graph)}
    found = ", ".join(map(repr, stages.values())) or "none"
    places: list[Place] = []
    for part in preset.split("+"):
        m = re.fullmatch(r"res(\d+)x(\d+)", part)
        assert m is not None
        stage_name, count = f"res{m.group(1)}", int(m.group(2))
        if stage_name not in stages:
            raise GraphError(f"insert_glore({preset!r}): graph {graph.name!r} has no stage {stage_name}; its "
                             f"residual stages are: {found}. Pick one of these, or pass node names")
        stage = stages[stage_name]
        wanted = [2 * k for k in range(count)]  # 0-based: blocks 1, 3, 5, ...
        if not wanted or wanted[-1] >= len(stage.blocks):
            raise GraphError(f"insert_glore({preset!r}): {part} puts units after blocks "
                             f"{', '.join(str(k + 1) for k in wanted) or 'none'} of {stage!r}; use at most "
                             f"{(len(stage.blocks) + 1) // 2} units there, or pass node names",
                             [p.path for p in stage.blocks])
        places += [stage.blocks[k] for k in wanted]
    return places


def _find(graph: Graph, name: str, parts: Sequence[str] | None = None) -> Place:
    """The place `name`: a top-level node name, or a node path through blocks (`graphbuilder.ir.paths`: a ``/``
    inside a name is written ``\\/``), or the names `parts` along such a path."""
    if name in graph and parts is None:
        return Place(graph, graph[name], paths.escape(name))
    parts = paths.split(name) if parts is None else parts
    current, chain = graph, []
    for i, part in enumerate(parts):
        if part not in current:
            break
        node = current[part]
        if i == len(parts) - 1:
            return Place(current, node, paths.join_all(parts), tuple(chain))
        if node.op != BLOCK:
            break
        assert node.block is not None
        chain.append(node)
        current = node.block
    candidates = [paths.escape(n.name) for n in graph] + [p.path for p in _residual_blocks(graph)]
    close = difflib.get_close_matches(name, candidates, n=3, cutoff=0.5)
    hint = f"did you mean {' or '.join(map(repr, close))}? " if close else ""
    raise GraphError(f"insert_glore: graph {graph.name!r} has no place {name!r}; {hint}name a node, a block, or "
                     "'block/inner' inside a block", [name])


def resolve_places(graph: Graph, where: str | Sequence[str]) -> list[Place]:
    """The places `where` names in `graph` (a preset string, one name, or a list of names and paths)."""
    if isinstance(where, str):
        names = None if PRESET.fullmatch(where) else [where]
        places = _preset_places(graph, where) if names is None else [_find(graph, where)]
    elif isinstance(where, Sequence) and where and all(isinstance(w, str) for w in where):
        places = [_find(graph, w) for w in where]
    else:
        raise GraphError(f"insert_glore: where={where!r} must be a preset such as 'res4x3' or 'res3x2+res4x3', "
                         "or a non-empty list of node names")
    return _checked(places)


def _checked(places: list[Place]) -> list[Place]:
    """`places`, after checking each can take a unit (not an output, no error, 1-3 spatial dims, named once)."""
    seen: set[int] = set()
    for place in places:
        node = place.node
        if node.op == "output":
            feeder = node.inputs[0].node.name if node.inputs and node.inputs[0] is not None else "its input"
            raise GraphError(f"insert_glore: {place.path!r} is a graph output; name the node that feeds it "
                             f"({feeder!r}) instead", [place.path])
        if node.error is not None:
            raise GraphError(f"insert_glore: {place.path!r} has an error; fix it first: {node.error.message}",
                             [place.path])
        if len(node.shape) < 3:
            raise GraphError(f"insert_glore: {place.path!r} outputs {node[0].spec}, which has no spatial dims; a "
                             "GloRe unit needs (N, C, L), (N, C, H, W) or (N, C, D, H, W): pick a node before the "
                             "pooling/flatten", [place.path])
        if len(node.shape) > 5:
            raise GraphError(f"insert_glore: {place.path!r} outputs {node[0].spec}; GloRe handles 1 to 3 spatial "
                             "dims", [place.path])
        if id(node) in seen:
            raise GraphError(f"insert_glore: {place.path!r} is named twice; name each place once", [place.path])
        seen.add(id(node))
    return places


# -- the pass --------------------------------------------------------------------------------------------------
def insert_glore(graph: Graph, where: str | Sequence[str] = "res4x3", *, num_state: int | None = None,
                 num_node: int | None = None, normalize: bool = False, unit: str = "block",
                 seed: int | None = None) -> Graph:
    """A copy of `graph` with a GloRe unit after each place in `where`; `graph` itself is not changed.

    Args:
        graph: any graph; ResNet-style graphs (flat, or imported with nested blocks) work with presets.
        where: a preset (``"res4x3"``, ``"res3x2+res4x3"``; any ``res{S}x{K}``), or a list of node names /
            ``"block/inner"`` paths. Each unit reads the place's output and replaces it for all its users.
        num_state, num_node: states Cs and nodes N of every unit; None follows each place's width C
            (C/2 and C/4, the paper's 2m and m with m = C/4).
        normalize: divide projected features by the number of positions.
        unit: ``"block"`` (an expandable `glore_block`) or ``"op"`` (one ``glore_unit`` node).
        seed: seed for the units' Xavier initialisation (None: torch's global generator).

    Inserted nodes carry ``meta["inserted_by"] = "insert_glore"`` and ``meta["glore"]`` (sizes, place).
    Raises `GraphError` when a place does not exist, is an output, or has no spatial dims.
    """
    if unit not in ("block", "op"):
        raise GraphError(f"insert_glore: unit={unit!r} must be 'block' (expandable in the editor) or 'op'")
    new = graph.copy()
    return _insert_at(new, resolve_places(new, where), num_state, num_node, normalize, unit, seed)


def _insert_at(new: Graph, places: list[Place], num_state: int | None, num_node: int | None, normalize: bool,
               unit: str, seed: int | None) -> Graph:
    """Insert a unit after each of `places` (all in `new`, which is edited and returned)."""
    generator = torch.Generator().manual_seed(seed) if seed is not None else None
    for i, place in enumerate(places):
        _insert_unit(place, i, num_state, num_node, normalize, unit, generator)
        for block_node in reversed(place.chain):  # the enclosing blocks hold more weights now: re-infer them
            if block_node.inputs:
                block_node.set_input(0, block_node.inputs[0])
    new.infer()
    return new


def _insert_unit(place: Place, index: int, num_state: int | None, num_node: int | None, normalize: bool,
                 unit: str, generator: torch.Generator | None) -> Node:
    g, node = place.graph, place.node
    shape, dtype = node.shape, node.dtype
    cs, n = glore_sizes(shape[1], num_state, num_node)
    with torch.random.fork_rng(devices=[]):
        if generator is not None:
            torch.manual_seed(int(torch.randint(0, 2**62, (1,), generator=generator)))
        state = GloReUnit(shape[1], cs, n, dims=len(shape) - 2, normalize=normalize).state_dict()
    label = f"glore_{node.name}"
    name = label if label not in g else next(f"{label}_{k}" for k in range(1, len(g) + 2) if f"{label}_{k}" not in g)
    if unit == "block":
        block = glore_block(shape[1], shape[2:], batch=shape[0], num_state=cs, num_node=n, normalize=normalize,
                            dtype=dtype, state_dict=state, name="glore")
        inserted = g.add(block, node, name=name)
    else:
        inserted = g.add("glore_unit", node, name=name, num_state=cs, num_node=n, normalize=normalize)
        g.weights[inserted.name] = state
    node.replace_all_uses_with(inserted)  # every reader of output 0 now reads the unit
    inserted.meta.update({"inserted_by": INSERTED_BY,
                          "glore": {"place": place.path, "num_state": cs, "num_node": n, "normalize": normalize,
                                    "index": index}})
    return inserted


def glore_editor_action(graph: Graph, selection: list[str]) -> Graph:
    """The editor's "Insert GloRe" action, ``fn(graph, selected_ids) -> Graph`` for `register_action`.

    With nodes selected, a unit goes after each of them; with none, the paper's ``"res4x3"`` preset is used.
    Selected ids are the editor's paths (names joined by ``/``, with ``\\/`` for a ``/`` inside a name).
    """
    if not selection:
        return insert_glore(graph, "res4x3")
    new = graph.copy()
    places = []
    for node_id in selection:
        places.append(_find(new, node_id, paths.split(node_id)))
    return _insert_at(new, _checked(places), None, None, False, "block", None)


def glore_action(where: str | Sequence[str] = "res4x3", **options: Any) -> Callable[[Graph], Graph]:
    """`insert_glore` as an editor action: a graph -> graph function for ``GraphWidget.apply``.

        widget.apply(gb.passes.glore_action("res4x3"))   # same as apply(lambda g: insert_glore(g, "res4x3"))
    """
    def action(graph: Graph) -> Graph:
        return insert_glore(graph, where, **options)

    action.__name__ = action.__qualname__ = "insert_glore"
    action.__doc__ = f"Insert GloRe units at {where!r}."
    return action
