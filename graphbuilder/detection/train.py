"""A small, deterministic training loop for compiled detectors (any module mapping images to predictions).

Boundary: optimisation only (sampling, flips, AdamW with cosine decay, progress, Ctrl-C). The loss is
`fcos.detection_loss`; search-specific loops (two splits, architecture weights) are in `graphbuilder.search`.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from tqdm.auto import tqdm

from graphbuilder.detection.fcos import DetectionLayout, assign, detection_loss


class Batches:
    """Random training batches of a detection dataset with horizontal flips, from a seeded generator.

    FCOS targets are assigned once per (image, flip) and cached, so later epochs skip the assignment.
    """

    def __init__(self, dataset: Any, layout: DetectionLayout, batch_size: int, seed: int,
                 indices: list[int] | None = None, flip: bool = True) -> None:
        self.dataset, self.layout, self.batch_size, self.flip = dataset, layout, batch_size, flip
        self.indices = torch.tensor(indices if indices is not None else range(len(dataset)), dtype=torch.long)
        self.generator = torch.Generator().manual_seed(seed)
        self._cache: dict[tuple[int, bool], tuple[torch.Tensor, torch.Tensor]] = {}

    def next(self) -> tuple[torch.Tensor, list[dict[str, torch.Tensor]]]:
        """One batch: images (B, 3, H, W) and targets (``boxes``, ``labels``, cached ``assigned``)."""
        pick = self.indices[torch.randint(len(self.indices), (self.batch_size,), generator=self.generator)]
        flips = torch.rand(self.batch_size, generator=self.generator) < 0.5
        images = self.dataset.images[pick].clone()
        width = images.shape[-1]
        targets = []
        for k, i in enumerate(pick.tolist()):
            t = self.dataset.targets[i]
            boxes = t["boxes"]
            flipped = self.flip and bool(flips[k])
            if flipped:
                images[k] = images[k].flip(-1)
                boxes = torch.stack([width - boxes[:, 2], boxes[:, 1], width - boxes[:, 0], boxes[:, 3]], dim=1)
            key = (i, flipped)
            if key not in self._cache:
                self._cache[key] = assign(self.layout, boxes.float(), t["labels"].long())
            targets.append({"boxes": boxes, "labels": t["labels"], "assigned": self._cache[key]})
        return images, targets


def cosine_lr(step: int, total: int, base: float, warmup: int = 20) -> float:
    """Linear warm-up over `warmup` steps, then cosine decay to 5% of `base`."""
    if step < warmup:
        return base * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return base * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


def train_detector(model: torch.nn.Module, dataset: Any, layout: DetectionLayout, steps: int, batch_size: int = 16,
                   lr: float = 3e-3, weight_decay: float = 1e-4, seed: int = 0, progress: bool = True,
                   desc: str = "train") -> dict[str, Any]:
    """Train `model` in place with AdamW; returns ``{"losses": [...], "steps": n, "interrupted": bool}``.

    Batches are drawn with a generator seeded by `seed` (same seed, same run). Ctrl-C stops early and
    returns what was done so far.
    """
    batches = Batches(dataset, layout, batch_size, seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    model.train()
    losses: list[float] = []
    interrupted = False
    bar = tqdm(range(steps), desc=desc, disable=not progress, leave=False)
    try:
        for step in bar:
            for group in opt.param_groups:
                group["lr"] = cosine_lr(step, steps, lr)
            images, targets = batches.next()
            loss = detection_loss(model(images), targets, layout)["loss"]
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
            opt.step()
            losses.append(float(loss.detach()))
            bar.set_postfix(loss=f"{losses[-1]:.3f}")
    except KeyboardInterrupt:
        interrupted = True
    finally:
        bar.close()
    return {"losses": losses, "steps": len(losses), "interrupted": interrupted}
