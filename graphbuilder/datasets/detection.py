"""Detection data: any COCO-format folder as tensors, and two deterministic synthetic COCO-format sets.

Boundary: files in, tensors out. `CocoDetection` reads a COCO annotation file (``images``, ``annotations``,
``categories``) and an image folder, resizes every image to a fixed size and gives ``images`` (N, 3, H, W) in
[0, 1] and per-image targets (``boxes`` (G, 4) x1 y1 x2 y2 in resized pixels, ``labels`` (G,) in
0..num_classes-1). The synthetic set is written as PNGs + a COCO JSON and read back through the same loader,
so a user points the same code at a real COCO folder. COCO format: Lin et al. 2014 (arXiv:1405.0312).

Both synthetic sets draw coloured shapes (circle, square, triangle, cross, ring) on crops of scikit-learn's
bundled sample photographs (``load_sample_images``). Nothing is downloaded; a seed fixes every pixel.

* `synthetic_detection` (shapes): the class is the shape; objects of side 10-36 px in 64 px images. With the
  default level bounds (twice the stride) three quarters of the objects go to P3 and none to P5: a task
  where neck and head hardly matter (the null case of the trinity benchmark).
* `context_detection` (context): the class is the colour of a thin ring drawn *around* the object, a gap
  away from it; the object itself (random shape, random colour) says nothing about its class. Objects are
  6-44 px in 96 px images, a third per pyramid level under level bounds of one stride, and the ring sits at
  about three half-sides from the object's centre (less where the image is too small for it): a detector
  needs a receptive field of a few cells at every level to classify, which is where the neck and head
  come in.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from graphbuilder.ir.errors import GraphError

SHAPES = ("circle", "square", "triangle", "cross", "ring")

#: The context task's classes: the colour of the ring around an object.
CONTEXT_COLOURS: dict[str, tuple[float, float, float]] = {
    "red ring": (0.95, 0.1, 0.1), "green ring": (0.1, 0.85, 0.1), "blue ring": (0.15, 0.25, 1.0),
    "yellow ring": (0.95, 0.9, 0.1)}

#: Longer-side ranges (px) of the context task's objects, one per pyramid level: with level bounds of one
#: stride (half-sides 8 and 16) these go to P3, P4 and P5 respectively.
CONTEXT_SIDES: tuple[tuple[float, float], ...] = ((6.0, 15.5), (16.5, 31.5), (32.5, 44.0))

#: How often an object is drawn from each range of `CONTEXT_SIDES`. Large objects with their rings often
#: find no room beside the others and are skipped, so they are drawn more often: with these weights each
#: level holds about a third of the placed objects (measured on 512 images).
CONTEXT_LEVEL_WEIGHTS: tuple[float, ...] = (0.26, 0.36, 0.38)


class CocoDetection:
    """A COCO-format detection dataset held in memory as tensors.

    Args:
        annotations: path of a COCO JSON file, or the parsed dict.
        image_dir: folder holding the ``file_name`` of every image.
        image_size: (H, W) every image is resized to (boxes are scaled with it).
        skip_crowd: drop annotations with ``iscrowd=1`` from the training targets (they stay in `coco`).

    Attributes:
        images: (N, 3, H, W) float32 in [0, 1].
        targets: one ``{"boxes", "labels"}`` dict per image.
        coco: the annotation dict (original pixel coordinates), for pycocotools evaluation.
        image_ids, category_ids, class_names: COCO ids of the images, of each label 0..K-1, and names.
        scales: per image (sx, sy) from original to resized pixels.
    """

    def __init__(self, annotations: str | os.PathLike[str] | dict[str, Any], image_dir: str | os.PathLike[str],
                 image_size: int | tuple[int, int] = 64, skip_crowd: bool = True) -> None:
        from PIL import Image

        if isinstance(annotations, dict):
            coco = annotations
        else:
            with open(annotations, encoding="utf-8") as f:
                coco = json.load(f)
        for key in ("images", "annotations", "categories"):
            if key not in coco:
                raise GraphError(f"annotation file lacks {key!r}; a COCO detection file has images, annotations "
                                 "and categories")
        self.coco = coco
        h, w = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
        self.image_size = (h, w)
        cats = sorted(coco["categories"], key=lambda c: c["id"])
        self.category_ids = [c["id"] for c in cats]
        self.class_names = [c.get("name", str(c["id"])) for c in cats]
        label_of = {cid: i for i, cid in enumerate(self.category_ids)}
        by_image: dict[int, list[dict[str, Any]]] = {}
        for ann in coco["annotations"]:
            by_image.setdefault(ann["image_id"], []).append(ann)
        images, self.targets, self.image_ids, self.scales = [], [], [], []
        for info in coco["images"]:
            path = os.path.join(os.fspath(image_dir), info["file_name"])
            try:
                with Image.open(path) as im:
                    rgb = im.convert("RGB")
                    ow, oh = rgb.size
                    arr = np.asarray(rgb.resize((w, h), Image.BILINEAR), dtype=np.float32) / 255.0
            except OSError as e:
                raise GraphError(f"cannot read image {path!r} listed in the annotations: {e}") from None
            sx, sy = w / ow, h / oh
            boxes, labels = [], []
            for ann in by_image.get(info["id"], []):
                if skip_crowd and ann.get("iscrowd", 0):
                    continue
                x, y, bw, bh = ann["bbox"]
                if bw <= 0 or bh <= 0:
                    continue
                boxes.append([x * sx, y * sy, (x + bw) * sx, (y + bh) * sy])
                labels.append(label_of[ann["category_id"]])
            images.append(torch.from_numpy(arr).permute(2, 0, 1))  # (3, H, W)
            self.targets.append({"boxes": torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
                                 "labels": torch.tensor(labels, dtype=torch.long)})
            self.image_ids.append(info["id"])
            self.scales.append((sx, sy))
        self.images = torch.stack(images) if images else torch.zeros(0, 3, h, w)

    @property
    def num_classes(self) -> int:
        """Number of categories."""
        return len(self.category_ids)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        return self.images[i], self.targets[i]

    def subset(self, indices: Sequence[int]) -> CocoDetection:
        """A dataset with only the images at `indices` (annotations filtered to match)."""
        keep = [self.image_ids[i] for i in indices]
        ids = set(keep)
        new = object.__new__(CocoDetection)
        new.coco = {**self.coco, "images": [im for im in self.coco["images"] if im["id"] in ids],
                    "annotations": [a for a in self.coco["annotations"] if a["image_id"] in ids]}
        new.image_size, new.category_ids, new.class_names = self.image_size, self.category_ids, self.class_names
        new.images = self.images[list(indices)]
        new.targets = [self.targets[i] for i in indices]
        new.image_ids = keep
        new.scales = [self.scales[i] for i in indices]
        return new


def _shape_mask(kind: str, h: int, w: int) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    u, v = (xx + 0.5) / w * 2 - 1, (yy + 0.5) / h * 2 - 1  # in [-1, 1]
    if kind == "circle":
        return u * u + v * v <= 1.0
    if kind == "square":
        return np.ones((h, w), dtype=bool)
    if kind == "triangle":
        return (v >= -1) & (np.abs(u) <= (v + 1) / 2)
    if kind == "cross":
        return (np.abs(u) <= 0.3) | (np.abs(v) <= 0.3)
    if kind == "ring":
        r = u * u + v * v
        return (r <= 1.0) & (r >= 0.35)
    raise GraphError(f"unknown shape {kind!r}; choose from {SHAPES}")


def _backgrounds() -> list[np.ndarray]:
    from sklearn.datasets import load_sample_images

    return [np.asarray(im, dtype=np.float32) / 255.0 for im in load_sample_images().images]


def _overlap(a: list[float], b: list[float]) -> float:
    """Intersection over the smaller box's area: 1 when one box hides inside the other."""
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    return iw * ih / min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))


