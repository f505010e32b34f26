"""MASA tracker: embedding-based association with a momentum-updated track memory."""

from masa_core.tracking.tracker import MasaTracker, TrackerConfig, TrackResult

__all__ = ["MasaTracker", "TrackResult", "TrackerConfig"]
