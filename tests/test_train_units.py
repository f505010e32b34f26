"""Training building blocks: views keep instance correspondences; the losses behave."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from masa_core.train.augment import AugmentConfig, instance_map, make_pair
from masa_core.train.losses import auxiliary_l2_loss, contrastive_loss, nested_pairs


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


@pytest.mark.parametrize("seed", range(12))
def test_a_point_and_its_instance_land_on_the_same_place_in_both_views(seed: int) -> None:
    """Property: a source pixel well inside instance k maps, through each view's matrix, onto a view
    pixel whose ID is k, whose box holds it, and whose colour is the source colour (jitter off)."""
    rng = np.random.default_rng(seed)
    h, w = 90, 120
    masks = np.zeros((3, h, w), bool)
    masks[0, 5:45, 8:60] = True
    cv2.circle(masks[1].view(np.uint8), (85, 55), 25, 1, -1)
    masks[2, 60:85, 10:50] = True
    yy, xx = np.mgrid[0:h, 0:w]
    image = np.stack([xx * 2, yy * 2, (xx + yy)], axis=-1).astype(np.uint8)  # smooth: bilinear ≈ exact
    cfg = AugmentConfig(
        out_size=96, mixup_prob=0.0, min_visible=0.0, min_area=1, brightness=0, contrast=0, saturation=0, hue_deg=0
    )
    a, b = make_pair(rng, image, instance_map(masks), cfg)
    checked = 0
    for k, mask in enumerate(masks, start=1):
        inner = cv2.erode(mask.astype(np.uint8), np.ones((9, 9), np.uint8)) > 0  # away from the edges
        ys, xs = np.nonzero(inner)
        pick = rng.choice(len(xs), 20, replace=False)
        for view in (a, b):
            for x, y in zip(xs[pick], ys[pick], strict=True):
                u, v = (view.matrix @ np.array([x, y, 1.0])).round().astype(int)
                if not (0 <= u < cfg.out_size and 0 <= v < cfg.out_size):
                    continue  # cropped out of this view
                assert view.id_map[v, u] == k
                assert np.abs(view.image[v, u].astype(int) - image[y, x].astype(int)).max() <= 6
                if k in view.ids:
                    x1, y1, x2, y2 = view.boxes[list(view.ids).index(k)]
                    assert x1 <= u < x2 and y1 <= v < y2
                checked += 1
    assert checked > 0


def test_contrastive_loss_prefers_matching_embeddings() -> None:
    key = torch.eye(3)
    targets = torch.eye(3, dtype=torch.bool)
    good = contrastive_loss(key, key.clone(), targets)
    bad = contrastive_loss(key, key.roll(1, dims=0), targets)
    assert good < bad


def test_nested_boxes_are_found_both_ways() -> None:
    boxes = torch.tensor([[0.0, 0, 100, 200], [20, 40, 60, 100], [150, 0, 250, 100], [90, 0, 160, 50]])
    nested = nested_pairs(boxes, 0.9)
    assert nested[0, 1] and nested[1, 0]  # a coat inside its person, either way round
    assert not nested[0, 2] and not nested[0, 3] and not nested[2, 3]  # apart / only overlapping
    assert not nested.diagonal().any()


def test_ignored_pairs_are_not_negatives() -> None:
    key = torch.tensor([[1.0, 0.0]])
    ref = torch.tensor([[1.0, 0.0], [0.9, 0.1]])  # the same instance, and a part of it that looks alike
    targets = torch.tensor([[True, False]])
    ignore = torch.tensor([[False, True]])
    with_part = contrastive_loss(key, ref, targets)
    assert contrastive_loss(key, ref, targets, ignore=ignore) < with_part
    assert torch.isclose(
        contrastive_loss(key, ref, targets, ignore=ignore), contrastive_loss(key, ref[:1], targets[:, :1])
    )
    assert auxiliary_l2_loss(key, ref, targets, ignore=ignore) < auxiliary_l2_loss(key, ref, targets)
