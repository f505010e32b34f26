"""The one evaluation loop: every tracker under test sees the same frames and given boxes.

A tracker under test is a :class:`FrameTracker`: called with one RGB frame, the boxes given for it
(:class:`masa_core.formats.mot.MotRows`) and the frame's 0-based index, it returns that frame's
result rows (ids from 1), or None when its output for the frame never came back (a tracker behind a
transport: the ROS node). The pipeline, the baselines, the boxmot peers (here) and the live node
(``masa_ros.tools.eval_live``) all take this shape, and :func:`run_frames` drives each of them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import torch
from tqdm import tqdm

from masa_core.detectors.base import Detections
from masa_core.eval.degrade import Degradation, box_sizes, degrade_frame, false_positive_id_start
from masa_core.formats.mot import MotRows
from masa_core.pipeline import Pipeline, Track
from masa_core.tracking import MasaTracker
from masa_core.video_io import FrameSource


class FrameTracker(Protocol):
    """A tracker under evaluation: (frame, given boxes, 0-based index) → result rows, None if lost."""

    def __call__(self, frame: np.ndarray, given: MotRows, index: int) -> MotRows | None: ...


@dataclass
class LoopResult:
    """What :func:`run_frames` collected: rows and given boxes by 1-based frame, frames seen, tracker
    seconds (frames whose output came back), and the 1-based frames whose output was lost."""

    rows: dict[int, MotRows] = field(default_factory=dict)
    given: dict[int, MotRows] = field(default_factory=dict)
    frames: int = 0
    seconds: float = 0.0
    lost: list[int] = field(default_factory=list)


def given_frames(
    source: FrameSource, gt: Mapping[int, MotRows], degradation: Degradation | None = None, own_detector: bool = False
) -> Iterator[tuple[int, np.ndarray, MotRows]]:
    """(0-based index, RGB frame, the boxes given to the tracker) for each frame of ``source``.

    The boxes are the frame's filtered gt rows (``gt`` keyed by 1-based frame), degraded when
    ``degradation`` is set (seeded per frame, so a frame's boxes do not depend on what came before),
    none with ``own_detector``. Every tracker, in this process or behind the ROS node, gets these.
    """
    degradation = degradation or Degradation()
    sizes = box_sizes(gt)
    fp_id_start = false_positive_id_start(gt)
    for index, frame in enumerate(source):
        given = gt.get(index + 1, MotRows.empty())
        if own_detector:
            given = MotRows.empty()
        elif not degradation.is_identity:
            height, width = frame.shape[:2]
            given = degrade_frame(given, index + 1, degradation, (width, height), sizes, fp_id_start)
        yield index, frame, given


def run_frames(
    track: FrameTracker,
    source: FrameSource,
    boxes: Mapping[int, MotRows],
    degradation: Degradation | None = None,
    own_detector: bool = False,
    progress_label: str | None = None,
) -> LoopResult:
    """Feed ``track`` every frame of ``source`` with its given boxes (:func:`given_frames`) and
    collect its rows; ``progress_label`` shows a progress bar with that label."""
    out = LoopResult()
    bar = tqdm(total=len(source), unit="frame", desc=progress_label, disable=progress_label is None)
    for index, frame, given in given_frames(source, boxes, degradation, own_detector):
        if len(given):
            out.given[index + 1] = given
        start = time.perf_counter()
        rows = track(frame, given, index)
        if rows is None:
            out.lost.append(index + 1)
        else:
            out.seconds += time.perf_counter() - start
            if len(rows):
                out.rows[index + 1] = rows
        out.frames += 1
        bar.update()
    bar.close()
    return out


def given_rows_of(given: MotRows, tracks: list[Track]) -> MotRows:
    """The given rows that the tracks matched, with the tracks' ids (from 1): every tracker writes
    the given box, not its own (the pipeline clips boxes to the image), so that only the
    association differs between trackers."""
    rows = np.array([t.detection for t in tracks], np.int64)
    return MotRows(given.boxes[rows], np.array([t.id + 1 for t in tracks], np.int64), given.scores[rows])


def given_detections(given: MotRows) -> Detections:
    """The given rows as the detections a tracker receives: their boxes and scores (1 for ground
    truth and degraded boxes, the detector's for detector boxes), class 0."""
    return Detections(given.boxes, given.scores)


def rows_of_tracks(given: MotRows, tracks: list[Track], own_detector: bool) -> MotRows:
    """A frame's rows from its tracks: the tracks' own boxes when they found them, else the given boxes."""
    return MotRows.from_tracks(tracks) if own_detector else given_rows_of(given, tracks)


@dataclass
class PipelineFrames:
    """The MASA pipeline as a :class:`FrameTracker`; frames are ``1 / fps`` seconds apart."""

    pipeline: Pipeline
    fps: float
    own_detector: bool = False
    score_thr: float | None = None  # the given boxes' detector's threshold

    def __call__(self, frame: np.ndarray, given: MotRows, index: int) -> MotRows:
        dets = None if self.own_detector else given_detections(given)
        tracks = self.pipeline.process(frame, dets, stamp=index / self.fps, score_thr=self.score_thr).tracks
        return rows_of_tracks(given, tracks, self.own_detector)


IdsFn = Callable[[np.ndarray, Detections, int], np.ndarray]


@dataclass
class IdsFrames:
    """A tracker that gives one id per given box (-1: no track) as a :class:`FrameTracker`: the IoU
    baseline, a boxmot peer, or :class:`ReidIds`. ``ids(frame, detections, index)``."""

    ids: IdsFn

    def __call__(self, frame: np.ndarray, given: MotRows, index: int) -> MotRows:
        dets = given_detections(given)
        ids = np.asarray(self.ids(frame, dets, index))
        keep = ids >= 0
        return MotRows(dets.boxes[keep], ids[keep] + 1, dets.scores[keep])


@dataclass
class ReidIds:
    """The MASA tracker fed with crop-ReID embeddings: ``embedder(frame, boxes)`` → (N, D) tensor."""

    embedder: Callable[[np.ndarray, np.ndarray], torch.Tensor]
    tracker: MasaTracker

    def __call__(self, frame: np.ndarray, dets: Detections, index: int) -> np.ndarray:
        boxes = torch.from_numpy(dets.boxes.astype(np.float32))
        labels = torch.zeros(len(boxes), dtype=torch.long)
        embeds = self.embedder(frame, dets.boxes).cpu()
        return self.tracker.update(boxes, torch.from_numpy(dets.scores), labels, embeds, index).ids.numpy()
