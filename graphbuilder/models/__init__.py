"""Networks from the papers as editable graphs: `gb.models.micronet("M0")`, `gb.models.oct_resnet50(0.25)`, ...

    micronet(variant)          MicroNet M0-M3 (arXiv:2011.12289)
    oct_resnet50(alpha)        OctResNet-50 (arXiv:1904.05049)
    glore_resnet50(preset)     ResNet-50 with GloRe units (arXiv:1811.12814)
    dy_mobilenet_v2(width)     DY-MobileNetV2 (arXiv:1912.03458); mobilenet_v2(width) is the static one
    deepvit(depth)             DeepViT-16/24/32 with re-attention (arXiv:2103.11886)
    resnet50()                 ResNet-50 v1.5, the baseline of the ResNet variants

Each returns an ordinary `gb.Graph` (stages and blocks are block nodes) that compiles, exports and opens in
the editor, whose palette lists them under "networks" (`catalog.palette`). `catalog.table()` (or
``python -m graphbuilder.models``) prints each network's parameters and multiply-adds beside its paper's.

Boundary: builds IR graphs through the public API and `gb.passes`; never imports the compiler.
"""

from graphbuilder.models.catalog import NETWORKS, Network, build, compare, palette, table
from graphbuilder.models.micronet import micronet
from graphbuilder.models.mobilenet import dy_mobilenet_v2, mobilenet_v2
from graphbuilder.models.resnet import glore_resnet50, oct_resnet50, resnet50
from graphbuilder.models.vit import deepvit

__all__ = ["NETWORKS", "Network", "build", "compare", "deepvit", "dy_mobilenet_v2", "glore_resnet50", "micronet",
           "mobilenet_v2", "oct_resnet50", "palette", "resnet50", "table"]
