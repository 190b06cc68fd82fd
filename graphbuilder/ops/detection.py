"""The one-stage detection predictor as a registered op (`det_predict`), shared over FPN levels.

Boundary: declaration only; the module is `graphbuilder/ops/modules/detection.py`, the box coding, losses,
NMS and evaluation that read its output are in `graphbuilder.detection`. Reference: FCOS (arXiv:1904.01355).

    >>> g = gb.Graph(); p3 = g.input("p3", shape=(2, 32, 8, 8)); p4 = g.input("p4", shape=(2, 32, 4, 4))
    >>> g.add("det_predict", p3, p4, num_classes=4).shape
    (2, 80, 9)
"""

from __future__ import annotations

from typing import Any

from graphbuilder.ir.errors import GraphError
from graphbuilder.ops.declare import Specs, channels, declare, example, named, number, size
from graphbuilder.ops.modules.detection import DetectionPredictor


def _check(params: dict[str, Any], specs: Specs) -> None:
    for i, spec in enumerate(specs):
        if len(spec.shape) != 4 or spec.shape[1] != specs[0].shape[1] or spec.shape[0] != specs[0].shape[0]:
            raise GraphError(f"input {i} has shape {spec}, input 0 {specs[0]}; connect the head's feature maps "
                             "(N, C, H_l, W_l), one per level, all with the same N and C")


declare("det_predict", "detection",
        "One-stage detection outputs shared over levels: 3x3 convs for class logits, box distances (l, t, r, b; "
        "distance = exp(v) * stride) and centerness, concatenated as (N, sum H*W, num_classes + 5).",
        params=named(num_classes=size("number of object classes"),
                     prior=number("initial foreground probability of the class logits (focal-loss prior)", 0.01,
                                  lo=1e-6, hi=0.5)),
        inputs=("levels",), variadic=True,
        build=lambda p, specs: DetectionPredictor(channels(specs), p["num_classes"], p["prior"]),
        check=_check, hint="one (N, C, H, W) feature map per level",
        examples=[example((2, 4, 8, 8), (2, 4, 4, 4), num_classes=3)])
