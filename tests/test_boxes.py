"""The one box IoU and its degenerate-box rule, and clipping."""

from __future__ import annotations

import numpy as np
import torch
from torchvision.ops import box_iou as torch_box_iou

from masa_core.boxes import box_iou, clip_boxes


def test_iou_matches_torchvision_on_proper_boxes():
    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 100, (20, 2))
    boxes = np.concatenate([xy, xy + rng.uniform(1, 50, (20, 2))], axis=1)
    expected = torch_box_iou(torch.from_numpy(boxes[:7]), torch.from_numpy(boxes)).numpy()
    np.testing.assert_allclose(box_iou(boxes[:7], boxes), expected, rtol=1e-12)


def test_degenerate_boxes_have_iou_zero_with_everything_even_themselves():
    proper = np.array([[0, 0, 10, 10]], np.float32)
    flat = np.array([[0, 0, 10, 0], [5, 5, 5, 9], [10, 10, 0, 0], [0, 10, 10, 0]], np.float32)
    assert np.all(box_iou(flat, np.concatenate([proper, flat])) == 0)
    assert box_iou(proper, proper)[0, 0] == 1.0


def test_empty_inputs_give_empty_matrices():
    assert box_iou(np.zeros((0, 4)), np.ones((3, 4))).shape == (0, 3)
    assert box_iou(np.ones((2, 4)), np.zeros((0, 4))).shape == (2, 0)


def test_clip_keeps_the_dtype_and_clips_each_axis_to_its_side():
    boxes = np.array([[-5, -1, 700, 500], [10, 20, 30, 40]], np.float32)
    out = clip_boxes(boxes, 640, 480)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, [[0, 0, 640, 480], [10, 20, 30, 40]])