def _background(rng: np.random.Generator, backgrounds: list[np.ndarray], image_size: int) -> np.ndarray:
    """A random crop of a sample photograph, resized to the image and with its contrast halved."""
    from PIL import Image

    bg = backgrounds[rng.integers(len(backgrounds))]
    crop = int(rng.integers(image_size, min(bg.shape[:2]) + 1))
    y0, x0 = rng.integers(bg.shape[0] - crop + 1), rng.integers(bg.shape[1] - crop + 1)
    patch = (bg[y0:y0 + crop, x0:x0 + crop] * 255).astype(np.uint8)
    img = np.asarray(Image.fromarray(patch).resize((image_size, image_size), Image.BILINEAR), np.float32) / 255
    return 0.25 + 0.5 * img  # lower the texture's contrast so objects stay visible


def _vivid(rng: np.random.Generator) -> np.ndarray:
    colour = rng.uniform(0, 1, 3)
    colour[rng.integers(3)] = rng.choice([0.0, 1.0])  # saturate one channel: vivid against the texture
    return colour


def _paint(img: np.ndarray, kind: str, box: list[int], colour: np.ndarray) -> list[float]:
    """Paint shape `kind` filling `box` = [x, y, w, h]; returns its tight COCO box [x, y, w, h]."""
    x, y, w, h = box
    mask = _shape_mask(kind, h, w)
    img[y:y + h, x:x + w][mask] = colour
    ys, xs = np.nonzero(mask)
    return [float(x + xs.min()), float(y + ys.min()), float(xs.max() - xs.min() + 1), float(ys.max() - ys.min() + 1)]


