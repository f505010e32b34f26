"""The one entry point: RGB frames (and optionally boxes) in, tracks out.

``Pipeline`` wires detector → MASA model → tracker. The ROS node, the ``masa-track`` CLI, the
evaluation scripts and the benchmarks all call it, so what is measured offline is what runs on the
robot. Matching rules live in :mod:`masa_core.tracking.tracker`.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import torch

from masa_core.config import PipelineConfig
from masa_core.detectors.base import Detections, Detector
from masa_core.detectors.factory import build_detector_from_config
from masa_core.inputs import check_frame, clean_detections
from masa_core.models.build import build_model
from masa_core.models.masa_model import MasaModel
from masa_core.tracking import MasaTracker

STAGES = ("detector", "preprocess", "backbone", "adapter", "embed", "tracker")


@dataclass(frozen=True)
class Track:
    """One tracked object in one frame.

    box: x1, y1, x2, y2 in pixels of the frame given to :meth:`Pipeline.process`.
    score: detection confidence now. match_score: association similarity this frame (0 when the
    track starts). age: frames since the track started (0 on its first frame).
    """

    id: int
    box: tuple[float, float, float, float]
    score: float
    label: int
    label_name: str
    match_score: float
    age: int


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
    ) -> None:
        self.config = (config or PipelineConfig()).validate()
        self._detector = detector
        self.model = model if model is not None else build_model(self.config.model)
        self.tracker = MasaTracker(self.config.tracker)
        self.stats = PipelineStats()
        self._frame_index = 0

    @property
    def detector(self) -> Detector:
        """The configured detector, built on first use (so given boxes need no detector weights)."""
        if self._detector is None:
            self._detector = build_detector_from_config(self.config.detector)
        return self._detector

    def reset(self) -> None:
        """Forget all tracks and statistics (a new sequence starts)."""
        self.tracker.reset()
        self.stats = PipelineStats()
        self._frame_index = 0

    def process(self, frame: np.ndarray, detections: Detections | None = None) -> FrameResult:
        """Track one (H, W, 3) uint8 RGB frame; ``detections`` replaces the detector when given.

        Raises :class:`masa_core.inputs.FrameError` for a frame that is not an image; the tracker
        state is then untouched. Invalid boxes are dropped and counted in ``dropped_boxes``.
        """
        check_frame(frame)
        height, width = frame.shape[:2]
        timings: dict[str, float] = {}
        index = self._frame_index
        with self._timed("detector", timings):
            dets = detections if detections is not None else self.detector(frame, index)
        dets, dropped = clean_detections(
            dets, width, height, self.config.frame.min_box_size, self.config.frame.max_detections
        )
        embeds = torch.zeros(0, self.model.adapter.embed_head.fc_embed.out_features)
        if len(dets):
            with self._timed("preprocess", timings):
                image, scale = self.model.preprocess(frame)
            with self._timed("backbone", timings), torch.inference_mode():
                taps = self.model.backbone(image)
            with self._timed("adapter", timings), torch.inference_mode():
                pyramid = self.model.adapter(taps)
            with self._timed("embed", timings):
                embeds = self.model.embed(pyramid, torch.from_numpy(dets.boxes) * scale)
        with self._timed("tracker", timings):
            result = self.tracker.update(
                torch.from_numpy(dets.boxes).to(embeds.device),
                torch.from_numpy(dets.scores).to(embeds.device),
                torch.from_numpy(dets.labels).to(embeds.device),
                embeds,
                frame_id=index,
            )
        tracks = self._tracks(dets, result.ids.cpu(), result.match_scores.cpu(), result.ages.cpu())
        self._frame_index += 1
        self.stats.frames += 1
        self.stats.boxes_in += len(dets) + dropped
        self.stats.boxes_dropped += dropped
        for stage, seconds in timings.items():
            self.stats.seconds[stage] += seconds
        return FrameResult(index, tracks, dropped, timings)

    def _tracks(self, dets: Detections, ids: torch.Tensor, match: torch.Tensor, ages: torch.Tensor) -> list[Track]:
        names = tuple(self._detector.class_names) if self._detector is not None else ()
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
                )
            )
        return tracks

    @contextmanager
    def _timed(self, stage: str, timings: dict[str, float]) -> Iterator[None]:
        start = time.perf_counter()
        yield
        if self.model.device.type == "cuda":
            torch.cuda.synchronize(self.model.device)
        timings[stage] = time.perf_counter() - start
