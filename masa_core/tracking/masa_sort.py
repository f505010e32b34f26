"""MASA-SORT: MASA's appearance embeddings fused with Kalman motion, in ByteTrack / BoT-SORT's design.

One ``update`` per frame (``docs/tracker.md`` has the figure):

1. The tracker clock advances by the real time since the previous frame (the frame's stamp, or
   ``1 / fps`` without stamps); a repeated or backwards stamp advances it by 0. Every track is
   predicted to now.
2. **Stage 1**, confirmed and lost tracks against detections scoring ``>= high_score_thr`` (left
   null: the detector's own threshold, scores being on each detector's scale; 0.5 without one): the
   cost of a pair is the smaller of ``1 - IoU`` (box vs. predicted box) and ``1 - s``, where ``s``
   is MASA's own association similarity between the box's embedding and the track's memory
   (``match_metric``: by default ``(bisoftmax + cosine) / 2``, as the official tracker computes it);
   the smaller-cost fusion is BoT-SORT's. Each cue is gated by the
   other: the appearance cost counts only when ``s >= appearance_thr`` and the box lies near the
   prediction (IoU ``>= proximity_iou_thr``, or inside the Kalman filter's 95 % Mahalanobis gate,
   which widens while a track is lost: this is how a lost track is re-identified); the IoU cost
   counts only when IoU ``>= match_iou_thr`` and the appearance is not clearly different
   (``cos >= appearance_veto``). Optimal assignment (``scipy.optimize.linear_sum_assignment``).
3. **Stage 2** (ByteTrack), tracks still unmatched that were seen in the previous frame against
   detections scoring in ``[low_score_thr, high_score_thr)``: IoU only, ``>= low_match_iou_thr``.
4. **Stage 3**, tentative tracks against the high detections left, as stage 1 with IoU
   ``>= tentative_iou_thr``. An unmatched tentative track is dropped; an unmatched confirmed track
   becomes lost (predicted, not published).
5. High detections left that score ``>= new_track_thr`` (null: the high threshold, as in boxmot's
   ByteTrack) start tentative tracks, confirmed after
   ``confirm_hits`` matches (at once on the tracker's first frame, as ByteTrack does).
6. A matched track's filter is corrected with the box. Its embedding memory is updated
   (``embed_momentum`` weights the new one) only from high-score boxes that overlap no other box
   by more than ``occlusion_iou_thr`` IoU: an occluded box shows two objects.
7. Tracks unseen for more than ``lost_seconds`` plus one frame period (``1 / fps``) are forgotten
   before the matching: ByteTrack's ``track_buffer`` frames, in seconds.

Rows that are not finite or have no area are ignored (id -1); nothing else changes.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment
from torch import Tensor

from masa_core.boxes import box_iou
from masa_core.tracking import kalman
from masa_core.tracking.matching import match_similarity
from masa_core.tracking.tracker import TrackerConfig, TrackResult, TrackState, check_update_inputs

_NO_MATCH = 1e6


@dataclass
class _Tracks:
    """The live tracks as aligned arrays (struct of arrays, one row per track)."""

    ids: np.ndarray  # (M,) int64
    mean: np.ndarray  # (M, 8) Kalman state
    cov: np.ndarray  # (M, 8, 8)
    embed: np.ndarray  # (M, D) appearance memory: moving average of the raw MASA embeddings
    state: np.ndarray  # (M,) int64 TrackState
    hits: np.ndarray  # (M,) int64 matches so far
    first_frame: np.ndarray  # (M,) int64
    last_seen: np.ndarray  # (M,) float64 tracker-clock seconds of the last match
    seen_last_frame: np.ndarray  # (M,) bool

    @classmethod
    def empty(cls, dim: int = 0) -> _Tracks:
        z = np.zeros(0)
        return cls(
            z.astype(np.int64), np.zeros((0, 8)), np.zeros((0, 8, 8)), np.zeros((0, dim), np.float32),
            z.astype(np.int64), z.astype(np.int64), z.astype(np.int64), z, z.astype(bool),
        )  # fmt: skip

    def __len__(self) -> int:
        return len(self.ids)

    def take(self, keep: np.ndarray) -> _Tracks:
        return _Tracks(*(getattr(self, f.name)[keep] for f in fields(self)))

    def extend(self, other: _Tracks) -> _Tracks:
        return _Tracks(*(np.concatenate([getattr(self, f.name), getattr(other, f.name)]) for f in fields(self)))


@dataclass
class _Frame:
    """One frame's detections as numpy arrays, and what the stages decided for them."""

    boxes: np.ndarray  # (N, 4) float64
    scores: np.ndarray  # (N,)
    embed: np.ndarray  # (N, D) raw embeddings (zero for invalid rows)
    unit: np.ndarray  # (N, D) the same, unit length
    valid: np.ndarray  # (N,) bool
    track: np.ndarray  # (N,) int64 row in the tracks, -1 if none
    match: np.ndarray  # (N,) float32 1 - cost of the match