def render_image(rng: np.random.Generator, backgrounds: list[np.ndarray], image_size: int, classes: Sequence[str],
                 objects: tuple[int, int], sizes: tuple[int, int], max_overlap: float = 0.25
                 ) -> tuple[np.ndarray, list[tuple[list[float], int]]]:
    """One synthetic image (H, W, 3) in [0, 1] and its objects as ([x, y, w, h], class index)."""
    img = _background(rng, backgrounds, image_size)
    placed: list[tuple[list[float], int]] = []
    for _ in range(int(rng.integers(objects[0], objects[1] + 1))):
        for _attempt in range(20):
            side = rng.uniform(sizes[0], sizes[1])
            aspect = rng.uniform(0.7, 1.4)
            w = int(max(4, min(image_size, round(side * np.sqrt(aspect)))))
            h = int(max(4, min(image_size, round(side / np.sqrt(aspect)))))
            x, y = int(rng.integers(0, image_size - w + 1)), int(rng.integers(0, image_size - h + 1))
            box = [float(x), float(y), float(x + w), float(y + h)]
            if all(_overlap(box, [b[0], b[1], b[0] + b[2], b[1] + b[3]]) <= max_overlap for b, _ in placed):
                break
        else:
            continue
        cls = int(rng.integers(len(classes)))
        placed.append((_paint(img, classes[cls], [x, y, w, h], _vivid(rng)), cls))
    return img, placed


