"""MASA tracker: appearance-embedding association with a momentum-updated track memory.

Behaviour follows the official ``MasaTaoTracker`` (siyuanliii/masa,
``masa/models/tracker/masa_tao_tracker.py``); see ``docs/tracker.md`` for details and deviations.
"""

from __future__ import annotations

import enum
import numbers
from dataclasses import dataclass

import torch
from torch import Tensor

from masa_core.tracking.matching import (
    MATCH_METRICS,
    distance_gate,
    greedy_assign,
    match_similarity,
    suppress_distractors,
)

_UNIT_FIELDS: tuple[str, ...] = (
    "init_score_thr",
    "obj_score_thr",
    "match_score_thr",
    "memo_momentum",
    "distractor_nms_thr",
    "distractor_score_thr",
    "low_score_thr",
    "match_iou_thr",
    "low_match_iou_thr",
    "tentative_iou_thr",
    "proximity_iou_thr",
    "occlusion_iou_thr",
    "embed_momentum",
)
TRACKER_KINDS: tuple[str, ...] = ("masa_sort", "masa")


BYTETRACK_HIGH_SCORE = 0.5  # ByteTrack's track_thresh: MASA-SORT's high threshold when no detector's is known


CAMERA_MOTION: tuple[str, ...] = ("none", "sparse_flow")


