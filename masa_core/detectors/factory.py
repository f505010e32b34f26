"""Build a detector by name, from keyword options or from a validated :class:`DetectorConfig`."""

from __future__ import annotations

import inspect
import math
from dataclasses import dataclass
from typing import Any

from masa_core.detectors.base import Detector

# masa_head: the MASA adapter's own detection head; it needs the model's features, so the Pipeline
# runs it itself and there is no frame-level detector class for it.
MASA_HEAD = "masa_head"
KINDS: tuple[str, ...] = ("mediapipe_ssd", "given", "hog", "yolo", "grounding_dino", MASA_HEAD)
# Kinds that run on frames and can be tiled, with their tile_size when the config leaves it null.
TILE_DEFAULTS: dict[str, float] = {"mediapipe_ssd": 1.0, "hog": 0.0, "yolo": 0.0, "grounding_dino": 0.0}
MIN_TILE_SIZE = 0.25  # smaller tiles multiply the runs: (1 / 0.25)^2 tiles on a square frame


def _detector_class(kind: str) -> type:
    """The class behind a kind name (plug-in libraries are only imported by their constructors)."""
    if kind == "mediapipe_ssd":
        from masa_core.detectors.mediapipe_ssd import MediaPipeSSD

        return MediaPipeSSD
    if kind == "given":
        from masa_core.detectors.given import GivenDetector

        return GivenDetector
    if kind == "hog":
        from masa_core.detectors.hog import HOGPeopleDetector

        return HOGPeopleDetector
    if kind == "yolo":
        from masa_core.detectors.yolo import UltralyticsYOLO

        return UltralyticsYOLO
    if kind == "grounding_dino":
        from masa_core.detectors.grounding_dino import GroundingDINO

        return GroundingDINO
    if kind == MASA_HEAD:
        raise ValueError("detector kind 'masa_head' runs inside the Pipeline on the model's features")
    raise ValueError(f"unknown detector kind {kind!r}; allowed kinds: {', '.join(KINDS)}")


def detector_options(kind: str) -> tuple[str, ...]:
    """Keyword options the detector of ``kind`` accepts."""
    params = inspect.signature(_detector_class(kind).__init__).parameters
    return tuple(name for name in params if name != "self")


def build_detector(kind: str = "mediapipe_ssd", **options: Any) -> Detector:
    """A detector of ``kind`` built with ``options`` (its constructor's keyword arguments).

    ValueError for an unknown kind; TypeError naming any option the kind does not take.
    """
    cls = _detector_class(kind)
    allowed = detector_options(kind)
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise TypeError(
            f"detector kind {kind!r} got unknown option(s) {', '.join(unknown)}; allowed: {', '.join(allowed)}"
        )
    return cls(**options)


@dataclass(frozen=True)
class DetectorConfig:
    """Detector settings as a ROS node or CLI gives them.

    ``score_thr`` / ``nms_iou_thr`` None keep each detector's own default (SSD 0.3 / 0.5). For
    ``given`` ``detections_file`` is required and ``score_thr`` drops rows below it; ``weights``
    is the model file for ``yolo``, the model directory for ``grounding_dino`` and an optional
    replacement .tflite for ``mediapipe_ssd``; ``text_prompt`` ("person . car .") is required for
    ``grounding_dino``, whose ``score_thr`` is its box threshold.

    ``tile_size``: the detector also runs on overlapping square tiles of this fraction of the
    frame's shorter side (:class:`masa_core.detectors.tiling.TiledDetector`), neighbours
    overlapping by ``tile_overlap``; 0 = whole frame only, None = the kind's default
    (:data:`TILE_DEFAULTS`: SSD 1.0, others 0). ``class_score_thr``: per-class thresholds as
    ``"Name:0.5"`` entries (``mediapipe_ssd`` only), over the detector's calibrated ones.
    """

    kind: str = "mediapipe_ssd"
    score_thr: float | None = None
    nms_iou_thr: float | None = None
    classes: tuple[str, ...] = ()
    detections_file: str | None = None
    weights: str | None = None
    text_prompt: str = ""
    num_threads: int = 2
    tile_size: float | None = None
    tile_overlap: float = 0.2
    class_score_thr: tuple[str, ...] = ()

    def validate(self) -> DetectorConfig:
        """Raise ValueError naming the field, its value and what is allowed; return self if fine."""
        if self.kind not in KINDS:
            _bad("kind", self.kind, f"one of {', '.join(KINDS)}")
        if self.score_thr is not None and not _in_range(self.score_thr, 0.0, 1.0):
            _bad("score_thr", self.score_thr, "None or a number in [0, 1]")
        if self.nms_iou_thr is not None and not (_in_range(self.nms_iou_thr, 0.0, 1.0) and self.nms_iou_thr > 0):
            _bad("nms_iou_thr", self.nms_iou_thr, "None or a number in (0, 1]")
        if not isinstance(self.classes, tuple) or not all(isinstance(c, str) and c for c in self.classes):
            _bad("classes", self.classes, "a tuple of non-empty class names")
        if isinstance(self.num_threads, bool) or not isinstance(self.num_threads, int) or self.num_threads < 1:
            _bad("num_threads", self.num_threads, "an integer >= 1")
        self._validate_tiles()
        self._validate_kind_fields()
        return self

    def _validate_tiles(self) -> None:
        tiles = self.tile_size
        if tiles is not None and not (_in_range(tiles, 0.0, 1.0) and (tiles == 0 or tiles >= MIN_TILE_SIZE)):
            _bad("tile_size", tiles, f"None, 0 (no tiles) or a fraction of the shorter side in [{MIN_TILE_SIZE}, 1]")
        if tiles and self.kind not in TILE_DEFAULTS:
            _bad("tile_size", tiles, f"None or 0 for kind {self.kind!r} (tiles are for {', '.join(TILE_DEFAULTS)})")
        if not _in_range(self.tile_overlap, 0.0, 0.9):
            _bad("tile_overlap", self.tile_overlap, "a fraction of the tile side in [0, 0.9]")
        if self.class_score_thr and self.kind != "mediapipe_ssd":
            _bad("class_score_thr", self.class_score_thr, f"() for kind {self.kind!r} (mediapipe_ssd only)")
        try:
            parse_class_score_thr(self.class_score_thr)
        except ValueError as err:
            _bad("class_score_thr", self.class_score_thr, str(err))

    def tiles(self) -> float:
        """The tile size that runs: the configured one, else the kind's default (0 = no tiles)."""
        return TILE_DEFAULTS.get(self.kind, 0.0) if self.tile_size is None else float(self.tile_size)

    def _validate_kind_fields(self) -> None:
        if self.kind == "given" and not self.detections_file:
            _bad("detections_file", self.detections_file, "a MOTChallenge det/gt file path for kind 'given'")
        if self.kind in ("yolo", "grounding_dino") and not self.weights:
            what = "a weights file" if self.kind == "yolo" else "a local model directory"
            _bad("weights", self.weights, f"{what} for kind {self.kind!r}")
        if self.kind == "grounding_dino":
            from masa_core.detectors.grounding_dino import parse_prompt

            if not parse_prompt(self.text_prompt):
                _bad("text_prompt", self.text_prompt, "class names separated by ' . ', e.g. 'person . car .'")
        if self.classes and self.kind in ("given", "grounding_dino", MASA_HEAD):
            _bad("classes", self.classes, f"() for kind {self.kind!r} (it has no class filter)")
        if self.kind == "hog" and any(c.lower() != "person" for c in self.classes):
            _bad("classes", self.classes, "() or ('person',) for kind 'hog'")


