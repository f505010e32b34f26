"""Tiny synthetic unlabeled images with SA-1B-style mask files, for the training tests."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from masa_core.formats import rle


def write_images(folder: Path, count: int = 4, size: tuple[int, int] = (96, 128), seed: int = 0) -> Path:
    """``count`` noisy images, each with 3-6 filled shapes, and a ``<stem>.json`` of their masks."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    h, w = size
    for n in range(count):
        image = rng.integers(0, 60, (h, w, 3), dtype=np.uint8)
        anns = []
        for _ in range(int(rng.integers(3, 7))):
            mask = np.zeros((h, w), np.uint8)
            cx, cy = int(rng.integers(10, w - 10)), int(rng.integers(10, h - 10))
            ax, ay = int(rng.integers(6, w // 4)), int(rng.integers(6, h // 4))
            if rng.random() < 0.5:
                cv2.ellipse(mask, (cx, cy), (ax, ay), float(rng.uniform(0, 180)), 0, 360, 1, -1)
            else:
                cv2.rectangle(mask, (cx - ax, cy - ay), (cx + ax, cy + ay), 1, -1)
            colour = rng.integers(80, 256, 3)
            texture = rng.integers(0, 40, (h, w, 3))
            image[mask > 0] = np.clip(colour + texture, 0, 255).astype(np.uint8)[mask > 0]
            m = mask > 0
            ys, xs = np.nonzero(m)
            anns.append(
                {
                    "segmentation": rle.encode(m),
                    "bbox": [float(xs.min()), float(ys.min()), float(np.ptp(xs) + 1), float(np.ptp(ys) + 1)],
                    "area": int(m.sum()),
                }
            )
        cv2.imwrite(str(folder / f"img{n:02d}.png"), image[..., ::-1])
        (folder / f"img{n:02d}.json").write_text(json.dumps({"image": {"height": h, "width": w}, "annotations": anns}))
    return folder


def tiny_config(images: Path, out: Path, **extra: object) -> dict:
    """A run of a few seconds per epoch: 64-pixel views, few samples."""
    cfg = {
        "model": {"device": "cpu", "seed": 0, "checkpoint": "untrained"},
        "data": {"images": str(images), "holdout_every": 0, "augment": {"out_size": 64, "mixup_prob": 0.0}},
        "optim": {"lr": 0.01, "warmup_iters": 1, "grad_clip": 5.0},
        "track": {"samples": 16, "jitter_copies": 2},
        "detection": {"rpn_num": 64, "roi_num": 32},
        "batch_size": 1,
        "epochs": 2,
        "out_dir": str(out),
        "threads": 1,
    }
    for key, value in extra.items():
        cfg[key] = value
    return cfg