def _is_real(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


@dataclass(frozen=True)
class TrackerConfig:
    """Tracker parameters.

    ``kind`` picks the tracker: ``masa_sort`` (MASA appearance fused with Kalman motion,
    :class:`masa_core.tracking.masa_sort.MasaSortTracker`) or ``masa`` (the official MASA tracker,
    :class:`MasaTracker`). The first block of fields is the official ``MasaTaoTracker``'s, with its
    constructor defaults (``fps`` also sets the frame period of ``masa_sort`` when frames carry no
    stamps); the second block is ``masa_sort``'s, with ByteTrack / BoT-SORT's published defaults
    (``docs/tracker.md``).
    """

    kind: str = "masa_sort"
    init_score_thr: float = 0.8
    obj_score_thr: float = 0.5
    match_score_thr: float = 0.5
    memo_tracklet_frames: int = 10
    memo_momentum: float = 0.8
    distractor_nms_thr: float = 0.3
    distractor_score_thr: float = 0.5
    match_metric: str = "bisoftmax"
    max_distance: float = -1.0
    fps: int = 1
    with_cats: bool = True
    # masa_sort
    high_score_thr: float | None = None
    low_score_thr: float = 0.1
    new_track_thr: float | None = None
    match_iou_thr: float = 0.2
    low_match_iou_thr: float = 0.5
    tentative_iou_thr: float = 0.3
    proximity_iou_thr: float = 0.5
    appearance_thr: float = 0.5
    appearance_veto: float = 0.0
    gate_chi2: float = 9.4877
    lost_seconds: float = 1.0
    confirm_hits: int = 2
    embed_momentum: float = 0.1
    occlusion_iou_thr: float = 0.3
    camera_motion: str = "none"
    publish_tentative: bool = False

    @classmethod
    def plug_and_play(cls) -> TrackerConfig:
        """Tracker settings of the official plug-and-play / inference configs (R50, GDINO, SAM demos)."""
        return cls(
            init_score_thr=0.1,
            obj_score_thr=0.01,
            match_score_thr=0.5,
            memo_tracklet_frames=10,
            memo_momentum=0.8,
            with_cats=False,
            max_distance=100.0,
            fps=30,
        )

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first invalid field, its value and what is allowed."""
        for name in _UNIT_FIELDS:
            value = getattr(self, name)
            if not _is_real(value) or not 0.0 <= value <= 1.0:
                raise ValueError(f"tracker.{name} = {value!r}: must be a number in [0, 1]")
        frames = self.memo_tracklet_frames
        if not isinstance(frames, int) or isinstance(frames, bool) or frames < 0:
            raise ValueError(f"tracker.memo_tracklet_frames = {frames!r}: must be an integer >= 0")
        if self.match_metric not in MATCH_METRICS:
            raise ValueError(f"tracker.match_metric = {self.match_metric!r}: must be one of {list(MATCH_METRICS)}")
        dist = self.max_distance
        if not _is_real(dist) or not (dist == -1 or 0 < dist < float("inf")):
            raise ValueError(f"tracker.max_distance = {dist!r}: must be -1 (disabled) or a finite number > 0")
        if not isinstance(self.fps, int) or isinstance(self.fps, bool) or self.fps < 1:
            raise ValueError(f"tracker.fps = {self.fps!r}: must be an integer >= 1")
        for name in ("with_cats", "publish_tentative"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"tracker.{name} = {getattr(self, name)!r}: must be True or False")
        self._validate_masa_sort()

    def _validate_masa_sort(self) -> None:
        if self.kind not in TRACKER_KINDS:
            raise ValueError(f"tracker.kind = {self.kind!r}: must be one of {list(TRACKER_KINDS)}")
        if self.camera_motion not in CAMERA_MOTION:
            raise ValueError(f"tracker.camera_motion = {self.camera_motion!r}: must be one of {list(CAMERA_MOTION)}")
        for name in ("appearance_thr", "appearance_veto"):
            value = getattr(self, name)
            if not _is_real(value) or not -1.0 <= value <= 1.0:
                raise ValueError(f"tracker.{name} = {value!r}: must be a cosine similarity in [-1, 1]")
        for name in ("gate_chi2", "lost_seconds"):
            value = getattr(self, name)
            if not _is_real(value) or not 0.0 < value < float("inf"):
                raise ValueError(f"tracker.{name} = {value!r}: must be a finite number > 0")
        hits = self.confirm_hits
        if not isinstance(hits, int) or isinstance(hits, bool) or not 1 <= hits <= 1000:
            raise ValueError(f"tracker.confirm_hits = {hits!r}: must be an integer in [1, 1000]")
        for name in ("high_score_thr", "new_track_thr"):
            value = getattr(self, name)
            if value is not None and (not _is_real(value) or not 0.0 <= value <= 1.0):
                raise ValueError(f"tracker.{name} = {value!r}: must be null or a number in [0, 1]")
        if self.high_score_thr is not None and self.low_score_thr > self.high_score_thr:
            raise ValueError(
                f"tracker.low_score_thr = {self.low_score_thr!r}: must be <= high_score_thr ({self.high_score_thr})"
            )

    def score_thresholds(self, detector_thr: float | None = None) -> tuple[float, float]:
        """MASA-SORT's (high, new-track) score thresholds. Left null, ``high`` is the detector's own
        operating threshold ``detector_thr`` (scores are on each detector's scale), or ByteTrack's 0.5
        when it is unknown; ``new`` is ``high``, as boxmot's ByteTrack has it."""
        high = self.high_score_thr
        if high is None:
            high = BYTETRACK_HIGH_SCORE if detector_thr is None else max(float(detector_thr), self.low_score_thr)
        new = self.new_track_thr if self.new_track_thr is not None else high
        return high, new


@dataclass(frozen=True)
class TrackResult:
    """Per-detection tracking output, rows in the input order of ``update``."""

    ids: Tensor  # (N,) int64 track id, -1 if not tracked (or not published)
    match_scores: Tensor  # (N,) float32 similarity of this frame's match, 0 for new / untracked
    ages: Tensor  # (N,) int64 frames since the track was created, -1 if untracked
    velocities: Tensor  # (N, 2) float32 box-centre velocity in pixels per second (0 when unknown)
    states: Tensor  # (N,) int64 TrackState of the row's track, -1 if untracked


class TrackState(enum.IntEnum):
    """Life cycle of a track: tentative until confirmed, lost while unmatched but remembered."""

    TENTATIVE = 0
    CONFIRMED = 1
    LOST = 2


def check_update_inputs(
    boxes: Tensor, scores: Tensor, labels: Tensor, embeds: Tensor, frame_id: int, last_frame_id: int | None
) -> None:
    """Raise ``ValueError`` unless the arguments of a tracker ``update`` have the right types and
    shapes, share one device, and ``frame_id`` is an integer above ``last_frame_id``."""
    if not isinstance(frame_id, numbers.Integral) or isinstance(frame_id, bool):
        raise ValueError(f"frame_id = {frame_id!r}: must be an integer")
    if last_frame_id is not None and frame_id <= last_frame_id:
        raise ValueError(f"frame_id = {frame_id}: must be greater than the previous frame_id {last_frame_id}")
    for name, t in (("boxes", boxes), ("scores", scores), ("labels", labels), ("embeds", embeds)):
        if not isinstance(t, Tensor):
            raise ValueError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise ValueError(f"boxes must have shape (N, 4), got {tuple(boxes.shape)}")
    n = boxes.shape[0]
    if scores.shape != (n,):
        raise ValueError(f"scores must have shape ({n},) to match boxes, got {tuple(scores.shape)}")
    if labels.shape != (n,):
        raise ValueError(f"labels must have shape ({n},) to match boxes, got {tuple(labels.shape)}")
    if embeds.ndim != 2 or embeds.shape[0] != n:
        raise ValueError(f"embeds must have shape ({n}, D) to match boxes, got {tuple(embeds.shape)}")
    for name, t in (("boxes", boxes), ("scores", scores), ("embeds", embeds)):
        if not t.is_floating_point():
            raise ValueError(f"{name} must be a floating-point tensor, got {t.dtype}")
    if labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool:
        raise ValueError(f"labels must be an integer tensor, got {labels.dtype}")
    devices = {t.device for t in (boxes, scores, labels, embeds)}
    if len(devices) > 1:
        raise ValueError(f"boxes, scores, labels and embeds must be on one device, got {sorted(map(str, devices))}")


class MasaTracker:
    """Online MASA multi-object tracker (official ``MasaTaoTracker`` logic, vectorised).

    Memory is a set of id-sorted tensors (one row per live track). ``update`` validates all
    inputs before touching that memory, so a rejected call leaves the tracker unchanged.
    """

    def __init__(self, config: TrackerConfig | None = None) -> None:
        self.config = config if config is not None else TrackerConfig()
        self.config.validate()
        self.reset()

    def reset(self) -> None:
        """Forget every track and restart ids at 0."""
        self._next_id = 0
        self._last_frame_id: int | None = None
        self._ids = torch.zeros(0, dtype=torch.long)
        self._embeds = torch.zeros(0, 0, dtype=torch.float32)
        self._boxes = torch.zeros(0, 4, dtype=torch.float32)
        self._labels = torch.zeros(0, dtype=torch.long)
        self._scores = torch.zeros(0, dtype=torch.float32)
        self._last_seen = torch.zeros(0, dtype=torch.long)
        self._first_seen = torch.zeros(0, dtype=torch.long)

    @property
    def num_tracks(self) -> int:
        """Number of tracks currently held in memory."""
        return int(self._ids.numel())

    @property
    def track_ids(self) -> Tensor:
        """(M,) int64 ids of the tracks in memory, ascending."""
        return self._ids.clone()

    @property
    def track_embeds(self) -> Tensor:
        """(M, D) float32 memory embeddings, rows aligned with ``track_ids``."""
        return self._embeds.clone()

    def _check_inputs(self, boxes: Tensor, scores: Tensor, labels: Tensor, embeds: Tensor, frame_id: int) -> None:
        check_update_inputs(boxes, scores, labels, embeds, frame_id, self._last_frame_id)
        if boxes.shape[0] == 0:
            return
        if self.num_tracks > 0 and embeds.shape[1] != self._embeds.shape[1]:
            raise ValueError(
                f"embeds have dimension {embeds.shape[1]} but the track memory uses {self._embeds.shape[1]}"
            )
        finite = torch.isfinite(boxes).all() & torch.isfinite(scores).all() & torch.isfinite(embeds).all()
        if not bool(finite):
            raise ValueError("boxes, scores and embeds must be finite (found NaN or inf)")

    def _to_device(self, device: torch.device) -> None:
        if self._ids.device != device:
            for name in ("_ids", "_embeds", "_boxes", "_labels", "_scores", "_last_seen", "_first_seen"):
                setattr(self, name, getattr(self, name).to(device))

    def _drop_expired(self, frame_id: int, strict: bool) -> None:
        """Drop tracks unseen for too long: gap >= memo frames (official pop), or > if ``strict``."""
        gap = frame_id - self._last_seen
        limit = self.config.memo_tracklet_frames
        keep = gap <= limit if strict else gap < limit
        if not bool(keep.all()):
            for name in ("_ids", "_embeds", "_boxes", "_labels", "_scores", "_last_seen", "_first_seen"):
                setattr(self, name, getattr(self, name)[keep])

    def _ranked(self, boxes: Tensor, scores: Tensor, labels: Tensor, embeds: Tensor) -> tuple[Tensor, list[Tensor]]:
        """The input rows by score, descending, without low-score duplicates of earlier detections, and
        their float boxes, float scores, long labels and float embeddings in that order."""
        cfg = self.config
        order = torch.sort(scores.float(), descending=True, stable=True).indices
        keep = suppress_distractors(
            boxes[order], scores[order].float(), cfg.distractor_score_thr, cfg.distractor_nms_thr
        )
        order = order[keep]
        dets = [boxes.detach()[order].float(), scores.detach()[order].float()]
        return order, [*dets, labels.detach()[order].long(), embeds.detach()[order].float()]

    def _match(
        self, boxes: Tensor, scores: Tensor, labels: Tensor, embeds: Tensor, frame_id: int
    ) -> tuple[Tensor, Tensor]:
        """(memory row per detection, -1 if none; its similarity) by gated similarity, greedily."""
        cfg = self.config
        k = boxes.shape[0]
        if self.num_tracks == 0:
            rows = torch.full((k,), -1, dtype=torch.long, device=boxes.device)
            return rows, torch.zeros(k, dtype=torch.float32, device=boxes.device)
        sim = match_similarity(embeds, self._embeds, cfg.match_metric)
        if cfg.max_distance != -1:
            sim = sim * distance_gate(boxes, self._boxes, frame_id - self._last_seen, cfg.max_distance, cfg.fps)
        if cfg.with_cats:
            sim = sim * (labels[:, None] == self._labels[None, :]).float()
        return greedy_assign(sim, scores > cfg.obj_score_thr, cfg.match_score_thr)

    def _ranked_outputs(self, memo_rows: Tensor, new: Tensor, new_ids: Tensor, frame_id: int) -> tuple[Tensor, Tensor]:
        """(ids, ages) in score order: a matched detection takes its track's id and age, a new one its
        new id and age 0, the rest -1."""
        matched = memo_rows >= 0
        s_ids = torch.full_like(memo_rows, -1)
        s_ages = torch.full_like(memo_rows, -1)
        rows = memo_rows[matched]
        s_ids[matched] = self._ids[rows]
        s_ages[matched] = frame_id - self._first_seen[rows]
        s_ids[new] = new_ids
        s_ages[new] = 0
        return s_ids, s_ages

    def _refresh(self, rows: Tensor, dets: list[Tensor], frame_id: int) -> None:
        """Matched memory ``rows`` take their detections (boxes, scores, labels, embeds); the momentum
        weights the NEW embedding."""
        if rows.numel() == 0:
            return
        boxes, scores, labels, embeds = dets
        m = self.config.memo_momentum
        # Out-of-place writes: memory may hold inference-mode tensors from an earlier call.
        mixed = (1 - m) * self._embeds[rows] + m * embeds
        self._embeds = self._embeds.index_put((rows,), mixed)
        self._boxes = self._boxes.index_put((rows,), boxes)
        self._labels = self._labels.index_put((rows,), labels)
        self._scores = self._scores.index_put((rows,), scores)
        self._last_seen = self._last_seen.index_put((rows,), self._last_seen.new_tensor(frame_id))

    def _add(self, new_ids: Tensor, dets: list[Tensor], frame_id: int) -> None:
        """New tracks ``new_ids`` from their detections (boxes, scores, labels, embeds)."""
        num_new = new_ids.numel()
        if num_new == 0:
            return
        boxes, scores, labels, embeds = dets
        if self.num_tracks == 0:
            self._embeds = self._embeds.new_zeros(0, embeds.shape[1])
        self._ids = torch.cat([self._ids, new_ids])
        self._embeds = torch.cat([self._embeds, embeds])
        self._boxes = torch.cat([self._boxes, boxes])
        self._labels = torch.cat([self._labels, labels])
        self._scores = torch.cat([self._scores, scores])
        frames = torch.full((num_new,), frame_id, dtype=torch.long, device=new_ids.device)
        self._last_seen = torch.cat([self._last_seen, frames])
        self._first_seen = torch.cat([self._first_seen, frames])
        self._next_id += num_new

    def update(
        self,
        boxes: Tensor,
        scores: Tensor,
        labels: Tensor,
        embeds: Tensor,
        frame_id: int,
        stamp: float | None = None,
        camera_warp: object = None,
        score_thr: float | None = None,
    ) -> TrackResult:
        """Associate one frame of detections with the track memory and update it; a ``TrackResult``
        with rows in input order, on the inputs' device.

        boxes (N, 4) x1y1x2y2 (N may be 0), scores (N,), labels (N,) integer classes, embeds (N, D)
        any float dtype; frame_id strictly increasing between calls (gaps allowed). ``stamp``,
        ``camera_warp`` and ``score_thr`` are accepted for the tracker interface and ignored: the
        official tracker ages tracks in frames, has no motion model and uses its own score
        thresholds. ValueError on bad shapes, dtypes, non-finite values or a non-increasing
        frame_id; the memory is then unchanged.
        """
        self._check_inputs(boxes, scores, labels, embeds, frame_id)
        frame_id = int(frame_id)
        cfg = self.config
        device = boxes.device
        n = boxes.shape[0]
        self._to_device(device)
        # A track can only be matched while frame_id - last_seen <= memo_tracklet_frames.
        self._drop_expired(frame_id, strict=True)

        ids = torch.full((n,), -1, dtype=torch.long, device=device)
        match_out = torch.zeros(n, dtype=torch.float32, device=device)
        ages = torch.full((n,), -1, dtype=torch.long, device=device)
        if n == 0:
            self._drop_expired(frame_id, strict=False)
            self._last_frame_id = frame_id
            return _masa_result(ids, match_out, ages)

        order, dets = self._ranked(boxes, scores, labels, embeds)
        d_boxes, d_scores, d_labels, d_embeds = dets
        memo_rows, conf = self._match(d_boxes, d_scores, d_labels, d_embeds, frame_id)

        matched = memo_rows >= 0
        new = ~matched & (d_scores > cfg.init_score_thr)
        num_new = int(new.sum())
        new_ids = torch.arange(self._next_id, self._next_id + num_new, dtype=torch.long, device=device)

        s_ids, s_ages = self._ranked_outputs(memo_rows, new, new_ids, frame_id)
        rows = memo_rows[matched]

        self._refresh(rows, [d[matched] for d in dets], frame_id)
        self._add(new_ids, [d[new] for d in dets], frame_id)
        self._drop_expired(frame_id, strict=False)
        self._last_frame_id = frame_id

        # Back to input order.
        ids[order] = s_ids
        match_out[order] = torch.where(matched, conf, torch.zeros_like(conf))
        ages[order] = s_ages
        return _masa_result(ids, match_out, ages)


def _masa_result(ids: Tensor, match_scores: Tensor, ages: Tensor) -> TrackResult:
    """A TrackResult of the MASA tracker: every track it outputs is confirmed; it has no velocity."""
    states = torch.where(ids >= 0, int(TrackState.CONFIRMED), -1)
    velocities = torch.zeros(len(ids), 2, dtype=torch.float32, device=ids.device)
    return TrackResult(ids=ids, match_scores=match_scores, ages=ages, velocities=velocities, states=states)