def parse_class_score_thr(entries: tuple[str, ...]) -> dict[str, float]:
    """``("Person:0.4", ...)`` as ``{"Person": 0.4}``; ValueError for a malformed entry."""
    out: dict[str, float] = {}
    if not isinstance(entries, tuple):
        raise ValueError("a list of 'ClassName:threshold' entries")
    for entry in entries:
        name, sep, value = str(entry).rpartition(":")
        try:
            thr = float(value)
        except ValueError:
            thr = math.nan
        if not sep or not name.strip() or not 0.0 <= thr <= 1.0:
            raise ValueError(
                f"'ClassName:threshold' entries with a threshold in [0, 1], e.g. 'Person:0.4' (not {entry!r})"
            )
        out[name.strip()] = thr
    return out


def _in_range(value: object, lo: float, hi: float) -> bool:
    return (
        isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and lo <= value <= hi
    )


def _bad(field: str, value: object, allowed: str) -> None:
    raise ValueError(f"detector.{field} = {value!r} is not allowed; expected {allowed}")


def _config_options(cfg: DetectorConfig) -> dict[str, Any]:
    """Constructor options for ``cfg.kind``; None values are left out so defaults apply."""
    if cfg.kind == "given":
        opts: dict[str, Any] = {"source": cfg.detections_file, "min_score": cfg.score_thr}
    elif cfg.kind == "mediapipe_ssd":
        opts = {
            "model_path": cfg.weights,
            "score_thr": cfg.score_thr,
            "nms_iou_thr": cfg.nms_iou_thr,
            "classes": cfg.classes,
            "num_threads": cfg.num_threads,
            "class_score_thr": parse_class_score_thr(cfg.class_score_thr) or None,
        }
    elif cfg.kind == "hog":
        opts = {"score_thr": cfg.score_thr}
    elif cfg.kind == "yolo":
        opts = {
            "weights": cfg.weights,
            "score_thr": cfg.score_thr,
            "nms_iou_thr": cfg.nms_iou_thr,
            "classes": cfg.classes,
        }
    else:
        opts = {"model_dir": cfg.weights, "text_prompt": cfg.text_prompt, "box_thr": cfg.score_thr}
    return {k: v for k, v in opts.items() if v is not None}


def build_detector_from_config(cfg: DetectorConfig) -> Detector:
    """Validate ``cfg`` and build its detector (tiled when :meth:`DetectorConfig.tiles` is not 0)."""
    cfg.validate()
    detector = build_detector(cfg.kind, **_config_options(cfg))
    if cfg.tiles() > 0:
        from masa_core.detectors.tiling import TiledDetector

        nms_iou = cfg.nms_iou_thr if cfg.nms_iou_thr is not None else getattr(detector, "nms_iou_thr", 0.5)
        detector = TiledDetector(detector, cfg.tiles(), cfg.tile_overlap, nms_iou)
    return detector
