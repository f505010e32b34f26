"""The detector protocol: an RGB frame in, boxes with scores and class labels out."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np


@dataclass(frozen=True)
class Detections:
    """Boxes found in one frame.

    boxes: (N, 4) float32, x1, y1, x2, y2 in pixels of the frame given to the detector.
    scores: (N,) float32 confidence in [0, 1].
    labels: (N,) int64 class index into the detector's ``class_names`` (0 when class-agnostic).
    """

    boxes: np.ndarray
    scores: np.ndarray
    labels: np.ndarray = field(default=None)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        boxes = np.asarray(self.boxes, dtype=np.float32).reshape(-1, 4)
        scores = np.asarray(self.scores, dtype=np.float32).reshape(-1)
        labels = (
            np.zeros(len(boxes), dtype=np.int64)
            if self.labels is None
            else np.asarray(self.labels, dtype=np.int64).reshape(-1)
        )
        if not (len(boxes) == len(scores) == len(labels)):
            raise ValueError(
                f"Detections need as many scores and labels as boxes: got {len(boxes)} boxes, "
                f"{len(scores)} scores, {len(labels)} labels"
            )
        object.__setattr__(self, "boxes", boxes)
        object.__setattr__(self, "scores", scores)
        object.__setattr__(self, "labels", labels)

    def __len__(self) -> int:
        return len(self.boxes)

    @classmethod
    def empty(cls) -> Detections:
        return cls(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64))

    def select(self, keep: np.ndarray) -> Detections:
        """The detections picked by a boolean mask or an index array."""
        return Detections(self.boxes[keep], self.scores[keep], self.labels[keep])


@runtime_checkable
class Detector(Protocol):
    """Anything that finds boxes in an RGB frame.

    ``frame`` is (H, W, 3) uint8 RGB; ``frame_index`` counts from 0 and lets file-backed detectors
    look up their rows. ``class_names[label]`` names a label.
    """

    class_names: tuple[str, ...]

    def __call__(self, frame: np.ndarray, frame_index: int) -> Detections: ...
