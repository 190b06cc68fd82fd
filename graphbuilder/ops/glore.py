"""GloRe ops: the global reasoning unit (`glore_unit`) and its parts, for the editor's expandable block.

Paper: Graph-Based Global Reasoning Networks, arXiv:1811.12814 (reference code facebookresearch/GloRe); the
facts followed are the paper's description of the unit and the modules in `graphbuilder/ops/modules/glore.py`.

    glore_unit        (B, C, *S) -> (B, C, *S), S of 1 to 3 dims; the whole unit as one node
    glore_project     states (B, Cs, *S), projection (B, N, *S) -> V = Xs B^T (B, Cs, N)
    gcn_interaction   (B, Cs, N) -> (B, Cs, N): graph convolution in interaction space
    glore_reproject   Z (B, Cs, N), projection (B, N, *S) -> Z B (B, Cs, *S)

Cost convention. GraphBuilder's summary reports FLOPs with a multiply-add counted as 2 (torch's flop
counter). The closed form below counts multiply-accumulates (MACs) per sample:

    MACs = L (C Cs + C N + 2 Cs N + Cs C) + N Cs (N + Cs)

`glore_unit` reports exactly ``2 * batch * MACs`` (`glore_macs`), which is also what torch's counter measures
on the module: its six matrix products are the six terms. Neither counts the elementwise work (bias adds,
ReLU, the GCN identity, the 1/L scaling, BN and the residual add: about L (Cs + N + 3C) + 4 Cs N
operations per sample: 0.3% of the MACs at ResNet-50's Res4 size, 8% at C = 32 on 8x8).

Scale. Without `normalize` the update is cubic in the input's scale (Xs B^T B sums over L positions twice),
so chained units amplify values and float32 rounding; `normalize=True` (the reference's option) divides by L.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from graphbuilder.ir import registry
from graphbuilder.ir.errors import GraphError
from graphbuilder.ir.schema import OpDef
from graphbuilder.ops.declare import Specs, declare, example, flag, integer, named, need_rank
from graphbuilder.ops.modules.glore import GCNInteraction, GloReProject, GloReReproject, GloReUnit

CATEGORY = "reasoning"
_HINT = "(N, C, L), (N, C, H, W) or (N, C, D, H, W)"


def glore_sizes(channels: int, num_state: int | None = None, num_node: int | None = None) -> tuple[int, int]:
    """(num_state, num_node) for a unit on `channels` channels; None picks the paper's C/2 and C/4."""
    cs = channels // 2 if num_state is None else num_state
    n = channels // 4 if num_node is None else num_node
    if cs < 1 or n < 1:
        raise GraphError(f"a GloRe unit on {channels} channels gets num_state={cs}, num_node={n} by default "
                         f"(C/2, C/4); set num_state and num_node to at least 1, or use it on 4+ channels")
    return cs, n


def glore_macs(channels: int, positions: int, num_state: int, num_node: int) -> int:
    """Multiply-accumulates of one GloRe unit per sample (the closed form in the module docstring).

    L (C Cs + C N + 2 Cs N + Cs C) + N Cs (N + Cs): reduce, projection, project, reverse projection and
    extension convs over the L positions, then the node-wise and state-wise convs of the GCN.
    """
    c, cs, n, length = channels, num_state, num_node, positions
    return length * (c * cs + c * n + 2 * cs * n + cs * c) + n * cs * (n + cs)


def glore_params(channels: int, num_state: int, num_node: int) -> int:
    """Parameter count of one unit: convs with biases where the reference has them, plus BN's scale/shift.

    For num_state = 2m, num_node = m this is 5mC + 5m^2 + 4m + 2C (C = 32, m = 16: 3968).
    """
    c, cs, n = channels, num_state, num_node
    return (c * cs + cs) + (c * n + n) + (n * n + n) + cs * cs + cs * c + 2 * c


