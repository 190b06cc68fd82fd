"""Small deterministic datasets built from bundled or generated data (no downloads).

    detection   COCO-format detection folders -> tensors, and a synthetic shapes-on-textures set
"""

from graphbuilder.datasets.detection import CocoDetection, make_synthetic_coco, synthetic_detection

__all__ = ["CocoDetection", "make_synthetic_coco", "synthetic_detection"]
