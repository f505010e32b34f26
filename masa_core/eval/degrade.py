"""Seeded degradations of given observations: dropped boxes, jittered boxes, false positives.

The "given observations" protocol hands every tracker the same boxes. Ground-truth boxes make
detection perfect; these pure functions make it imperfect in a controlled, reproducible way:

- **drop**: each box is removed independently with probability ``drop``;
- **jitter**: a kept box's centre moves by ``N(0, jitter) * (w, h)`` and its width and height are
  scaled by ``exp(N(0, jitter))`` (so sizes stay positive at any ``jitter``);
- **fp_rate**: ``Poisson(fp_rate)`` false-positive boxes per frame, placed uniformly inside the image,
  each with the size of a box drawn from ``sizes`` (the sequence's gt box sizes by default).

Every frame draws from its own generator seeded by ``(seed, stream, frame)``, so a frame's result
does not depend on which other frames are degraded (``max_frames``) or on the other degradations'
settings: raising ``drop`` removes more boxes but does not move the jitter of those that stay.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from masa_core.formats.mot import MotRows

_DROP, _JITTER, _FP = 0, 1, 2  # independent random streams


@dataclass(frozen=True)
class Degradation:
    """Settings of the degradations; the defaults change nothing."""

    drop: float = 0.0
    jitter: float = 0.0
    fp_rate: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        if not 0.0 <= self.drop <= 1.0:
            raise ValueError(f"drop = {self.drop}: must be a probability in [0, 1]")
        for name in ("jitter", "fp_rate"):
            value = getattr(self, name)
            if not (np.isfinite(value) and value >= 0):
                raise ValueError(f"{name} = {value}: must be finite and >= 0")

    @property
    def is_identity(self) -> bool:
        return self.drop == 0 and self.jitter == 0 and self.fp_rate == 0

    @property
    def tag(self) -> str:
        """A short file-name-safe label, e.g. ``drop0.2_jit0.05_fp1_s0`` ("" when nothing changes)."""
        if self.is_identity:
            return ""
        parts = [f"drop{self.drop:g}" if self.drop else "", f"jit{self.jitter:g}" if self.jitter else ""]
        parts += [f"fp{self.fp_rate:g}" if self.fp_rate else "", f"s{self.seed}"]
        return "_".join(p for p in parts if p)


def _rng(seed: int, stream: int, frame: int) -> np.random.Generator:
    return np.random.default_rng([seed, stream, frame])


def box_sizes(rows: Mapping[int, MotRows]) -> np.ndarray:
    """(N, 2) widths and heights of all boxes in {frame: MotRows}."""
    boxes = [r.boxes for r in rows.values() if len(r)]
    if not boxes:
        return np.zeros((0, 2), np.float32)
    b = np.concatenate(boxes)
    return b[:, 2:] - b[:, :2]


def false_positive_id_start(rows: Mapping[int, MotRows]) -> int:
    """First id for false positives: above every id in ``rows`` and at least 1,000,000."""
    return max(1_000_000, 1 + max((int(r.ids.max()) for r in rows.values() if len(r)), default=0))


def degrade_frame(
    rows: MotRows,
    frame: int,
    spec: Degradation,
    image_size: tuple[int, int],
    sizes: np.ndarray,
    fp_id_start: int = 1_000_000,
) -> MotRows:
    """One frame's degraded rows: kept (jittered) boxes with their ids, then false positives.

    image_size: (width, height) for placing false positives. sizes: (N, 2) box sizes to draw false
    positives from (N >= 1 when ``fp_rate > 0``). False positives get ids ``fp_id_start + k``, unique in
    the frame; all scores are 1, so a tracker cannot tell them from real boxes.
    """
    keep = np.ones(len(rows), bool)
    if spec.drop > 0:
        keep = _rng(spec.seed, _DROP, frame).random(len(rows)) >= spec.drop
    boxes, ids = rows.boxes.astype(np.float64)[keep], rows.ids[keep]
    if spec.jitter > 0 and len(boxes):
        # noise is drawn for every box, dropped or not, so a box's jitter does not depend on ``drop``
        noise = _rng(spec.seed, _JITTER, frame).standard_normal((len(rows), 4))[keep]
        wh = boxes[:, 2:] - boxes[:, :2]
        centre = (boxes[:, :2] + boxes[:, 2:]) / 2 + spec.jitter * noise[:, :2] * wh
        wh = wh * np.exp(spec.jitter * noise[:, 2:])
        boxes = np.concatenate([centre - wh / 2, centre + wh / 2], axis=1)
    if spec.fp_rate > 0:
        rng = _rng(spec.seed, _FP, frame)
        count = int(rng.poisson(spec.fp_rate))
        if count:
            if not len(sizes):
                raise ValueError("degrade_frame: false positives need at least one box size in 'sizes'")
            width, height = image_size
            wh = np.asarray(sizes, np.float64)[rng.integers(0, len(sizes), count)]
            wh = np.minimum(wh, [width, height])
            x1 = rng.random(count) * (width - wh[:, 0])
            y1 = rng.random(count) * (height - wh[:, 1])
            fp = np.stack([x1, y1, x1 + wh[:, 0], y1 + wh[:, 1]], axis=1)
            boxes = np.concatenate([boxes.reshape(-1, 4), fp])
            ids = np.concatenate([ids, fp_id_start + np.arange(count)])
    return MotRows(boxes.astype(np.float32), ids, np.ones(len(boxes), np.float32))


def degrade(
    rows: Mapping[int, MotRows],
    spec: Degradation,
    image_size: tuple[int, int],
    num_frames: int | None = None,
    sizes: np.ndarray | None = None,
) -> dict[int, MotRows]:
    """Degrade {frame: MotRows} for frames 1..num_frames (default: the last frame with rows).

    Frames without rows can still receive false positives; frames left empty are omitted.
    sizes: false-positive sizes (default: the sizes of all boxes in ``rows``).
    """
    last = max(rows, default=0) if num_frames is None else num_frames
    sizes = box_sizes(rows) if sizes is None else sizes
    fp_id_start = false_positive_id_start(rows)
    out = {}
    for frame in range(1, last + 1):
        degraded = degrade_frame(rows.get(frame, MotRows.empty()), frame, spec, image_size, sizes, fp_id_start)
        if len(degraded):
            out[frame] = degraded
    return out
