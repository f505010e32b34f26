"""Converting between masa_core results and the package's messages."""

from __future__ import annotations

from typing import Any

import numpy as np
from sensor_msgs.msg import Image
from std_msgs.msg import Header

from masa_core import Detections, Track
from masa_core.segmentation.box_prompt import box_window
from masa_core.tracking import TrackState
from masa_ros.image_conversion import mask_to_image
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
        obj.velocity = [float(v) for v in t.velocity]
        obj.state = int(t.state)
        obj.detection_index = t.detection
        if t.mask is not None:  # mono8 crop of the box window; empty Image when masks are off
            obj.mask = mask_to_image(t.mask, header)
        msg.objects.append(obj)
    return msg


def instance_image(tracks: list[Track], header: Header, width: int, height: int) -> Image:
    """A full-frame ``mono16`` image of track IDs (ID + 1; 0 = no object) from the tracks' masks,
    higher scores drawn over lower ones, for RViz and image-based consumers."""
    ids = np.zeros((height, width), np.uint16)
    for t in sorted((t for t in tracks if t.mask is not None), key=lambda t: t.score):
        x1, y1, x2, y2 = box_window(t.box, height, width)
        ids[y1:y2, x1:x2][t.mask] = t.id % 65535 + 1
    return Image(
        header=header,
        height=height,
        width=width,
        encoding="mono16",
        is_bigendian=0,
        step=2 * width,
        data=ids.astype("<u2").tobytes(),
    )


def detections_from_msg(msg: DetectionArray) -> Detections:
    """The boxes of a DetectionArray as masa_core Detections (bad boxes are dropped later, counted)."""
    boxes = np.array([d.box for d in msg.detections], np.float32).reshape(-1, 4)
    scores = np.array([d.score for d in msg.detections], np.float32)
    labels = np.array([max(d.class_id, 0) for d in msg.detections], np.int64)
    return Detections(boxes, scores, labels)


def stamp_ns(header: Header) -> int:
    """A header's stamp as integer nanoseconds (the pairing key)."""
    return header.stamp.sec * 1_000_000_000 + header.stamp.nanosec


def msg_to_tracks(msg: Any) -> list[Track]:
    """masa_core Tracks from a TrackedObjectArray (rclpy or rosbags decoded): the inverse of
    :func:`tracks_to_msg`."""
    return [
        Track(
            id=int(o.id),
            box=tuple(float(v) for v in o.box),
            score=float(o.score),
            label=max(int(o.class_id), 0),
            label_name=o.label,
            match_score=float(o.match_score),
            age=int(o.age),
            velocity=(float(o.velocity[0]), float(o.velocity[1])),
            state=TrackState(int(o.state)),
            detection=int(o.detection_index),
        )
        for o in msg.objects
    ]


def tracks_to_detection2d(tracks: list[Track], header: Header, vision_msgs: Any) -> Any:
    """A vision_msgs/Detection2DArray of the tracks (``id`` = track ID), for tools that speak
    vision_msgs. ``vision_msgs`` is the imported ``vision_msgs.msg`` module (optional dependency)."""
    out = vision_msgs.Detection2DArray(header=header)
    for t in tracks:
        x1, y1, x2, y2 = t.box
        det = vision_msgs.Detection2D(header=header, id=str(t.id))
        det.bbox.center.position.x = (x1 + x2) / 2.0
        det.bbox.center.position.y = (y1 + y2) / 2.0
        det.bbox.size_x = x2 - x1
        det.bbox.size_y = y2 - y1
        hyp = vision_msgs.ObjectHypothesisWithPose()
        hyp.hypothesis.class_id = t.label_name
        hyp.hypothesis.score = t.score
        det.results.append(hyp)
        out.detections.append(det)
    return out
