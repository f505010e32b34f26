"""MOTChallenge text files: detections, ground truth and tracker results.

Rows are ``frame, id, x, y, w, h, conf[, ...]`` separated by commas and/or whitespace, frames
counting from 1. MOT15 files have 10 columns (the last three are world coordinates, -1 when
unknown); MOT16+ ground truth has 9: ``..., consider, class, visibility``. Both readers and
writers here key frames by the file's 1-based frame number unless told otherwise.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from masa_core.errors import MasaError

PEDESTRIAN_CLASS = 1
_SPLIT = re.compile(r"[,\s]+")


class TrackLike(Protocol):
    """What :meth:`MotRows.from_tracks` reads of a track (:class:`masa_core.pipeline.Track` has it)."""

    id: int
    box: tuple[float, float, float, float]
    score: float


class MotFormatError(MasaError, ValueError):
    """A MOTChallenge file has a row that cannot be read."""


@dataclass(frozen=True)
class MotRows:
    """The rows of one frame: boxes (N, 4) float32 x1y1x2y2, ids (N,) int64, scores (N,) float32."""

    boxes: np.ndarray
    ids: np.ndarray
    scores: np.ndarray

    def __post_init__(self) -> None:
        boxes = np.asarray(self.boxes, dtype=np.float32).reshape(-1, 4)
        ids = np.asarray(self.ids, dtype=np.int64).reshape(-1)
        scores = np.asarray(self.scores, dtype=np.float32).reshape(-1)
        if not (len(boxes) == len(ids) == len(scores)):
            raise ValueError(f"MotRows: {len(boxes)} boxes, {len(ids)} ids, {len(scores)} scores")
        object.__setattr__(self, "boxes", boxes)
        object.__setattr__(self, "ids", ids)
        object.__setattr__(self, "scores", scores)

    def __len__(self) -> int:
        return len(self.boxes)

    @classmethod
    def empty(cls) -> MotRows:
        return cls(np.zeros((0, 4), np.float32), np.zeros(0, np.int64), np.zeros(0, np.float32))

    @classmethod
    def from_tracks(cls, tracks: Sequence[TrackLike]) -> MotRows:
        """Rows of one frame's tracks; MOTChallenge ids count from 1, track ids from 0."""
        return cls(
            np.array([t.box for t in tracks], np.float32).reshape(-1, 4),
            np.array([t.id + 1 for t in tracks], np.int64),
            np.array([t.score for t in tracks], np.float32),
        )


def _parse_row(fields: list[str]) -> list[float]:
    if len(fields) < 6:
        raise ValueError(f"expected at least 6 values (frame, id, x, y, w, h), got {len(fields)}")
    try:
        values = [float(v) for v in fields]
    except ValueError as err:
        raise ValueError(f"non-numeric value ({err})") from None
    if not all(np.isfinite(values[:7])):
        raise ValueError("non-finite frame, id, box or score")
    if values[0] < 1 or values[0] != int(values[0]):
        raise ValueError(f"frame must be an integer >= 1, got {fields[0]}")
    if values[4] < 0 or values[5] < 0:
        raise ValueError(f"negative box size w={fields[4]} h={fields[5]}")
    return values


def _keep_gt(values: list[float], classes: tuple[int, ...]) -> bool:
    """MOT16+ gt rule: drop rows whose 'consider' flag is 0 or whose class is not in ``classes``."""
    if len(values) > 6 and values[6] == 0:
        return False
    return not (len(values) == 9 and int(values[7]) not in classes)


def read_mot(
    path: str | Path, gt_filter: bool = False, classes: tuple[int, ...] = (PEDESTRIAN_CLASS,)
) -> dict[int, MotRows]:
    """Read a MOTChallenge det/gt/results file into {frame (1-based): MotRows}.

    The score is column 7 (1.0 if absent). With ``gt_filter`` rows whose column 7 is 0 are
    dropped, and in 9-column (MOT16+) files rows whose class (column 8) is not in ``classes``.
    Frames without rows are absent from the result. Raises :class:`MotFormatError` naming the
    file and line of a malformed row, and FileNotFoundError if the file is missing.
    """
    path = Path(path)
    per_frame: dict[int, list[list[float]]] = {}
    with open(path) as f:
        for lineno, line in enumerate(f, start=1):
            text = line.strip()
            if not text or text.startswith("#"):
                continue
            try:
                values = _parse_row(_SPLIT.split(text))
            except ValueError as err:
                raise MotFormatError(f"{path}:{lineno}: {err}: {text!r}") from None
            if gt_filter and not _keep_gt(values, classes):
                continue
            per_frame.setdefault(int(values[0]), []).append(values)
    return {frame: _to_rows(rows) for frame, rows in sorted(per_frame.items())}


def _to_rows(rows: list[list[float]]) -> MotRows:
    ids = np.array([r[1] for r in rows], dtype=np.int64)
    xywh = np.array([r[2:6] for r in rows], dtype=np.float32)
    scores = np.array([r[6] if len(r) > 6 else 1.0 for r in rows], dtype=np.float32)
    boxes = np.concatenate([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], axis=1)
    return MotRows(boxes, ids, scores)


def format_rows(frame: int, rows: MotRows) -> Iterable[str]:
    """Lines ``frame,id,x,y,w,h,score,-1,-1,-1`` for one frame (x, y, w, h from x1y1x2y2)."""
    for box, track_id, score in zip(rows.boxes, rows.ids, rows.scores, strict=True):
        x1, y1, x2, y2 = (float(v) for v in box)
        xywh = f"{x1:.2f},{y1:.2f},{x2 - x1:.2f},{y2 - y1:.2f}"
        yield f"{frame},{int(track_id)},{xywh},{float(score):.4f},-1,-1,-1"


def write_mot(path: str | Path, rows: Mapping[int, MotRows], zero_based: bool = False) -> None:
    """Write {frame: MotRows} as a MOTChallenge results file, frames ascending, counting from 1.

    Keys are 1-based file frames, or 0-based frame indices when ``zero_based`` (then 1 is added).
    """
    offset = 1 if zero_based else 0
    lines: list[str] = []
    for frame in sorted(rows):
        mot_frame = int(frame) + offset
        if mot_frame < 1:
            raise ValueError(
                f"write_mot({path}): frame key {frame} gives MOT frame {mot_frame} < 1; "
                "pass zero_based=True for 0-based frame indices"
            )
        lines.extend(format_rows(mot_frame, rows[frame]))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(line + "\n" for line in lines))