def _unit_sizes(p: dict[str, Any], specs: Specs) -> tuple[int, int, int, int]:
    """(channels, positions, num_state, num_node) of a glore_unit node."""
    shape = specs[0].shape
    cs, n = glore_sizes(shape[1], p["num_state"], p["num_node"])
    return shape[1], math.prod(shape[2:]), cs, n


def _unit_check(p: dict[str, Any], specs: Specs) -> None:
    need_rank(3, 4, 5, hint=_HINT)(p, specs)
    _unit_sizes(p, specs)


def _unit_build(p: dict[str, Any], specs: Specs) -> GloReUnit:
    c, _, cs, n = _unit_sizes(p, specs)
    return GloReUnit(c, cs, n, dims=len(specs[0].shape) - 2, normalize=p["normalize"])


def _unit_flops(opdef: OpDef, p: dict[str, Any], specs: Specs) -> int:
    c, length, cs, n = _unit_sizes(p, specs)
    return 2 * specs[0].shape[0] * glore_macs(c, length, cs, n)


def _project_check(p: dict[str, Any], specs: Specs) -> None:
    states, proj = specs[0].shape, specs[1].shape
    if len(states) < 3 or len(states) != len(proj) or states[0] != proj[0] or states[2:] != proj[2:]:
        raise GraphError(f"states {specs[0]} and projection {specs[1]} must be (B, Cs, *S) and (B, N, *S) with "
                         "the same batch and positions; feed both from 1x1 convs of the same tensor")


def _reproject_check(p: dict[str, Any], specs: Specs) -> None:
    z, proj = specs[0].shape, specs[1].shape
    if len(z) != 3 or len(proj) < 3 or z[0] != proj[0] or z[2] != proj[1]:
        raise GraphError(f"node features {specs[0]} and projection {specs[1]} must be (B, Cs, N) and (B, N, *S) "
                         "with the same B and N; feed the projection that made the node features")


_NORMALIZE = flag("divide the projected node features by the number of positions L", False)

_unit = declare(
    "glore_unit", CATEGORY,
    "GloRe global reasoning unit (arXiv:1811.12814): project positions onto num_node graph nodes, reason with a "
    "graph convolution, project back and add to the input. Starts as the identity (BN weight 0).",
    params=named(num_state=integer("states per node, Cs (default C/2)", lo=1, optional=True),
                 num_node=integer("number of graph nodes, N (default C/4)", lo=1, optional=True),
                 normalize=_NORMALIZE),
    build=_unit_build, check=_unit_check, hint=_HINT, examples=[example((2, 8, 5, 5), num_state=4, num_node=2)])
registry.register(dataclasses.replace(_unit, flops=_unit_flops), replace=True)

declare("gcn_interaction", CATEGORY,
        "Graph convolution in GloRe's interaction space: node-wise Conv1d N->N with bias (learned adjacency) "
        "plus identity, ReLU, state-wise Conv1d Cs->Cs without bias. Sizes come from the input (B, Cs, N).",
        build=lambda p, specs: GCNInteraction(specs[0].shape[1], specs[0].shape[2]),
        check=need_rank(3, hint="(B, Cs, N)"), hint="(B, Cs, N)", examples=[example((2, 4, 3))], advanced=True)
declare("glore_project", CATEGORY,
        "GloRe projection V = Xs B^T: states (B, Cs, *S) times projection (B, N, *S) over positions -> (B, Cs, N).",
        params=named(normalize=_NORMALIZE), inputs=("states", "proj"),
        build=lambda p, specs: GloReProject(p["normalize"]), check=_project_check,
        hint="states (B, Cs, *S) and projection (B, N, *S)", examples=[example((2, 4, 5, 5), (2, 3, 5, 5))],
        advanced=True)
declare("glore_reproject", CATEGORY,
        "GloRe reverse projection Z B: node features (B, Cs, N) times projection (B, N, *S) -> (B, Cs, *S).",
        inputs=("nodes", "proj"), build=lambda p, specs: GloReReproject(), check=_reproject_check,
        hint="node features (B, Cs, N) and projection (B, N, *S)",
        examples=[example((2, 4, 3), (2, 3, 8, 8))], advanced=True)
