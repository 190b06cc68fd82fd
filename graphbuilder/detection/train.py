"""A small, deterministic training loop for compiled detectors (any module mapping images to predictions).

Boundary: optimisation only (sampling, flips, AdamW with cosine decay, progress, Ctrl-C). The loss is
`fcos.detection_loss`; search-specific loops (two splits, architecture weights) are in `graphbuilder.search`.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from tqdm.auto import tqdm

from graphbuilder.detection.fcos import DetectionLayout, detection_loss


def sample_batch(dataset: Any, indices: torch.Tensor, flip: torch.Tensor | None = None
                 ) -> tuple[torch.Tensor, list[dict[str, torch.Tensor]]]:
    """Images (B, 3, H, W) and targets at `indices`; where `flip` is true the image and boxes are mirrored."""
    images = dataset.images[indices].clone()
    targets = []
    width = images.shape[-1]
    for k, i in enumerate(indices.tolist()):
        t = dataset.targets[i]
        boxes = t["boxes"]
        if flip is not None and bool(flip[k]):
            images[k] = images[k].flip(-1)
            boxes = torch.stack([width - boxes[:, 2], boxes[:, 1], width - boxes[:, 0], boxes[:, 3]], dim=1)
        targets.append({"boxes": boxes, "labels": t["labels"]})
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
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    model.train()
    losses: list[float] = []
    interrupted = False
    bar = tqdm(range(steps), desc=desc, disable=not progress, leave=False)
    try:
        for step in bar:
            for group in opt.param_groups:
                group["lr"] = cosine_lr(step, steps, lr)
            idx = torch.randint(len(dataset), (batch_size,), generator=gen)
            flip = torch.rand(batch_size, generator=gen) < 0.5
            images, targets = sample_batch(dataset, idx, flip)
            loss = detection_loss(model(images), targets, layout)["loss"]
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
            opt.step()
            losses.append(float(loss))
            bar.set_postfix(loss=f"{losses[-1]:.3f}")
    except KeyboardInterrupt:
        interrupted = True
    finally:
        bar.close()
    return {"losses": losses, "steps": len(losses), "interrupted": interrupted}
