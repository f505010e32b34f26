"""The one entry point: RGB frames (and optionally boxes) in, tracks out.

``Pipeline`` wires detector → MASA model → tracker. The ROS node, the ``masa-track`` CLI, the
evaluation scripts and the benchmarks all call it, so what is measured offline is what runs on the
robot. Matching rules live in :mod:`masa_core.tracking.tracker`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import time
import weakref
from collections import OrderedDict, defaultdict
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import torch

from masa_core.config import ConfigError, PipelineConfig
from masa_core.detectors.base import Detections, Detector
from masa_core.detectors.factory import MASA_HEAD, build_detector_from_config
from masa_core.inputs import FrameError, check_frame, clean_detections
from masa_core.models.backends import accelerate_segmenter
from masa_core.models.build import build_runtime_model
from masa_core.models.masa_model import MasaModel
from masa_core.models.tinyvit_backbone import TinyViTBackbone
from masa_core.tracking import TrackerConfig, TrackResult, TrackState, build_tracker
from masa_core.tracking.camera_motion import SparseFlowMotion

if TYPE_CHECKING:
    from masa_core.segmentation.box_prompt import BoxPromptSegmenter

STAGES = ("detector", "preprocess", "backbone", "adapter", "embed", "tracker", "masks")


@dataclass(frozen=True)
class Track:
    """One tracked object in one frame.

    box: x1, y1, x2, y2 in pixels of the frame given to :meth:`Pipeline.process`.
    score: detection confidence now. match_score: association similarity this frame (0 when the
    track starts). age: frames since the track started (0 on its first frame). velocity: the box
    centre's velocity in pixels per second, from the tracker's Kalman filter ((0, 0) with the
    ``masa`` tracker, which has no motion model). state: the track's :class:`TrackState`.
    detection: the row of this frame's detections (given to :meth:`Pipeline.process`, or found by
    the detector) that the track matched.
    mask: with ``masks.enabled``, the instance mask as a bool array covering the box rounded outward
    and clipped to the image (:func:`masa_core.segmentation.box_window`); None when masks are off
    or the track is beyond ``masks.max_masks``.
    """

    id: int
    box: tuple[float, float, float, float]
    score: float
    label: int
    label_name: str
    match_score: float
    age: int
    mask: np.ndarray | None = field(default=None, compare=False, repr=False)
    velocity: tuple[float, float] = (0.0, 0.0)
    state: TrackState = TrackState.CONFIRMED
    detection: int = -1


@dataclass
class FrameResult:
    """The tracks of one frame, how many input boxes were dropped, and per-stage seconds."""

    frame_index: int
    tracks: list[Track]
    dropped_boxes: int
    timings: dict[str, float]


@dataclass
class PipelineStats:
    """Running totals since the pipeline was built or reset."""

    frames: int = 0
    boxes_in: int = 0
    boxes_dropped: int = 0
    seconds: dict[str, float] = field(default_factory=lambda: defaultdict(float))

    def mean_ms(self) -> dict[str, float]:
        """Mean milliseconds per frame for each stage."""
        return {s: 1000.0 * self.seconds[s] / max(self.frames, 1) for s in STAGES}


@dataclass(frozen=True)
class _Features:
    """One frame's features inside the batch that computed them: the adapter's pyramid and the
    backbone's last tap (SAM's image embedding) with a leading batch dimension, the frame's ``row``
    in them, the padded model input's size and the resize scale from frame to model pixels."""

    pyramid: list[torch.Tensor]
    embedding: torch.Tensor
    row: int
    input_hw: tuple[int, ...]
    scale: float

    def alone(self) -> tuple[list[torch.Tensor], torch.Tensor]:
        """This frame's pyramid and embedding, batch dimension 1 (views, no copies)."""
        rows = slice(self.row, self.row + 1)
        return [p[rows] for p in self.pyramid], self.embedding[rows]


