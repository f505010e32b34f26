"""Trackers: MASA-SORT (MASA appearance fused with Kalman motion, the default) and the official MASA tracker."""

from masa_core.tracking.masa_sort import MasaSortTracker
from masa_core.tracking.tracker import MasaTracker, TrackerConfig, TrackResult, TrackState

Tracker = MasaSortTracker | MasaTracker


def build_tracker(config: TrackerConfig) -> Tracker:
    """The tracker that ``config.kind`` names."""
    return MasaTracker(config) if config.kind == "masa" else MasaSortTracker(config)


__all__ = ["MasaSortTracker", "MasaTracker", "TrackResult", "TrackState", "Tracker", "TrackerConfig", "build_tracker"]
