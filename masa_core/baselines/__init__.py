"""Baselines the MASA tracker is compared against: IoU-only tracking, crop ReID and peer trackers."""
