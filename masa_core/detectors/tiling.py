"""Tiled inference: a detector run on the whole frame and on overlapping tiles, merged by NMS.

A small-input detector (the default SSD sees 300x300) shrinks distant people to a few pixels. Run
on square tiles as well, each tile is shrunk less (and not stretched), so small objects get more
of the detector's input. A tile's side is ``tile_size`` times the frame's shorter side, so the
number of runs does not grow with the camera's resolution (1.0 on a 4:3 or 16:9 frame: two tiles).
Tiles of one row or column overlap by at least ``overlap`` of their side and are spread evenly
from frame edge to frame edge. A box from a tile that touches one of the tile's inner edges (an
edge that is not the frame's) is cut by the tile: it is dropped, since the object lies whole in
the frame run or in a neighbouring tile (the overlap sees to that for objects smaller than it).
Boxes of all runs are then merged with class-aware NMS (:func:`torchvision.ops.batched_nms`), so
one object found by several runs is reported once.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torchvision.ops import batched_nms

from masa_core.detectors.base import Detections, Detector

# A tile box whose edge lies within this many pixels of an inner tile edge counts as cut.
EDGE_MARGIN = 2.0
MIN_TILE_PIXELS = 32  # frames whose tiles would be smaller are run whole only


def _starts(length: int, tile: int, overlap: float) -> list[int]:
    """Start offsets of tiles of ``tile`` pixels spanning ``length``, neighbours overlapping by >= ``overlap``."""
    if tile >= length:
        return [0]
    stride = tile * (1.0 - overlap)
    count = math.ceil((length - tile) / stride) + 1
    return [round(s) for s in np.linspace(0, length - tile, count)]


def tile_grid(width: int, height: int, side: int, overlap: float) -> np.ndarray:
    """Tile windows (K, 4) int64 x1, y1, x2, y2 covering a ``width`` x ``height`` frame.

    Tiles are ``side`` pixels square (a side longer than the frame's is cut to it); neighbours
    overlap by at least ``overlap`` (a fraction in [0, 1)) of the tile side. Row-major order.
    """
    if width < 1 or height < 1:
        raise ValueError(f"tile_grid: frame size {width}x{height} must be at least 1x1")
    if side < 1:
        raise ValueError(f"tile_grid: side = {side!r}, must be >= 1 pixel")
    if not 0.0 <= overlap < 1.0:
        raise ValueError(f"tile_grid: overlap = {overlap!r}, must be in [0, 1)")
    tw, th = min(side, width), min(side, height)
    return np.array(
        [(x, y, x + tw, y + th) for y in _starts(height, th, overlap) for x in _starts(width, tw, overlap)],
        dtype=np.int64,
    )


def cut_by_tile(boxes: np.ndarray, window: np.ndarray, width: int, height: int) -> np.ndarray:
    """(N,) bool: boxes (frame coordinates) touching an inner edge of ``window`` (one not on the frame border)."""
    x1, y1, x2, y2 = (float(v) for v in window)
    cut = np.zeros(len(boxes), dtype=bool)
    if x1 > 0:
        cut |= boxes[:, 0] <= x1 + EDGE_MARGIN
    if y1 > 0:
        cut |= boxes[:, 1] <= y1 + EDGE_MARGIN
    if x2 < width:
        cut |= boxes[:, 2] >= x2 - EDGE_MARGIN
    if y2 < height:
        cut |= boxes[:, 3] >= y2 - EDGE_MARGIN
    return cut


def merge_detections(runs: list[Detections], iou_thr: float, max_detections: int | None = None) -> Detections:
    """Class-aware NMS over the boxes of several runs (frame coordinates); best score first."""
    runs = [r for r in runs if len(r)]
    if not runs:
        return Detections.empty()
    boxes = np.concatenate([r.boxes for r in runs])
    scores = np.concatenate([r.scores for r in runs])
    labels = np.concatenate([r.labels for r in runs])
    keep = batched_nms(torch.from_numpy(boxes), torch.from_numpy(scores), torch.from_numpy(labels), iou_thr)
    keep = keep.numpy()[:max_detections]
    return Detections(boxes[keep], scores[keep], labels[keep])


class TiledDetector:
    """``base`` run on the whole frame and on overlapping square tiles, merged by class-aware NMS.

    tile_size: tile side as a fraction of the frame's shorter side, in (0, 1]; a frame that one
    tile covers whole (a square frame at 1.0) is run once. overlap: least overlap of neighbouring
    tiles, a fraction of the side in [0, 0.9].
    nms_iou_thr: IoU above which the lower-scoring of two same-class boxes is dropped.
    Implements :class:`Detector`; ``class_names`` and ``score_thr`` are the base detector's.
    ``runs_per_frame(width, height)`` says how often the base detector runs.
    """

    def __init__(self, base: Detector, tile_size: float = 1.0, overlap: float = 0.2, nms_iou_thr: float = 0.5) -> None:
        if not 0.0 < tile_size <= 1.0:
            raise ValueError(f"TiledDetector: tile_size = {tile_size!r}, must be in (0, 1] (of the shorter side)")
        if not 0.0 <= overlap <= 0.9:
            raise ValueError(f"TiledDetector: overlap = {overlap!r}, must be in [0, 0.9]")
        self.base = base
        self.tile_size = float(tile_size)
        self.overlap = float(overlap)
        self.nms_iou_thr = float(nms_iou_thr)
        self.class_names: tuple[str, ...] = base.class_names

    @property
    def score_thr(self) -> float | None:
        return getattr(self.base, "score_thr", None)

    def windows(self, width: int, height: int) -> np.ndarray:
        """Tile windows for a frame of this size; none when one tile would hold the whole frame or
        would be smaller than :data:`MIN_TILE_PIXELS`."""
        side = round(self.tile_size * min(width, height))
        if side >= max(width, height) or side < MIN_TILE_PIXELS:
            return np.zeros((0, 4), dtype=np.int64)
        return tile_grid(width, height, side, self.overlap)

    def runs_per_frame(self, width: int, height: int) -> int:
        """Base detector runs per frame of this size: the whole frame plus the tiles."""
        return 1 + len(self.windows(width, height))

    def __call__(self, frame: np.ndarray, frame_index: int = 0) -> Detections:
        height, width = frame.shape[:2]
        runs = [self.base(frame, frame_index)]
        for window in self.windows(width, height):
            x1, y1, x2, y2 = (int(v) for v in window)
            dets = self.base(np.ascontiguousarray(frame[y1:y2, x1:x2]), frame_index)
            if len(dets):
                boxes = dets.boxes + np.array([x1, y1, x1, y1], dtype=np.float32)
                keep = ~cut_by_tile(boxes, window, width, height)
                runs.append(Detections(boxes[keep], dets.scores[keep], dets.labels[keep]))
        return merge_detections(runs, self.nms_iou_thr)
