"""IouTracker: the IoU + Hungarian baseline."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from masa_core.baselines.iou_tracker import IouTracker
from masa_core.boxes import box_iou


def box(x: float, y: float, w: float = 20.0, h: float = 40.0) -> list[float]:
    return [x, y, x + w, y + h]


def test_box_iou() -> None:
    a = np.array([box(0, 0, 10, 10)], float)
    b = np.array([box(0, 0, 10, 10), box(5, 0, 10, 10), box(50, 50, 10, 10), [3, 3, 3, 3]], float)
    np.testing.assert_allclose(box_iou(a, b), [[1.0, 50 / 150, 0.0, 0.0]])


def test_moving_box_keeps_identity() -> None:
    tracker = IouTracker()
    ids = [int(tracker.update(np.array([box(10 + 3 * t, 50)]), np.ones(1), t)[0]) for t in range(30)]
    assert ids == [0] * 30


def test_two_objects_ids_in_input_order() -> None:
    tracker = IouTracker()
    first = tracker.update(np.array([box(0, 0), box(200, 0)]), np.ones(2), 0)
    assert first.tolist() == [0, 1]
    swapped = tracker.update(torch.tensor([box(202, 1), box(2, 1)]), torch.ones(2), 1)
    assert swapped.dtype == np.int64 and swapped.tolist() == [1, 0]


def test_new_id_after_max_age() -> None:
    tracker = IouTracker(max_age=3)
    assert tracker.update(np.array([box(0, 0)]), np.ones(1), 0).tolist() == [0]
    # unseen for frames 1..2, matched again at frame 3 = last seen + max_age
    assert tracker.update(np.array([box(1, 0)]), np.ones(1), 3).tolist() == [0]
    # unseen for frames 4..7: frame 8 is more than max_age after frame 3 -> forgotten
    assert tracker.update(np.array([box(1, 0)]), np.ones(1), 8).tolist() == [1]


def test_match_below_iou_thr_rejected() -> None:
    tracker = IouTracker(iou_thr=0.5)
    tracker.update(np.array([box(0, 0)]), np.ones(1), 0)
    # shifted by 10 of 20 px wide: IoU = 1/3 < 0.5
    assert tracker.update(np.array([box(10, 0)]), np.ones(1), 1).tolist() == [1]
    assert IouTracker(iou_thr=0.3).update(np.array([box(0, 0)]), None, 0).tolist() == [0]


def test_crossing_boxes_keep_ids_when_own_overlap_is_larger() -> None:
    """A walks right along y=0, B walks left along y=10: they pass through each other, and every frame
    each box overlaps its own last box (IoU 0.43) more than the other's (at most 0.29)."""
    tracker = IouTracker()
    for t in range(21):
        a, b = box(8 * t, 0), box(160 - 8 * t, 10)
        assert tracker.update(np.array([a, b]), np.ones(2), t).tolist() == [0, 1], f"frame {t}"


def test_crossing_boxes_swap_when_overlap_says_so() -> None:
    tracker = IouTracker()
    tracker.update(np.array([box(0, 0), box(12, 0)]), np.ones(2), 0)
    # each detection now overlaps the other track's last box more: IoU swaps identities
    assert tracker.update(np.array([box(12, 0), box(0, 0)]), np.ones(2), 1).tolist() == [1, 0]


def test_empty_frames() -> None:
    tracker = IouTracker()
    out = tracker.update(np.zeros((0, 4)), np.zeros(0), 0)
    assert out.shape == (0,) and out.dtype == np.int64
    tracker.update(np.array([box(0, 0)]), np.ones(1), 1)
    assert tracker.update(np.zeros((0, 4)), np.zeros(0), 2).shape == (0,)
    assert len(tracker) == 1
    assert tracker.update(np.array([box(0, 0)]), np.ones(1), 3).tolist() == [0]


def test_init_score_thr_and_reset() -> None:
    tracker = IouTracker(init_score_thr=0.5)
    assert tracker.update(np.array([box(0, 0), box(100, 0)]), np.array([0.9, 0.2]), 0).tolist() == [0, -1]
    tracker.reset()
    assert len(tracker) == 0
    assert tracker.update(np.array([box(100, 0)]), np.array([0.9]), 1).tolist() == [0]


def test_mismatched_scores_raise() -> None:
    with pytest.raises(ValueError, match="scores"):
        IouTracker().update(np.array([box(0, 0)]), np.ones(2), 0)
