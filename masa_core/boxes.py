"""Axis-aligned ``x1, y1, x2, y2`` boxes: IoU and clipping, shared by detectors, trackers and metrics.

The degenerate-box rule, defined here once: a box whose width or height is zero or negative (or
below float64 epsilon) has IoU 0 with every box, itself included; so does a pair whose union is
empty. Batched NMS in torch code uses :func:`torchvision.ops.batched_nms` directly.
"""

from __future__ import annotations

import numpy as np

_EPS = float(np.finfo(np.float64).eps)


def box_iou(boxes1: np.ndarray, boxes2: np.ndarray) -> np.ndarray:
    """IoU matrix (N, M) float64 between (N, 4) and (M, 4) boxes; degenerate boxes give 0."""
    a = np.asarray(boxes1, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(boxes2, dtype=np.float64).reshape(-1, 4)
    iw = np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0])
    ih = np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1])
    inter = np.maximum(iw, 0) * np.maximum(ih, 0)
    area_a = _areas(a)
    area_b = _areas(b)
    union = area_a[:, None] + area_b[None] - inter
    valid = (area_a[:, None] > _EPS) & (area_b[None] > _EPS) & (union > _EPS)
    return np.where(valid, inter / np.where(valid, union, 1.0), 0.0)


def _areas(boxes: np.ndarray) -> np.ndarray:
    """(N,) areas; 0 where a box has a non-positive width or height."""
    wh = boxes[:, 2:] - boxes[:, :2]
    return np.where((wh > 0).all(axis=1), wh[:, 0] * wh[:, 1], 0.0)


def clip_boxes(boxes: np.ndarray, width: float, height: float) -> np.ndarray:
    """(N, 4) boxes with x clipped to [0, width] and y to [0, height], in the boxes' dtype."""
    boxes = np.asarray(boxes)
    dtype = boxes.dtype if np.issubdtype(boxes.dtype, np.floating) else np.float64
    return np.clip(boxes, 0, np.array([width, height, width, height], dtype=dtype)).astype(dtype, copy=False)
