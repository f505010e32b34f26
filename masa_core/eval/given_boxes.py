"""Tracking with given observations: ground-truth boxes in, association quality out.

MASA's paper evaluates association alone by feeding every tracker the same boxes ("testing with
given observations"). Here the boxes are a MOTChallenge sequence's filtered ground truth (score 1),
handed frame by frame to one of:

- :class:`masa_core.pipeline.Pipeline`: MASA embeddings with MASA-SORT (``"masa_sort"``, the
  default tracker) or with the official MASA tracker (``"masa"``);
- :class:`masa_core.baselines.iou_tracker.IouTracker` (``"iou"``): the IoU-only baseline;
- the MASA tracker fed with crop-and-embed ImageNet MobileNetV2 features (``"reid"``): the
  DeepSORT-style appearance baseline;
- a boxmot peer, motion only (``"bytetrack"``, ``"ocsort"``, ``"botsort"``; :mod:`masa_core.baselines.peers`).

The ids are written as a MOTChallenge results file and scored with
:func:`masa_core.eval.metrics.evaluate_mot`, so detection metrics (DetA, MOTA) are near perfect by
construction and AssA / IDF1 / IDSW measure the association.
With a :class:`masa_core.eval.degrade.Degradation` the given boxes are first degraded (dropped,
jittered, false positives added; seeded) and scored against the unchanged ground truth.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from masa_core.baselines.crop_reid import CropReIDEmbedder
from masa_core.baselines.iou_tracker import IouTracker
from masa_core.baselines.peers import PEERS, PeerTracker
from masa_core.config import PipelineConfig, load_config
from masa_core.detectors.factory import build_detector_from_config
from masa_core.eval.degrade import Degradation
from masa_core.eval.loop import FrameTracker, IdsFrames, PipelineFrames, ReidIds, run_frames
from masa_core.eval.metrics import evaluate_mot
from masa_core.eval.teta import evaluate_teta, table_keys
from masa_core.formats.mot import MotRows, read_mot, write_mot
from masa_core.inputs import clean_detections
from masa_core.pipeline import Pipeline
from masa_core.tracking import MasaTracker, TrackerConfig
from masa_core.video_io import FrameSource

TrackerKind = Literal["masa_sort", "masa", "iou", "reid", "bytetrack", "ocsort", "botsort"]
PIPELINE_TRACKERS: tuple[str, ...] = ("masa_sort", "masa")  # MASA embeddings; the tracker.kind of the pipeline
TRACKERS: tuple[str, ...] = (*PIPELINE_TRACKERS, "iou", "reid", *PEERS)
# Detector kinds whose classes include a person ("Person" / "person", matched case-insensitively).
PERSON_CLASS_KINDS: tuple[str, ...] = ("mediapipe_ssd", "yolo", "hog")


@dataclass
class GivenBoxesResult:
    """One tracker on one sequence.

    rows: {1-based frame: MotRows} as written to ``results_file`` (ids counting from 1).
    given: the boxes the tracker was given, {1-based frame: MotRows} (gt ids; false positives
    from 1,000,000 on), after ``degradation``. gt_file: the ground truth scored against (a truncated
    copy with ``max_frames``). metrics also hold class-agnostic TETA (TETA, TETA_LocA, ...).
    seconds: time spent in the tracker (``Pipeline.process``, ``IouTracker.update``, ...), frame
    decoding excluded. stage_ms: MASA's mean ms per frame per pipeline stage (empty for the others).
    own_detector: MASA found its own boxes (nothing given). lost_frames: None when the tracker ran
    in this process; for a tracker reached over a transport (``masa-ros-eval --live``: the ROS node),
    the 1-based frames whose output never came back: they have no rows, so their gt counts as missed.
    """

    sequence: str
    tracker: str
    frames: int
    rows: dict[int, MotRows]
    results_file: Path
    metrics: dict[str, float]
    seconds: float
    stage_ms: dict[str, float] = field(default_factory=dict)
    degradation: Degradation = field(default_factory=Degradation)
    given: dict[int, MotRows] = field(default_factory=dict)
    gt_file: Path | None = None
    own_detector: bool = False
    lost_frames: list[int] | None = None

    @property
    def ms_per_frame(self) -> float:
        return 1000.0 * self.seconds / max(self.frames, 1)


def run_name(tracker: str, degradation: Degradation | None = None, own_detector: bool = False) -> str:
    """File stem of a run: ``<tracker>[_det | _<degradation tag>]``, e.g. ``iou_drop0.2_s0``."""
    if own_detector:
        return f"{tracker}_det"
    tag = degradation.tag if degradation else ""
    return f"{tracker}_{tag}" if tag else tracker


def _merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _merge(dict(out[key]), value)
        else:
            out[key] = value
    return out


def pedestrian_config(config: PipelineConfig) -> tuple[PipelineConfig, bool]:
    """``config`` with its detector kept to the person class, for MOTChallenge ground truth (which
    has pedestrians only): done when the kind has a person class and the config keeps every class.
    Returns (config, whether it was changed)."""
    det = config.detector
    if det.kind not in PERSON_CLASS_KINDS or det.classes:
        return config, False
    return dataclasses.replace(config, detector=dataclasses.replace(det, classes=("person",))), True


def detect_sequence(
    video: str | Path, config: PipelineConfig, out_file: Path, max_frames: int | None = None
) -> tuple[Path, float | None]:
    """Run ``config``'s detector once on every frame and write its boxes, cleaned as the pipeline
    cleans them, with their scores to ``out_file`` (MOTChallenge det rows, id -1), so that every
    tracker can be given the same detector boxes. Returns ``out_file`` and the detector's score
    threshold (None when it has none)."""
    detector = build_detector_from_config(config.detector)
    rows = {}
    for index, frame in enumerate(FrameSource(video, max_frames)):
        height, width = frame.shape[:2]
        dets, _ = clean_detections(
            detector(frame, index), width, height, config.frame.min_box_size, config.frame.max_detections
        )
        if len(dets):
            rows[index + 1] = MotRows(dets.boxes, np.full(len(dets), -1), dets.scores)
    out_file.parent.mkdir(parents=True, exist_ok=True)
    write_mot(out_file, rows)
    return out_file, getattr(detector, "score_thr", None)


def score_results(
    rows: Mapping[int, MotRows], results_file: Path, gt_file: Path, gt: Mapping[int, MotRows], frames: int
) -> tuple[Path, dict[str, float]]:
    """Write ``rows`` to ``results_file`` and score them (HOTA, CLEAR, Identity, class-agnostic TETA)
    against the gt of the first ``frames`` frames (a truncated gt copy is written beside the results
    when the sequence is longer). Returns (the gt file scored against, metrics)."""
    write_mot(results_file, rows)
    scored_gt = gt_file
    if frames < max(gt, default=0):
        scored_gt = results_file.with_name(f"{results_file.stem}_gt_first{frames}.txt")
        write_mot(scored_gt, {f: r for f, r in gt.items() if f <= frames})
    metrics = evaluate_mot(scored_gt, results_file, num_frames=frames)
    metrics.update(table_keys(evaluate_teta(scored_gt, results_file)))
    return scored_gt, metrics


def track_given_boxes(
    video: str | Path,
    gt_file: str | Path,
    tracker: TrackerKind = "masa_sort",
    overrides: Mapping[str, Any] | None = None,
    max_frames: int | None = None,
    results_file: str | Path | None = None,
    progress: bool = False,
    pipeline: Pipeline | None = None,
    degradation: Degradation | None = None,
    sequence: str | None = None,
    own_detector: bool = False,
    given_file: str | Path | None = None,
    given_score_thr: float | None = None,
) -> GivenBoxesResult:
    """Track ``video`` with its ground-truth boxes given, write MOT results and score them.

    overrides: nested config overrides for the MASA pipeline (default device ``cpu``), e.g.
    ``{"model": {"input_size": 512}}``; used only for the pipeline trackers (``masa_sort``, ``masa``),
    whose ``tracker.kind`` is set to ``tracker``. pipeline: a ready pipeline to use
    instead (it is reset first). max_frames: only the first frames are tracked, and only their
    ground truth is scored (a truncated copy is written next to the results). results_file:
    where the results go (default ``runs/given_boxes/<sequence>/<tracker>[_<degradation tag>].txt``).
    degradation: seeded drop / jitter / false positives applied to the given boxes (not to the
    ground truth they are scored against); false positives are placed inside the frame.
    sequence: its name (default: the video's folder, or the image folder's parent when it is ``img1``).
    given_file: a MOTChallenge det file whose boxes and scores are given instead of the ground truth
    (e.g. from :func:`detect_sequence`: every tracker gets the same detector boxes);
    given_score_thr: their detector's threshold, which the pipeline's tracker is told.
    own_detector: pipeline trackers only: the pipeline's own detector finds the boxes and nothing is given.
    """
    if tracker not in TRACKERS:
        raise ValueError(f"tracker = {tracker!r}: must be one of {', '.join(TRACKERS)}")
    video, gt_file = Path(video), Path(gt_file)
    if own_detector and tracker not in PIPELINE_TRACKERS:
        raise ValueError(f"own_detector is for the trackers {PIPELINE_TRACKERS} only, not {tracker!r}")
    if sequence is None:
        sequence = video.parent.name if video.is_file() or video.name == "img1" else video.name
    degradation = degradation or Degradation()
    name = run_name(tracker, degradation, own_detector)
    results_file = Path(results_file or Path("runs") / "given_boxes" / sequence / f"{name}.txt")
    gt = read_mot(gt_file, gt_filter=True)
    source = FrameSource(video, max_frames)
    if tracker in PIPELINE_TRACKERS:
        pipeline = _ready_pipeline(pipeline, tracker, overrides, len(source))
        track: FrameTracker = PipelineFrames(pipeline, source.fps, own_detector, given_score_thr)
    else:
        track = _baseline(tracker, source.fps)
    boxes = read_mot(given_file) if given_file is not None else gt
    label = f"{sequence} {tracker}" if progress else None
    run = run_frames(track, source, boxes, degradation, own_detector, label)
    scored_gt, metrics = score_results(run.rows, results_file, gt_file, gt, run.frames)
    stage_ms = pipeline.stats.mean_ms() if tracker in PIPELINE_TRACKERS and pipeline is not None else {}
    return GivenBoxesResult(
        sequence, tracker, run.frames, run.rows, results_file, metrics, run.seconds, stage_ms, degradation,
        run.given, scored_gt, own_detector,
    )  # fmt: skip


def _ready_pipeline(
    pipeline: Pipeline | None, tracker: str, overrides: Mapping[str, Any] | None, frames: int
) -> Pipeline:
    """``pipeline`` (or a new one from ``overrides``, on the CPU by default) reset, with tracker kind
    ``tracker`` and a feature cache that holds every frame of the sequence."""
    if pipeline is None:
        pipeline = Pipeline(load_config(overrides=_merge({"model": {"device": "cpu"}}, overrides or {})))
    pipeline.configure_tracker(dataclasses.replace(pipeline.config.tracker, kind=tracker))
    pipeline.reset()
    pipeline.feature_cache_size = max(pipeline.feature_cache_size, frames)
    return pipeline


def _baseline(tracker: str, fps: float) -> FrameTracker:
    """A baseline or peer tracker (not the pipeline) as a :class:`FrameTracker`."""
    if tracker == "reid":
        return IdsFrames(ReidIds(CropReIDEmbedder(device="cpu"), MasaTracker(TrackerConfig.plug_and_play())))
    if tracker in PEERS:
        peer = PeerTracker(tracker, frame_rate=fps)
        return IdsFrames(lambda frame, dets, index: peer.update(dets.boxes, dets.scores, frame))
    iou = IouTracker()
    return IdsFrames(lambda frame, dets, index: iou.update(dets.boxes, dets.scores, index))
