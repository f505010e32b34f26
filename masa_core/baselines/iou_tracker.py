"""IoU-only baseline tracker: Hungarian matching of boxes to each track's last box, no appearance.

This is the reference the MASA tracker is compared against (evaluation with given boxes and the
tracker benchmark). Each frame, the cost is ``1 - IoU`` between the detections and the last box of
every live track; :func:`scipy.optimize.linear_sum_assignment` solves it and pairs with an IoU
below ``iou_thr`` are rejected. Unmatched detections scoring at least ``init_score_thr`` start new
tracks; a track not matched for more than ``max_age`` frames is forgotten.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

from masa_core.boxes import box_iou


def _as_numpy(x: np.ndarray | torch.Tensor, shape: tuple[int, ...]) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=np.float64).reshape(shape)


class IouTracker:
    """Match detections to tracks by IoU with their last box (Hungarian), appearance ignored.

    iou_thr: smallest IoU a match may have. max_age: frames a track may go unmatched and still be
    matched (a track last seen at frame ``t`` can match up to frame ``t + max_age``).
    init_score_thr: unmatched detections scoring below this start no track and get id -1.
    """

    def __init__(self, iou_thr: float = 0.3, max_age: int = 10, init_score_thr: float = 0.0) -> None:
        self.iou_thr = float(iou_thr)
        self.max_age = int(max_age)
        self.init_score_thr = float(init_score_thr)
        self.reset()

    def reset(self) -> None:
        """Forget all tracks; ids start from 0 again."""
        self.boxes = np.zeros((0, 4))
        self.ids = np.zeros(0, dtype=np.int64)
        self.last = np.zeros(0, dtype=np.int64)
        self.next_id = 0

    def __len__(self) -> int:
        return len(self.ids)

    def update(
        self,
        boxes: np.ndarray | torch.Tensor,
        scores: np.ndarray | torch.Tensor | None,
        frame_id: int,
    ) -> np.ndarray:
        """Track one frame; returns (N,) int64 ids in input order (-1 only below ``init_score_thr``).

        ``boxes`` (N, 4) x1y1x2y2 and ``scores`` (N,) (None: all 1). ``frame_id`` must increase.
        """
        boxes = _as_numpy(boxes, (-1, 4))
        scores = np.ones(len(boxes)) if scores is None else _as_numpy(scores, (-1,))
        if len(scores) != len(boxes):
            raise ValueError(f"IouTracker.update: {len(boxes)} boxes but {len(scores)} scores")
        alive = frame_id - self.last <= self.max_age
        self.boxes, self.ids, self.last = self.boxes[alive], self.ids[alive], self.last[alive]

        ids = np.full(len(boxes), -1, dtype=np.int64)
        if len(self.ids) and len(boxes):
            iou = box_iou(boxes, self.boxes)
            rows, cols = linear_sum_assignment(1.0 - iou)
            ok = iou[rows, cols] >= self.iou_thr
            rows, cols = rows[ok], cols[ok]
            ids[rows] = self.ids[cols]
            self.boxes[cols] = boxes[rows]
            self.last[cols] = frame_id

        new = (ids == -1) & (scores >= self.init_score_thr)
        count = int(new.sum())
        ids[new] = np.arange(self.next_id, self.next_id + count)
        self.next_id += count
        self.boxes = np.concatenate([self.boxes, boxes[new]])
        self.ids = np.concatenate([self.ids, ids[new]])
        self.last = np.concatenate([self.last, np.full(count, frame_id, dtype=np.int64)])
        return ids
