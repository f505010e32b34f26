"""Detections given from outside: a MOTChallenge det/gt file, a mapping, or pushed per frame."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from masa_core.detectors.base import Detections
from masa_core.formats.mot import read_mot


class GivenDetector:
    """Class-agnostic detector that returns boxes it was given instead of looking at the frame.

    Sources, in priority order for each call:

    1. detections pushed with :meth:`set_next` (used once, by the next call);
    2. the per-frame table: from a MOTChallenge file (``frame_index`` 0 is file frame 1) and/or a
       mapping {frame_index (0-based): Detections}, extended with :meth:`set_frame`.

    Frames without rows give empty Detections. ``min_score`` drops rows scoring below it (MOT15
    DPM det files have unbounded scores; they are passed through unchanged otherwise).
    """

    class_names: tuple[str, ...] = ("object",)

    def __init__(
        self,
        source: str | Path | Mapping[int, Detections] | None = None,
        min_score: float | None = None,
        gt_filter: bool = False,
    ) -> None:
        self.min_score = min_score
        self._table: dict[int, Detections] = {}
        self._next: Detections | None = None
        if isinstance(source, (str, Path)):
            for frame, rows in read_mot(source, gt_filter=gt_filter).items():
                self._table[frame - 1] = Detections(rows.boxes, rows.scores)
        elif source is not None:
            for index, dets in source.items():
                self.set_frame(int(index), dets)

    @property
    def frame_indices(self) -> list[int]:
        """0-based frame indices that have stored detections, ascending."""
        return sorted(self._table)

    def set_frame(self, frame_index: int, detections: Detections) -> None:
        """Store detections for a 0-based frame index (replacing any stored before)."""
        if frame_index < 0:
            raise ValueError(f"frame_index must be >= 0, got {frame_index}")
        self._table[frame_index] = _agnostic(detections)

    def set_next(self, detections: Detections) -> None:
        """Detections that the next call returns, whatever its frame index."""
        self._next = _agnostic(detections)

    def __call__(self, frame: np.ndarray | None = None, frame_index: int = 0) -> Detections:
        if self._next is not None:
            dets, self._next = self._next, None
        else:
            dets = self._table.get(frame_index, Detections.empty())
        if self.min_score is not None and len(dets):
            dets = dets.select(dets.scores >= self.min_score)
        return dets


def _agnostic(detections: Detections) -> Detections:
    """The same boxes and scores with every label 0 ('object')."""
    return Detections(detections.boxes, detections.scores)