def render_context_image(rng: np.random.Generator, backgrounds: list[np.ndarray], image_size: int,
                         colours: Sequence[tuple[float, float, float]], objects: tuple[int, int],
                         sides: Sequence[tuple[float, float]] = CONTEXT_SIDES, ring: tuple[float, float] = (2.6, 3.2),
                         level_weights: Sequence[float] = CONTEXT_LEVEL_WEIGHTS
                         ) -> tuple[np.ndarray, list[tuple[list[float], int]]]:
    """One context-task image (H, W, 3) in [0, 1] and its objects as ([x, y, w, h], class index).

    Each object draws its level uniformly (one range of `sides` per level), a longer side in that range, an
    aspect ratio in [0.7, 1.4], a random shape and a random vivid colour. Its class is the colour of a ring
    (`colours`) centred on it, of radius ``ring`` times its half longer side (capped so the ring stays in
    the image) and width about a fifth of that half-side. Objects are placed largest first; no object's box
    may touch another object's ring area, so every ring is read unambiguously.
    """
    img = _background(rng, backgrounds, image_size)
    yy, xx = np.mgrid[0:image_size, 0:image_size].astype(np.float32) + 0.5
    placed: list[tuple[list[float], int]] = []
    areas: list[list[float]] = []  # [x1, y1, x2, y2] of each placed object's ring
    for _ in range(int(rng.integers(objects[0], objects[1] + 1))):
        lo, hi = sides[int(rng.choice(len(sides), p=level_weights))]
        side = float(rng.uniform(lo, hi))
        aspect = rng.uniform(0.7, 1.4)
        w, h = (side, side / aspect) if aspect >= 1 else (side * aspect, side)
        w, h = int(max(3, round(w))), int(max(3, round(h)))
        half = max(w, h) / 2
        width = max(1.5, 0.2 * half)
        for _attempt in range(30):
            radius = min(half * rng.uniform(*ring), image_size / 2 - width - 1)
            reach = radius + width
            if reach <= half + width:
                break  # no room for a ring around an object this large
            cx = rng.uniform(reach, image_size - reach)
            cy = rng.uniform(reach, image_size - reach)
            x, y = int(round(cx - w / 2)), int(round(cy - h / 2))
            box = [float(x), float(y), float(x + w), float(y + h)]
            area = [cx - reach, cy - reach, cx + reach, cy + reach]
            clear = all(_disjoint(box, a) for a in areas) and all(
                _disjoint(area, [b[0], b[1], b[0] + b[2], b[1] + b[3]]) for b, _ in placed)
            if clear:
                cls = int(rng.integers(len(colours)))
                dist = np.sqrt((xx - cx) ** 2 + (yy - cy) ** 2)
                img[np.abs(dist - radius) <= width / 2] = colours[cls]
                kind = SHAPES[int(rng.integers(len(SHAPES)))]
                placed.append((_paint(img, kind, [x, y, w, h], _vivid(rng)), cls))
                areas.append(area)
                break
    return img, placed


def _disjoint(a: list[float], b: list[float]) -> bool:
    return a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1]