@dataclass
class _Work:
    """One frame on its way through :meth:`Pipeline.process_batch`."""

    frame: np.ndarray
    index: int
    stamp: float | None
    given: Detections | None
    own_head: bool
    score_thr: float | None
    timings: dict[str, float] = field(default_factory=dict)
    dets: Detections = field(default_factory=Detections.empty)
    rows: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    dropped: int = 0
    features: _Features | None = None
    embeds: torch.Tensor | None = None

    def set_boxes(self, dets: Detections, clean: Callable[..., tuple[Detections, np.ndarray, int]]) -> None:
        """Keep ``dets`` cleaned by ``clean`` (:meth:`Pipeline._clean`) for this frame's size."""
        self.dets, self.rows, self.dropped = clean(dets, self.frame.shape[1], self.frame.shape[0])


class Pipeline:
    """Detector + MASA model + tracker for one camera stream.

    >>> pipe = Pipeline(load_config("config/masa.yaml"))
    >>> result = pipe.process(rgb_frame)             # boxes from the configured detector
    >>> result = pipe.process(rgb_frame, detections)  # boxes given ("given observations")
    """

    def __init__(
        self,
        config: PipelineConfig | None = None,
        detector: Detector | None = None,
        model: MasaModel | None = None,
        segmenter: BoxPromptSegmenter | None = None,
    ) -> None:
        self.config = (config or PipelineConfig()).validate()
        self._detector = detector
        self.model = model if model is not None else build_runtime_model(self.config.model, self.config.masks.enabled)
        self.segmenter = self._build_segmenter(segmenter) if self.config.masks.enabled else None
        self.tracker = build_tracker(self.config.tracker)
        self._camera_motion = SparseFlowMotion()
        # Offline evaluation runs the same frames with many box sets: features of up to this many
        # frames are kept, keyed by the frame's content (0: off, what the node uses).
        self.feature_cache_size = 0
        self._feature_cache: OrderedDict[bytes, tuple] = OrderedDict()
        self.stats = PipelineStats()
        self._frame_index = 0
        # The configured detector runs on a worker thread beside the backbone and adapter (False: in turn).
        self.detect_beside_features = True
        self._worker: ThreadPoolExecutor | None = None

    @property
    def detector(self) -> Detector:
        """The configured detector, built on first use (so given boxes need no detector weights)."""
        if self._detector is None:
            self._detector = build_detector_from_config(self.config.detector)
        return self._detector

    def _build_segmenter(self, given: BoxPromptSegmenter | None) -> BoxPromptSegmenter:
        """The mask decoder, reusing the backbone's image embedding: the backbone must be SAM's encoder."""
        from masa_core.segmentation.box_prompt import BoxPromptSegmenter

        if not isinstance(self.model.backbone, TinyViTBackbone):
            raise ConfigError(
                f"masks.enabled needs a backbone that is SAM's image encoder; {self.model.variant!r} is not"
            )
        size = self.model.input_size
        segmenter = given if given is not None else BoxPromptSegmenter(size, self.config.masks.checkpoint)
        if segmenter.input_size != size:
            raise ValueError(f"segmenter input size {segmenter.input_size} != model input size {size}")
        segmenter = segmenter.to(self.model.device)
        accelerate_segmenter(self.model, segmenter)  # the model's backend runs the mask decoder too
        return segmenter

    def configure_tracker(self, config: TrackerConfig) -> None:
        """Use tracker settings ``config`` from the next frame on; a new ``kind`` starts a fresh tracker."""
        config.validate()
        if config.kind != self.tracker.config.kind:
            self.tracker = build_tracker(config)
        self.tracker.config = config
        self.config = dataclasses.replace(self.config, tracker=config)

    def reset(self) -> None:
        """Forget all tracks and statistics (a new sequence starts)."""
        self.tracker.reset()
        self._camera_motion.reset()
        self.stats = PipelineStats()
        self._frame_index = 0

    def process(
        self,
        frame: np.ndarray,
        detections: Detections | None = None,
        stamp: float | None = None,
        score_thr: float | None = None,
    ) -> FrameResult:
        """Track one (H, W, 3) uint8 RGB frame; ``detections`` replaces the detector when given.

        stamp: the frame's capture time in seconds (a camera header's stamp), so the tracker's motion
        model uses the real time between frames; None: frames are ``1 / tracker.fps`` apart.
        score_thr: the operating threshold of the detector that scored ``detections`` (scores are on
        each detector's scale); the configured detector's own is used for its boxes. MASA-SORT
        takes it for the score thresholds its config leaves null.
        Raises :class:`masa_core.inputs.FrameError` for a frame that is not an image; the tracker
        state is then untouched. Invalid boxes are dropped and counted in ``dropped_boxes``.
        This is :meth:`process_batch` with a batch of one.
        """
        return self.process_batch([frame], [detections], [stamp], score_thr)[0]

    def process_batch(
        self,
        frames: Sequence[np.ndarray],
        detections: Sequence[Detections | None] | None = None,
        stamps: Sequence[float | None] | None = None,
        score_thr: float | None = None,
    ) -> list[FrameResult]:
        """Track consecutive frames of this stream at once; the results equal :meth:`process` on each
        in turn (match scores to float rounding), one :class:`FrameResult` per frame, in order.

        ``detections`` and ``stamps``, when given, hold one entry per frame (None: the detector's
        boxes, or no stamp). The frames' detector runs per frame; the backbone and adapter run once
        on the stacked model inputs of each group of frames whose padded input has the same shape,
        the track head once for all boxes of a group; then the tracker and the masks run frame by
        frame. Shared stage times are split evenly over the frames that shared them. Everything is
        checked first: a bad frame raises :class:`FrameError` (a mismatched length ``ValueError``)
        before any state changes. ``feature_cache`` and ``detect_beside_features`` apply as in
        :meth:`process` (the detector works through the batch's frames on its thread).
        """
        work = self._start_batch(frames, detections, stamps, score_thr)
        if not work:
            return []
        self._boxes_and_features(work)
        self._embed_batch(work)
        return [self._finish(w) for w in work]

    def process_streams(
        self,
        others: Sequence[Pipeline],
        frames: Sequence[np.ndarray],
        detections: Sequence[Detections | None] | None = None,
        stamps: Sequence[float | None] | None = None,
        score_thr: float | None = None,
    ) -> list[FrameResult]:
        """One frame of each of several camera streams: this pipeline's and then ``others``'s, which
        must share this one's model (``Pipeline(config, model=pipe.model, detector=pipe.detector)``)
        and differ from it in their tracker settings only. The frames' backbone and adapter run once
        per group of equal input shape, the track head once, the detector as here; then each stream's
        own tracker. The results equal each pipeline's :meth:`process` on its frame; ``detections``
        and ``stamps`` hold one entry per stream (``score_thr`` as in :meth:`process`). Everything is
        checked before any state changes: a bad frame raises :class:`FrameError` naming its stream."""
        pipes = [self, *others]
        self._check_streams(pipes)
        count = len(pipes)
        dets = list(detections) if detections is not None else [None] * count
        times = list(stamps) if stamps is not None else [None] * count
        if isinstance(frames, np.ndarray) and frames.ndim == 3:
            raise ValueError("frames: a sequence with one (H, W, 3) image per stream")
        frames = list(frames)
        if not len(frames) == len(dets) == len(times) == count:
            raise ValueError(f"{count} streams need one frame, detections entry and stamp each")
        work = []
        for i, (p, f, d, t) in enumerate(zip(pipes, frames, dets, times, strict=True)):
            try:
                work.append(p._start_batch([f], [d], [t], score_thr)[0])
            except FrameError as e:
                raise FrameError(f"stream {i}: {e}") from None
        self._boxes_and_features(work)
        self._embed_batch(work)
        return [p._finish(w) for p, w in zip(pipes, work, strict=True)]

    def _check_streams(self, pipes: list[Pipeline]) -> None:
        """``ValueError`` unless ``pipes`` are distinct, share this model and agree but for the tracker."""
        if len({id(p) for p in pipes}) < len(pipes):
            raise ValueError(
                "process_streams: a pipeline appears twice; one frame per stream (process_batch batches one)"
            )
        for p in pipes:
            if p.model is not self.model:
                raise ValueError("process_streams: every stream's pipeline must share one model (model=...)")
            if dataclasses.replace(p.config, tracker=self.config.tracker) != self.config:
                raise ValueError("process_streams: the streams' configs may differ in their tracker settings only")

    def _start_batch(
        self,
        frames: Sequence[np.ndarray],
        detections: Sequence[Detections | None] | None,
        stamps: Sequence[float | None] | None,
        score_thr: float | None,
    ) -> list[_Work]:
        """One :class:`_Work` per frame, after checking every input (nothing changes before)."""
        if isinstance(frames, np.ndarray) and frames.ndim == 3:
            raise ValueError("frames: a sequence of (H, W, 3) images; use process() for one frame")
        if isinstance(detections, Detections):
            raise ValueError("detections: a sequence with one entry (Detections or None) per frame")
        frames = list(frames)
        dets = list(detections) if detections is not None else [None] * len(frames)
        times = list(stamps) if stamps is not None else [None] * len(frames)
        for name, given in (("detections", dets), ("stamps", times)):
            if len(given) != len(frames):
                raise ValueError(f"{name}: {len(given)} entries for {len(frames)} frames; give one per frame")
        for i, frame in enumerate(frames):
            try:
                check_frame(frame)
            except FrameError as e:
                raise e if len(frames) == 1 else FrameError(f"frame {i} of the batch: {e}") from None
        own_head = self.config.detector.kind == MASA_HEAD
        return [
            _Work(frame, self._frame_index + i, times[i], dets[i], own_head and dets[i] is None, score_thr)
            for i, frame in enumerate(frames)
        ]

    def _boxes_and_features(self, work: list[_Work]) -> None:
        """Every frame's clean boxes and the features of those that need them: the configured
        detector runs on a worker thread beside the backbone and adapter with ``detect_beside_features``
        (both release the GIL in their runtimes, so its time hides behind theirs; the features of a
        frame without boxes are then wasted), else in turn, and only frames with boxes get features."""
        detect = [w for w in work if w.given is None and not w.own_head]
        detector = self.detector if detect else None  # built here, not on the worker thread
        for w in work:
            if w.given is not None:
                with self._timed("detector", w.timings):
                    dets = w.given
                w.set_boxes(dets, self._clean)
        if detect and self.detect_beside_features:
            if self._worker is None:
                self._worker = ThreadPoolExecutor(1, thread_name_prefix="masa-detector")
                weakref.finalize(self, self._worker.shutdown, wait=False)  # its thread ends with the pipeline
            pending = self._worker.submit(lambda: [self._run_detector(detector, w) for w in detect])
            try:
                self._features([w for w in work if w.own_head or w.given is None or len(w.dets)])
            finally:
                pending.result()
        else:
            for w in detect:
                self._run_detector(detector, w)
            self._features([w for w in work if w.own_head or len(w.dets)])
        for w in work:
            if w.own_head:
                assert w.features is not None
                pyramid, _ = w.features.alone()
                with self._timed("detector", w.timings):
                    dets = self._detect_with_head(pyramid, w.features.input_hw, w.frame.shape[:2], w.features.scale)
                w.set_boxes(dets, self._clean)

    def _run_detector(self, detector: Detector, w: _Work) -> None:
        """``detector``'s clean boxes of ``w``'s frame, and its score threshold."""
        with self._timed("detector", w.timings):
            dets = detector(w.frame, w.index)
        w.score_thr = getattr(detector, "score_thr", None)
        w.set_boxes(dets, self._clean)

    @torch.inference_mode()
    def _embed_batch(self, work: list[_Work]) -> None:
        """The embeddings of every frame's boxes: one track head call per batch of features."""
        groups: dict[int, list[_Work]] = defaultdict(list)
        for w in work:
            if w.features is not None and len(w.dets):
                groups[id(w.features.pyramid[0])].append(w)
        for group in groups.values():
            boxes = torch.cat([torch.from_numpy(w.dets.boxes) * w.features.scale for w in group])  # type: ignore[union-attr]
            rows = torch.cat([torch.full((len(w.dets),), w.features.row) for w in group])  # type: ignore[union-attr]
            with self._timed_shared("embed", [w.timings for w in group]):
                embeds = self.model.embed(group[0].features.pyramid, boxes, rows)  # type: ignore[union-attr]
            for w, part in zip(group, embeds.split([len(w.dets) for w in group]), strict=True):
                w.embeds = part

    def _finish(self, w: _Work) -> FrameResult:
        """The tracker step, tracks and masks of one frame of a batch, in the stream's order."""
        embeds = w.embeds if w.embeds is not None else torch.zeros(0, self.model.embed_dim)
        with self._timed("tracker", w.timings):
            result = self._update_tracker(w.frame, w.dets, embeds, w.index, w.stamp, w.score_thr)
        tracks = self._tracks(w.dets, w.rows, result)
        if self.segmenter is not None and tracks:
            assert w.features is not None
            with self._timed("masks", w.timings):
                tracks = self._with_masks(tracks, w.features.alone()[1], w.frame.shape[:2], w.features.scale)
        self._frame_index += 1
        self._count(len(w.dets), w.dropped, w.timings)
        return FrameResult(w.index, tracks, w.dropped, w.timings)

    def _count(self, kept: int, dropped: int, timings: dict[str, float]) -> None:
        """Add one frame's boxes and stage times to :attr:`stats`."""
        self.stats.frames += 1
        self.stats.boxes_in += kept + dropped
        self.stats.boxes_dropped += dropped
        for stage, seconds in timings.items():
            self.stats.seconds[stage] += seconds

    def _update_tracker(
        self,
        frame: np.ndarray,
        dets: Detections,
        embeds: torch.Tensor,
        index: int,
        stamp: float | None,
        score_thr: float | None,
    ) -> TrackResult:
        """One tracker step on this frame's clean detections and their embeddings."""
        warp = self._camera_motion(frame) if self.config.tracker.camera_motion != "none" else None
        return self.tracker.update(
            torch.from_numpy(dets.boxes).to(embeds.device),
            torch.from_numpy(dets.scores).to(embeds.device),
            torch.from_numpy(dets.labels).to(embeds.device),
            embeds,
            frame_id=index,
            stamp=stamp,
            camera_warp=warp,
            score_thr=score_thr,
        )

    def _clean(self, dets: Detections, width: int, height: int) -> tuple[Detections, np.ndarray, int]:
        """The clean detections, the input rows they came from, and how many were dropped."""
        frame_cfg = self.config.frame
        clean, rows = clean_detections(dets, width, height, frame_cfg.min_box_size, frame_cfg.max_detections)
        return clean, rows, len(dets) - len(rows)

    @torch.inference_mode()
    def _features(self, work: list[_Work]) -> None:
        """The features of ``work``'s frames: the adapter's pyramid, the backbone's last tap (SAM's
        image embedding for masks), the padded model input's size and the resize scale; one backbone
        and adapter call per group of frames whose model inputs have the same shape. Reused from
        ``feature_cache`` (frames already seen, by content) when it is on."""
        groups: dict[tuple[int, ...], list[tuple[_Work, torch.Tensor, float, bytes | None]]] = defaultdict(list)
        for w in work:
            key = hashlib.blake2b(w.frame.tobytes(), digest_size=16).digest() if self.feature_cache_size else None
            if key is not None and key in self._feature_cache:
                self._feature_cache.move_to_end(key)
                w.features = self._feature_cache[key]
                continue
            with self._timed("preprocess", w.timings):
                image, scale = self.model.preprocess(w.frame)
            groups[tuple(image.shape)].append((w, image, scale, key))
        for group in groups.values():
            shared = [w.timings for w, *_ in group]
            with self._timed_shared("backbone", shared):
                taps = self.model.backbone(group[0][1] if len(group) == 1 else torch.cat([g[1] for g in group]))
            with self._timed_shared("adapter", shared):
                pyramid = self.model.fuse(taps)
            input_hw = tuple(group[0][1].shape[-2:])
            for row, (w, _, scale, key) in enumerate(group):
                w.features = _Features(pyramid, taps[-1], row, input_hw, scale)
                if key is not None:
                    alone = w.features.alone()
                    self._feature_cache[key] = _Features(alone[0], alone[1], 0, input_hw, scale)
                    while len(self._feature_cache) > self.feature_cache_size:
                        self._feature_cache.popitem(last=False)

    @torch.inference_mode()
    def _detect_with_head(
        self, pyramid: list[torch.Tensor], input_hw: tuple[int, int], frame_hw: tuple[int, int], scale: float
    ) -> Detections:
        """Class-agnostic boxes from the adapter's own detection head ("segment and track anything");
        ``input_hw``: the padded model input's size."""
        valid = (min(input_hw[0], round(frame_hw[0] * scale)), min(input_hw[1], round(frame_hw[1] * scale)))
        score_thr = self.config.detector.score_thr
        score_thr = 0.02 if score_thr is None else score_thr
        return self.model.detect(pyramid, tuple(input_hw), valid, scale, score_thr, frame_hw)

    def _tracks(self, dets: Detections, rows: np.ndarray, result: TrackResult) -> list[Track]:
        names = tuple(self._detector.class_names) if self._detector is not None else ()
        ids, match, ages = result.ids.cpu(), result.match_scores.cpu(), result.ages.cpu()
        velocities, states = result.velocities.cpu().numpy(), result.states.cpu()
        tracks = []
        for i in np.flatnonzero(ids.numpy() >= 0):
            label = int(dets.labels[i])
            tracks.append(
                Track(
                    id=int(ids[i]),
                    box=tuple(float(v) for v in dets.boxes[i]),
                    score=float(dets.scores[i]),
                    label=label,
                    label_name=names[label] if 0 <= label < len(names) else "object",
                    match_score=float(match[i]),
                    age=int(ages[i]),
                    velocity=(float(velocities[i, 0]), float(velocities[i, 1])),
                    state=TrackState(int(states[i])),
                    detection=int(rows[i]),
                )
            )
        return tracks

    def _with_masks(
        self, tracks: list[Track], embedding: torch.Tensor, frame_hw: tuple[int, int], scale: float
    ) -> list[Track]:
        """``tracks`` with box-prompted masks for the ``masks.max_masks`` highest-scoring ones;
        ``embedding`` is the backbone's last tap, SAM's image embedding of this frame."""
        assert self.segmenter is not None
        chosen = sorted(range(len(tracks)), key=lambda i: -tracks[i].score)[: self.config.masks.max_masks]
        boxes = np.array([tracks[i].box for i in chosen], np.float32).reshape(-1, 4)
        crops = self.segmenter.segment_crops(embedding, boxes, frame_hw, scale)
        out = list(tracks)
        for i, crop in zip(chosen, crops, strict=True):
            out[i] = dataclasses.replace(tracks[i], mask=crop)
        return out

    @contextmanager
    def _timed_shared(self, stage: str, shared: list[dict[str, float]]) -> Iterator[None]:
        """Time ``stage`` once for the frames whose ``shared`` timings it serves, each getting an equal part."""
        total: dict[str, float] = {}
        with self._timed(stage, total):
            yield
        for timings in shared:
            timings[stage] = timings.get(stage, 0.0) + total[stage] / len(shared)

    @contextmanager
    def _timed(self, stage: str, timings: dict[str, float]) -> Iterator[None]:
        start = time.perf_counter()
        yield
        if self.model.device.type == "cuda":
            torch.cuda.synchronize(self.model.device)
        timings[stage] = time.perf_counter() - start
