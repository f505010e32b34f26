"""Checks on what enters the pipeline: frames must be images, boxes must be real boxes.

A bad frame is refused with :class:`FrameError`; bad boxes are dropped and counted, never passed on,
so a NaN or an inside-out box can never reach the tracker's memory.
"""

from __future__ import annotations

import numpy as np

from masa_core.boxes import clip_boxes
from masa_core.detectors.base import Detections
from masa_core.errors import MasaError


class FrameError(MasaError, ValueError):
    """A frame is not an (H, W, 3) uint8 RGB image."""


def check_frame(frame: object) -> np.ndarray:
    """Return ``frame`` if it is a non-empty (H, W, 3) uint8 array, else raise :class:`FrameError`."""
    if not isinstance(frame, np.ndarray):
        raise FrameError(f"frame must be a numpy array, got {type(frame).__name__}")
    if frame.ndim != 3 or frame.shape[2] != 3:
        raise FrameError(f"frame must have shape (H, W, 3) RGB, got {frame.shape}")
    if frame.shape[0] == 0 or frame.shape[1] == 0:
        raise FrameError(f"frame is empty: shape {frame.shape}")
    if frame.dtype != np.uint8:
        raise FrameError(f"frame must be uint8, got {frame.dtype}")
    return frame


def clean_detections(
    dets: Detections, width: int, height: int, min_size: float, max_count: int
) -> tuple[Detections, np.ndarray]:
    """Drop non-finite boxes or scores, clip boxes to the image, drop boxes left smaller than
    ``min_size`` pixels on a side (zero-area, inside-out or outside the image), keep the
    ``max_count`` best. Returns the clean detections and the rows of ``dets`` they came from."""
    boxes, scores = dets.boxes, dets.scores
    finite = np.isfinite(boxes).all(axis=1) & np.isfinite(scores)
    clipped = np.where(finite[:, None], boxes, 0.0)
    clipped = clip_boxes(clipped.astype(np.float32), width, height)
    big_enough = ((clipped[:, 2] - clipped[:, 0]) >= min_size) & ((clipped[:, 3] - clipped[:, 1]) >= min_size)
    keep = np.flatnonzero(finite & big_enough & (clipped[:, 2] > clipped[:, 0]) & (clipped[:, 3] > clipped[:, 1]))
    if len(keep) > max_count:
        keep = keep[np.argsort(-scores[keep], kind="stable")[:max_count]]
        keep.sort()
    clean = Detections(clipped[keep], np.clip(scores[keep], 0.0, 1.0), dets.labels[keep])
    return clean, keep
