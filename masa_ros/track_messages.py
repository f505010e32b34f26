"""Converting between masa_core results and the package's messages."""

from __future__ import annotations

import numpy as np
from std_msgs.msg import Header

from masa_core import Detections, Track
from masa_ros.msg import DetectionArray, TrackedObject, TrackedObjectArray


def tracks_to_msg(tracks: list[Track], header: Header, width: int, height: int) -> TrackedObjectArray:
    """A TrackedObjectArray with the source image's header, unchanged, and its size."""
    msg = TrackedObjectArray(header=header, image_width=width, image_height=height)
    for t in tracks:
        obj = TrackedObject()
        obj.id = t.id
        obj.label = t.label_name
        obj.class_id = t.label if t.label_name != "object" else -1
        obj.score = t.score
        obj.match_score = t.match_score
        obj.box = [float(v) for v in t.box]
        obj.age = max(t.age, 0)
        obj.frames_since_seen = 0
        msg.objects.append(obj)
    return msg


def detections_from_msg(msg: DetectionArray) -> Detections:
    """The boxes of a DetectionArray as masa_core Detections (bad boxes are dropped later, counted)."""
    boxes = np.array([d.box for d in msg.detections], np.float32).reshape(-1, 4)
    scores = np.array([d.score for d in msg.detections], np.float32)
    labels = np.array([max(d.class_id, 0) for d in msg.detections], np.int64)
    return Detections(boxes, scores, labels)


def stamp_ns(header: Header) -> int:
    """A header's stamp as integer nanoseconds (the pairing key)."""
    return header.stamp.sec * 1_000_000_000 + header.stamp.nanosec