def _write_coco(folder: str | os.PathLike[str], split: str, images: Any, classes: Sequence[str],
                description: str, supercategory: str) -> str:
    """Write (image, objects) pairs as ``{split}/{id:05d}.png`` plus ``{split}.json``; returns the JSON path."""
    from PIL import Image

    folder = os.fspath(folder)
    os.makedirs(os.path.join(folder, split), exist_ok=True)
    entries, annotations = [], []
    for i, (img, objs) in enumerate(images):
        name = f"{split}/{i:05d}.png"
        Image.fromarray((img * 255).round().astype(np.uint8)).save(os.path.join(folder, name))
        entries.append({"id": i + 1, "file_name": name, "width": img.shape[1], "height": img.shape[0]})
        for bbox, cls in objs:
            annotations.append({"id": len(annotations) + 1, "image_id": i + 1, "category_id": cls + 1,
                                "bbox": bbox, "area": bbox[2] * bbox[3], "iscrowd": 0})
    coco = {"info": {"description": description}, "images": entries, "annotations": annotations,
            "categories": [{"id": i + 1, "name": n, "supercategory": supercategory} for i, n in enumerate(classes)]}
    path = os.path.join(folder, f"{split}.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump(coco, f)
    return path


def _check_counts(objects: tuple[int, int]) -> None:
    if not 1 <= objects[0] <= objects[1]:
        raise GraphError(f"objects={objects} must be (min, max) with 1 <= min <= max")


def make_synthetic_coco(folder: str | os.PathLike[str], num_images: int, image_size: int = 64, seed: int = 0,
                        classes: Sequence[str] = SHAPES[:4], objects: tuple[int, int] = (1, 4),
                        sizes: tuple[int, int] = (10, 36), split: str = "train") -> str:
    """Write `num_images` shapes-task images as PNGs plus a COCO JSON into `folder`; returns the JSON path.

    Images are ``{split}/{id:05d}.png``; the file is ``{split}.json``. Every pixel and box follows from `seed`.
    """
    _check_counts(objects)
    if not 2 <= sizes[0] <= sizes[1] <= image_size:
        raise GraphError(f"sizes={sizes} must be (min, max) object sides with 2 <= min <= max <= image_size")
    for name in classes:
        _shape_mask(name, 2, 2)
    rng = np.random.default_rng(seed)
    backgrounds = _backgrounds()
    images = (render_image(rng, backgrounds, image_size, classes, objects, sizes) for _ in range(num_images))
    return _write_coco(folder, split, images, classes, f"GraphBuilder synthetic shapes, seed {seed}", "shape")


def make_context_coco(folder: str | os.PathLike[str], num_images: int, image_size: int = 96, seed: int = 0,
                      classes: Sequence[str] = tuple(CONTEXT_COLOURS), objects: tuple[int, int] = (1, 3),
                      sides: Sequence[tuple[float, float]] = CONTEXT_SIDES, ring: tuple[float, float] = (2.6, 3.2),
                      split: str = "train") -> str:
    """Write `num_images` context-task images (`render_context_image`) as PNGs plus a COCO JSON into
    `folder`; returns the JSON path. `classes` are keys of `CONTEXT_COLOURS`."""
    _check_counts(objects)
    unknown = [c for c in classes if c not in CONTEXT_COLOURS]
    if unknown:
        raise GraphError(f"unknown context classes {unknown}; choose from {list(CONTEXT_COLOURS)}")
    if not all(2 <= lo <= hi <= image_size for lo, hi in sides):
        raise GraphError(f"sides={sides} must be (min, max) longer sides with 2 <= min <= max <= image_size")
    rng = np.random.default_rng(seed)
    backgrounds = _backgrounds()
    colours = [CONTEXT_COLOURS[c] for c in classes]
    images = (render_context_image(rng, backgrounds, image_size, colours, objects, sides, ring)
              for _ in range(num_images))
    return _write_coco(folder, split, images, classes, f"GraphBuilder synthetic context rings, seed {seed}",
                      "context")


def synthetic_detection(num_train: int = 256, num_val: int = 64, image_size: int = 64, seed: int = 0,
                        folder: str | os.PathLike[str] | None = None, **kw: Any
                        ) -> tuple[CocoDetection, CocoDetection]:
    """Train and validation `CocoDetection` sets of synthetic shapes, written to `folder` (default: a new
    temporary folder) and read back through the COCO loader. Extra keywords go to `make_synthetic_coco`."""
    folder = os.fspath(folder) if folder is not None else tempfile.mkdtemp(prefix="gb-shapes-")
    train_json = make_synthetic_coco(folder, num_train, image_size, seed, split="train", **kw)
    val_json = make_synthetic_coco(folder, num_val, image_size, seed + 10_000, split="val", **kw)
    return (CocoDetection(train_json, folder, image_size), CocoDetection(val_json, folder, image_size))


def context_detection(num_train: int = 512, num_val: int = 256, image_size: int = 96, seed: int = 0,
                      folder: str | os.PathLike[str] | None = None, **kw: Any) -> tuple[CocoDetection, CocoDetection]:
    """Train and validation `CocoDetection` sets of the context task (`make_context_coco`), written to
    `folder` (default: a new temporary folder) and read back through the COCO loader."""
    folder = os.fspath(folder) if folder is not None else tempfile.mkdtemp(prefix="gb-context-")
    train_json = make_context_coco(folder, num_train, image_size, seed, split="train", **kw)
    val_json = make_context_coco(folder, num_val, image_size, seed + 10_000, split="val", **kw)
    return (CocoDetection(train_json, folder, image_size), CocoDetection(val_json, folder, image_size))