def _unit(x: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    return (x / np.where(norm > 0, norm, 1.0)).astype(np.float32)


class MasaSortTracker:
    """Online tracker fusing MASA appearance with Kalman motion (module docstring: the algorithm).

    ``update`` has :class:`masa_core.tracking.MasaTracker`'s interface plus ``stamp`` (seconds) and
    ``camera_warp`` (a 2×3 affine from the previous frame to this one). Ids start at 0, increase
    and are never reused until :meth:`reset`.
    """

    def __init__(self, config: TrackerConfig | None = None) -> None:
        self.config = config if config is not None else TrackerConfig()
        self.config.validate()
        self.reset()

    def reset(self) -> None:
        """Forget every track, restart ids at 0 and the clock at 0."""
        self._tracks = _Tracks.empty()
        self._next_id = 0
        self._last_frame_id: int | None = None
        self._last_stamp: float | None = None
        self.clock = 0.0
        self.time_faults = 0  # stamps that were not finite, repeated or went backwards

    @property
    def num_tracks(self) -> int:
        """Tracks held: tentative, confirmed and lost."""
        return len(self._tracks)

    def track_states(self) -> dict[int, TrackState]:
        """{track id: state} of every track held."""
        return {int(i): TrackState(int(s)) for i, s in zip(self._tracks.ids, self._tracks.state, strict=True)}

    def update(
        self,
        boxes: Tensor,
        scores: Tensor,
        labels: Tensor,
        embeds: Tensor,
        frame_id: int,
        stamp: float | None = None,
        camera_warp: np.ndarray | None = None,
        score_thr: float | None = None,
    ) -> TrackResult:
        """Associate one frame of detections with the tracks and update them.

        boxes (N, 4) x1y1x2y2, scores (N,), labels (N,) int (kept for the interface; the class is
        the detector's), embeds (N, D); frame_id strictly increasing; stamp in seconds (None: the
        frame id over ``fps``); score_thr: the operating threshold of the detector that scored the
        boxes, for thresholds the config leaves null (:meth:`TrackerConfig.score_thresholds`).
        Raises ``ValueError`` on wrong shapes, types or frame order, or an
        embedding size other than the tracks', before anything changes.
        """
        check_update_inputs(boxes, scores, labels, embeds, frame_id, self._last_frame_id)
        if len(boxes) and len(self._tracks) and embeds.shape[1] != self._tracks.embed.shape[1]:
            raise ValueError(f"embeds have dimension {embeds.shape[1]}, the tracks {self._tracks.embed.shape[1]}")
        frame = self._frame(boxes, scores, embeds)
        dt = self._advance(int(frame_id), stamp)
        self._forget_expired()
        tracks = self._tracks
        if camera_warp is not None:
            tracks.mean, tracks.cov = kalman.warp(tracks.mean, tracks.cov, np.asarray(camera_warp, np.float64))
        tracks.mean, tracks.cov = kalman.predict(tracks.mean, tracks.cov, dt)
        high, new = self.config.score_thresholds(score_thr)
        self._associate(frame, high)
        new_rows = self._correct_and_start(frame, int(frame_id), high, new)
        self._last_frame_id = int(frame_id)
        return self._result(frame, int(frame_id), new_rows, boxes.device)

    def _frame(self, boxes: Tensor, scores: Tensor, embeds: Tensor) -> _Frame:
        b = boxes.detach().cpu().double().numpy().reshape(-1, 4)
        s = scores.detach().cpu().double().numpy().reshape(-1)
        e = embeds.detach().cpu().float().numpy()
        with np.errstate(invalid="ignore"):
            valid = np.isfinite(b).all(1) & np.isfinite(s) & np.isfinite(e).all(1)
            valid &= (b[:, 2] > b[:, 0]) & (b[:, 3] > b[:, 1])
        b, e = np.where(valid[:, None], b, 0.0), np.where(valid[:, None], e, 0.0)
        n = len(b)
        e = e.astype(np.float32)
        return _Frame(b, np.where(valid, s, 0.0), e, _unit(e), valid, np.full(n, -1), np.zeros(n, np.float32))

    def _advance(self, frame_id: int, stamp: float | None) -> float:
        """Advance the clock to this frame; returns the step in seconds (0 for a bad stamp)."""
        if stamp is None:
            stamp = frame_id / self.config.fps
        stamp = float(stamp)
        if not np.isfinite(stamp):
            self.time_faults += 1
            return 0.0
        dt = 0.0 if self._last_stamp is None else stamp - self._last_stamp
        if self._last_stamp is not None and dt <= 0:
            self.time_faults += 1
            dt = 0.0
        self._last_stamp = stamp
        self.clock += dt
        return dt

    def _forget_expired(self) -> None:
        """Drop tracks unseen for more than ``lost_seconds`` plus one frame period (ByteTrack's
        ``track_buffer`` frames: the frame after the buffer may still match); after a jump in time,
        tracks that were never marked lost go too."""
        t, cfg = self._tracks, self.config
        limit = cfg.lost_seconds + 1.0 / cfg.fps + 1e-6
        self._tracks = t.take(self.clock - t.last_seen <= limit)

    def _associate(self, frame: _Frame, high_thr: float) -> None:
        """The three stages; fills ``frame.track`` and ``frame.match``."""
        cfg, t = self.config, self._tracks
        high = frame.valid & (frame.scores >= high_thr)
        low = frame.valid & ~high & (frame.scores >= cfg.low_score_thr)
        active = (t.state == TrackState.CONFIRMED) | (t.state == TrackState.LOST)
        self._match(frame, high, active, cfg.match_iou_thr, appearance=True)
        recent = (t.state == TrackState.CONFIRMED) & t.seen_last_frame & ~np.isin(np.arange(len(t)), frame.track)
        self._match(frame, low, recent, cfg.low_match_iou_thr, appearance=False)
        self._match(frame, high & (frame.track < 0), t.state == TrackState.TENTATIVE, cfg.tentative_iou_thr, True)

    def _match(self, frame: _Frame, dets: np.ndarray, trks: np.ndarray, min_iou: float, appearance: bool) -> None:
        """Optimal assignment of the unmatched ``dets`` to the ``trks`` (boolean masks)."""
        d_rows = np.flatnonzero(dets & (frame.track < 0))
        t_rows = np.flatnonzero(trks)
        if not len(d_rows) or not len(t_rows):
            return
        cost = self._cost(frame, d_rows, t_rows, min_iou, appearance)
        r, c = linear_sum_assignment(cost)
        ok = cost[r, c] < _NO_MATCH
        frame.track[d_rows[r[ok]]] = t_rows[c[ok]]
        frame.match[d_rows[r[ok]]] = 1.0 - cost[r[ok], c[ok]]

    def _cost(self, frame: _Frame, d_rows: np.ndarray, t_rows: np.ndarray, min_iou: float, appearance: bool):
        """(len(d_rows), len(t_rows)) fused, gated costs; ``_NO_MATCH`` where a pair may not match."""
        cfg, t = self.config, self._tracks
        boxes = frame.boxes[d_rows]
        iou = box_iou(boxes, kalman.xywh_to_xyxy(t.mean[t_rows, :4]))
        cost = np.where(iou >= min_iou, 1.0 - iou, _NO_MATCH)
        if not appearance:
            return cost
        cos = frame.unit[d_rows] @ _unit(t.embed[t_rows]).T
        sim = match_similarity(
            torch.from_numpy(frame.embed[d_rows]), torch.from_numpy(t.embed[t_rows]), cfg.match_metric
        ).numpy()
        mahalanobis = kalman.gating_distance(t.mean[t_rows], t.cov[t_rows], boxes).T
        near = (iou >= cfg.proximity_iou_thr) | (mahalanobis <= cfg.gate_chi2)
        cost = np.where(cos >= cfg.appearance_veto, cost, _NO_MATCH)
        app_cost = np.where(near & (sim >= cfg.appearance_thr), 1.0 - sim, _NO_MATCH)
        return np.minimum(cost, app_cost)

    def _correct_and_start(self, frame: _Frame, frame_id: int, high_thr: float, new_thr: float) -> np.ndarray:
        """Correct matched tracks, age the others, start new ones; returns the new tracks' detection rows."""
        cfg, t = self.config, self._tracks
        det = np.flatnonzero(frame.track >= 0)
        rows = frame.track[det]
        if len(rows):
            t.mean[rows], t.cov[rows] = kalman.update(t.mean[rows], t.cov[rows], frame.boxes[det])
            clean = (frame.scores[det] >= high_thr) & ~self._occluded(frame)[det]
            mixed = (1 - cfg.embed_momentum) * t.embed[rows] + cfg.embed_momentum * frame.embed[det]
            t.embed[rows] = np.where(clean[:, None], mixed, t.embed[rows])
            t.hits[rows] += 1
            t.last_seen[rows] = self.clock
        matched = np.zeros(len(t), bool)
        matched[rows] = True
        confirm = matched & ((t.state != TrackState.TENTATIVE) | (t.hits >= cfg.confirm_hits))
        t.state = np.where(confirm, TrackState.CONFIRMED, t.state)
        t.state = np.where(~matched & (t.state == TrackState.CONFIRMED), TrackState.LOST, t.state)
        t.seen_last_frame = matched
        keep = matched | (t.state != TrackState.TENTATIVE)
        new_index = np.cumsum(keep) - 1  # rows after dropping unmatched tentative tracks
        frame.track[det] = new_index[rows]
        self._tracks = t.take(keep)
        new = np.flatnonzero(frame.valid & (frame.track < 0) & (frame.scores >= new_thr))
        self._start(frame, new, frame_id)
        return new

    def _occluded(self, frame: _Frame) -> np.ndarray:
        """(N,) detections that overlap another valid detection by more than ``occlusion_iou_thr``."""
        iou = box_iou(frame.boxes, frame.boxes)
        np.fill_diagonal(iou, 0.0)
        iou[:, ~frame.valid] = 0.0
        return (iou > self.config.occlusion_iou_thr).any(axis=1)

    def _start(self, frame: _Frame, det: np.ndarray, frame_id: int) -> None:
        """New tracks from the detection rows ``det``: tentative, or confirmed on the first frame."""
        first = self._last_frame_id is None
        state = TrackState.CONFIRMED if first or self.config.confirm_hits <= 1 else TrackState.TENTATIVE
        n = len(det)
        mean, cov = kalman.initiate(frame.boxes[det])
        ids = np.arange(self._next_id, self._next_id + n)
        self._next_id += n
        if not len(self._tracks):
            self._tracks = _Tracks.empty(frame.embed.shape[1])
        born = _Tracks(
            ids, mean, cov, frame.embed[det], np.full(n, int(state)), np.ones(n, np.int64),
            np.full(n, frame_id), np.full(n, self.clock), np.ones(n, bool),
        )  # fmt: skip
        self._tracks = self._tracks.extend(born)
        frame.track[det] = np.arange(len(self._tracks) - n, len(self._tracks))

    def _result(self, frame: _Frame, frame_id: int, new_rows: np.ndarray, device: torch.device) -> TrackResult:
        """Per-detection outputs; tentative tracks get id -1 unless ``publish_tentative``."""
        t, n = self._tracks, len(frame.track)
        det = np.flatnonzero(frame.track >= 0)
        rows = frame.track[det]
        shown = (t.state[rows] == TrackState.CONFIRMED) | self.config.publish_tentative
        det, rows = det[shown], rows[shown]
        ids, ages, states = np.full(n, -1), np.full(n, -1), np.full(n, -1)
        velocities = np.zeros((n, 2), np.float32)
        ids[det], ages[det], states[det] = t.ids[rows], frame_id - t.first_frame[rows], t.state[rows]
        velocities[det] = t.mean[rows, 4:6]
        match = np.where(ids >= 0, frame.match, 0.0).astype(np.float32)
        match[new_rows] = 0.0

        def out(a: np.ndarray) -> Tensor:
            return torch.from_numpy(np.ascontiguousarray(a)).to(device)

        return TrackResult(out(ids), out(match), out(ages), out(velocities), out(states))
