"""Small deterministic datasets built from bundled or generated data (no downloads).

    detection   COCO-format detection folders -> tensors, and two synthetic sets (shapes; context rings)
    relational  two shapes far apart: same colour / same shape? (a task needing global reasoning)
    images      next_pixel and image_function on grayscale photos and a generated image (prune/grow, arXiv:2108.02231)
"""

from graphbuilder.datasets.detection import (
    CocoDetection,
    context_detection,
    make_context_coco,
    make_synthetic_coco,
    synthetic_detection,
)
from graphbuilder.datasets.images import image_function, next_pixel, sample_image, smooth_edge
from graphbuilder.datasets.relational import relational_shapes

__all__ = ["CocoDetection", "context_detection", "make_context_coco", "make_synthetic_coco", "synthetic_detection"]
__all__ += ["relational_shapes"]
__all__ += ["image_function", "next_pixel", "sample_image", "smooth_edge"]
