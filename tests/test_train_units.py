"""Training building blocks: views keep instance correspondences; the losses behave."""

from __future__ import annotations

import numpy as np
import torch

from masa_core.train.augment import AugmentConfig, instance_map, make_pair
from masa_core.train.losses import contrastive_loss


def test_views_keep_correspondences() -> None:
    rng = np.random.default_rng(0)
    masks = np.zeros((2, 80, 100), bool)
    masks[0, 10:40, 10:50] = True
    masks[1, 45:75, 55:95] = True
    image = rng.integers(0, 255, (80, 100, 3), dtype=np.uint8)
    cfg = AugmentConfig(out_size=64, mixup_prob=0.0, min_visible=0.0, min_area=1)
    a, b = make_pair(rng, image, instance_map(masks), cfg)
    for view in (a, b):
        for box, ident in zip(view.boxes, view.ids, strict=True):
            x1, y1, x2, y2 = box.astype(int)
            assert (view.id_map[y1:y2, x1:x2] == ident).any()
            assert set(np.unique(view.id_map)) - {0} >= {int(ident)}


def test_contrastive_loss_prefers_matching_embeddings() -> None:
    key = torch.eye(3)
    targets = torch.eye(3, dtype=torch.bool)
    good = contrastive_loss(key, key.clone(), targets)
    bad = contrastive_loss(key, key.roll(1, dims=0), targets)
    assert good < bad
