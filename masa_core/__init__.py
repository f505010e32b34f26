"""MASA open-world multi-object tracking: the ROS-free core library.

Start at :class:`Pipeline`: RGB frames (and optionally boxes) in, tracks out.
"""

from masa_core.config import ConfigError, PipelineConfig, load_config
from masa_core.detectors.base import Detections, Detector
from masa_core.inputs import FrameError
from masa_core.pipeline import FrameResult, Pipeline, Track

__all__ = [
    "ConfigError",
    "Detections",
    "Detector",
    "FrameError",
    "FrameResult",
    "Pipeline",
    "PipelineConfig",
    "Track",
    "load_config",
]
