"""Detectors: an RGB frame in, :class:`Detections` out.

Built-in: :class:`MediaPipeSSD` (default, OpenImages-v4 SSD via LiteRT), :class:`HOGPeopleDetector`
(OpenCV) and :class:`GivenDetector` (MOTChallenge files or pushed boxes). Plug-ins that need
user-installed libraries and weights: :class:`UltralyticsYOLO` and :class:`GroundingDINO`. Any
frame-level detector runs tiled in :class:`TiledDetector` (the SSD does by default).
"""

from masa_core.detectors.base import Detections, Detector
from masa_core.detectors.factory import (
    KINDS,
    DetectorConfig,
    build_detector,
    build_detector_from_config,
    detector_options,
)
from masa_core.detectors.given import GivenDetector
from masa_core.detectors.grounding_dino import GroundingDINO
from masa_core.detectors.hog import HOGPeopleDetector
from masa_core.detectors.mediapipe_ssd import MediaPipeSSD
from masa_core.detectors.tiling import TiledDetector
from masa_core.detectors.yolo import UltralyticsYOLO

__all__ = [
    "KINDS",
    "Detections",
    "Detector",
    "DetectorConfig",
    "GivenDetector",
    "GroundingDINO",
    "HOGPeopleDetector",
    "MediaPipeSSD",
    "TiledDetector",
    "UltralyticsYOLO",
    "build_detector",
    "build_detector_from_config",
    "detector_options",
]
