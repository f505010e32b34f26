"""A planner's view of the tracks: ``masa_ros/TrackedObjectArray`` in, ``visualization_msgs/MarkerArray`` out.

Per track: its box (LINE_STRIP), an id label with its class and state (TEXT_VIEW_FACING), its
velocity (ARROW: the motion of ``velocity_seconds``) and its trail (LINE_STRIP through the last
``history_length`` box centres). Image pixels are laid on a plane of ``frame_id``: pixel (u, v) goes
to ``(origin_x + u * m, origin_y - v * m, plane_z)`` with ``m = metres_per_pixel``, so seen from
above (+z) the image is upright. A track missing from a message keeps its markers, faded and
labelled "unseen", until it has been unseen for more than ``expiry_seconds`` of the messages' stamps;
then its markers are deleted (DELETE per marker) and its history forgotten. A stamp older than the
previous message's (a bag played again) deletes everything (DELETEALL) and starts afresh.

    python -m masa_ros.examples.track_markers --ros-args -p metres_per_pixel:=0.01 -r tracks:=/tracks
"""

from __future__ import annotations

import dataclasses
import math
import sys
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import rclpy
from builtin_interfaces.msg import Duration
from geometry_msgs.msg import Point
from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rclpy.exceptions import ParameterException
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node
from std_msgs.msg import ColorRGBA, Header
from visualization_msgs.msg import Marker, MarkerArray

from masa_core.visualize import id_colour as track_colour
from masa_ros.msg import TrackedObject, TrackedObjectArray
from masa_ros.track_messages import stamp_ns

NAMESPACES = ("box", "label", "velocity", "trail")
STATE_NAMES = {
    TrackedObject.STATE_TENTATIVE: "tentative",
    TrackedObject.STATE_CONFIRMED: "confirmed",
    TrackedObject.STATE_LOST: "lost",
}
LINE_PX, HEAD_PX, TEXT_PX = 2.0, 6.0, 16.0  # marker sizes in image pixels (scaled by metres_per_pixel)


@dataclass(frozen=True)
class MarkerSettings:
    """Where and how the markers are drawn; every field is a node parameter of the same name."""

    frame_id: str = "masa_image"
    metres_per_pixel: float = 0.01
    origin_x: float = 0.0
    origin_y: float = 0.0
    plane_z: float = 0.0
    velocity_seconds: float = 1.0
    history_length: int = 30
    expiry_seconds: float = 1.0

    def validate(self) -> MarkerSettings:
        """``self``, or ValueError naming every bad value."""
        bad = []
        if not self.frame_id or self.frame_id != self.frame_id.strip():
            bad.append(f"frame_id must be a non-empty name without surrounding spaces, got {self.frame_id!r}")
        if not (math.isfinite(self.metres_per_pixel) and self.metres_per_pixel > 0):
            bad.append(f"metres_per_pixel must be finite and > 0, got {self.metres_per_pixel}")
        for name in ("origin_x", "origin_y", "plane_z", "velocity_seconds", "expiry_seconds"):
            value = getattr(self, name)
            if not math.isfinite(value) or (name.endswith("seconds") and value < 0):
                bad.append(f"{name} must be finite{' and >= 0' if name.endswith('seconds') else ''}, got {value}")
        if self.history_length < 1:
            bad.append(f"history_length must be >= 1, got {self.history_length}")
        if bad:
            raise ValueError("; ".join(bad))
        return self

    def point(self, u: float, v: float, lift: float = 0.0) -> Point:
        """Image pixel (u, v) on the plane, ``lift`` metres above it."""
        m = self.metres_per_pixel
        return Point(x=self.origin_x + u * m, y=self.origin_y - v * m, z=self.plane_z + lift)


PARAMETERS: dict[str, tuple[str, tuple[float, float] | None]] = {
    "frame_id": ("frame of the markers (RViz: make it the fixed frame, or publish its TF)", None),
    "metres_per_pixel": ("metres one image pixel spans on the plane", (1e-9, 1e3)),
    "origin_x": ("plane x (metres) of the image's top-left corner", None),
    "origin_y": ("plane y (metres) of the image's top-left corner; image down is -y", None),
    "plane_z": ("height (metres) of the plane", None),
    "velocity_seconds": ("the velocity arrow shows this many seconds of motion", (0.0, 3600.0)),
    "history_length": ("box centres kept (and drawn as a trail) per track", (1, 100000)),
    "expiry_seconds": ("a track unseen for longer than this (message stamps) is deleted", (0.0, 3600.0)),
}


@dataclass
class TrackHistory:
    """What is kept of one track id: its last object, when it was last seen, its last centres."""

    obj: TrackedObject
    last_seen_ns: int
    centres: deque[tuple[float, float]] = field(default_factory=deque)


def object_problem(obj: TrackedObject) -> str | None:
    """Why ``obj`` cannot be drawn (non-finite or inverted box, non-finite velocity), or None."""
    box, velocity = [float(v) for v in obj.box], [float(v) for v in obj.velocity]
    if not all(math.isfinite(v) for v in box):
        return f"non-finite box {box}"
    if box[2] < box[0] or box[3] < box[1]:
        return f"inverted box {box}"
    if not all(math.isfinite(v) for v in velocity):
        return f"non-finite velocity {velocity}"
    return None


def marker_id(track_id: int) -> int:
    """The int32 marker id of a (uint64) track id: the same below 2**31."""
    return int(track_id) & 0x7FFFFFFF


def id_colour(track_id: int, alpha: float) -> ColorRGBA:
    """The id's colour in the debug image and the annotated video (:func:`masa_core.visualize.id_colour`)."""
    r, g, b = (c / 255.0 for c in track_colour(int(track_id)))
    return ColorRGBA(r=r, g=g, b=b, a=alpha)


def _marker(header: Header, ns: str, track_id: int, kind: int, colour: ColorRGBA) -> Marker:
    m = Marker(header=header, ns=ns, id=marker_id(track_id), type=kind, action=Marker.ADD, color=colour)
    m.pose.orientation.w = 1.0
    m.lifetime = Duration()  # kept until deleted
    return m


def _delete(header: Header, ns: str, track_id: int) -> Marker:
    return Marker(header=header, ns=ns, id=marker_id(track_id), action=Marker.DELETE)


def track_markers(hist: TrackHistory, s: MarkerSettings, header: Header, unseen_s: float | None) -> list[Marker]:
    """Box, label, velocity arrow and trail of one track (``unseen_s``: seconds since seen, None if seen now)."""
    o, m = hist.obj, s.metres_per_pixel
    x1, y1, x2, y2 = (float(v) for v in o.box)
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    alpha = 0.3 if unseen_s is not None else (1.0 if o.state == TrackedObject.STATE_CONFIRMED else 0.5)
    colour = id_colour(o.id, alpha)
    box = _marker(header, "box", o.id, Marker.LINE_STRIP, colour)
    box.points = [s.point(u, v) for u, v in ((x1, y1), (x2, y1), (x2, y2), (x1, y2), (x1, y1))]
    box.scale.x = LINE_PX * m
    label = _marker(header, "label", o.id, Marker.TEXT_VIEW_FACING, colour)
    label.pose.position = s.point(cx, y1, lift=TEXT_PX * m)
    label.scale.z = TEXT_PX * m
    state = STATE_NAMES.get(o.state, f"state {o.state}")
    label.text = f"{o.id} {o.label} " + (state if unseen_s is None else f"unseen {unseen_s:.1f}s")
    vx, vy = (float(v) * s.velocity_seconds for v in o.velocity)
    if math.hypot(vx, vy) > 0:
        arrow = _marker(header, "velocity", o.id, Marker.ARROW, colour)
        arrow.points = [s.point(cx, cy), s.point(cx + vx, cy + vy)]
        arrow.scale.x, arrow.scale.y, arrow.scale.z = LINE_PX * m, HEAD_PX * m, HEAD_PX * m
    else:
        arrow = _delete(header, "velocity", o.id)
    if len(hist.centres) >= 2:
        trail = _marker(header, "trail", o.id, Marker.LINE_STRIP, id_colour(o.id, 0.6 * alpha))
        trail.points = [s.point(u, v) for u, v in hist.centres]
        trail.scale.x = LINE_PX * m / 2
    else:
        trail = _delete(header, "trail", o.id)
    return [box, label, arrow, trail]


class TrackMarkerModel:
    """The per-id history and the conversion to markers, without any ROS communication."""

    def __init__(self, settings: MarkerSettings) -> None:
        self.settings = settings.validate()
        self.tracks: dict[int, TrackHistory] = {}
        self.bad_objects = 0
        self._last_ns: int | None = None

    def update(self, msg: TrackedObjectArray) -> tuple[MarkerArray, list[str]]:
        """The markers after ``msg``, and one line per object of it that was skipped as malformed."""
        now, out, problems = stamp_ns(msg.header), MarkerArray(), []
        header = Header(stamp=msg.header.stamp, frame_id=self.settings.frame_id)
        if self._last_ns is not None and now < self._last_ns:  # time went back: a new run of the source
            out.markers.append(Marker(header=header, action=Marker.DELETEALL))
            self.tracks.clear()
        self._last_ns = now
        seen = set()
        for obj in msg.objects:
            problem = object_problem(obj)
            if problem is not None:
                self.bad_objects += 1
                problems.append(f"track {obj.id}: {problem}")
                continue
            self._record(obj, now)
            seen.add(obj.id)
        expiry_ns = round(self.settings.expiry_seconds * 1e9)
        for track_id, hist in list(self.tracks.items()):
            if track_id not in seen and now - hist.last_seen_ns > expiry_ns:
                out.markers.extend(_delete(header, ns, track_id) for ns in NAMESPACES)
                del self.tracks[track_id]
                continue
            unseen = None if track_id in seen else (now - hist.last_seen_ns) / 1e9
            out.markers.extend(track_markers(hist, self.settings, header, unseen))
        return out, problems

    def _record(self, obj: TrackedObject, now: int) -> None:
        hist = self.tracks.get(obj.id)
        if hist is None:
            hist = self.tracks[obj.id] = TrackHistory(obj, now, deque(maxlen=self.settings.history_length))
        hist.obj, hist.last_seen_ns = obj, now
        x1, y1, x2, y2 = (float(v) for v in obj.box)
        hist.centres.append(((x1 + x2) / 2, (y1 + y2) / 2))


def _descriptor(name: str, default: Any) -> ParameterDescriptor:
    description, bounds = PARAMETERS[name]
    d = ParameterDescriptor(name=name, description=description, read_only=True)
    if bounds is not None and isinstance(default, int):
        d.integer_range = [IntegerRange(from_value=int(bounds[0]), to_value=int(bounds[1]), step=1)]
    elif bounds is not None:
        d.floating_point_range = [FloatingPointRange(from_value=bounds[0], to_value=bounds[1], step=0.0)]
    return d


def declare_settings(node: Node) -> MarkerSettings:
    """Declare every MarkerSettings field as a read-only parameter; the validated settings, or ValueError."""
    values = {}
    for f in dataclasses.fields(MarkerSettings):
        values[f.name] = node.declare_parameter(f.name, f.default, _descriptor(f.name, f.default)).value
    return MarkerSettings(**values).validate()


class TrackMarkers(Node):
    """Subscribes ``tracks`` (TrackedObjectArray), publishes ``markers`` (MarkerArray) per message."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__("track_markers", **kwargs)
        self.model = TrackMarkerModel(declare_settings(self))
        self.messages = 0
        self.failed_messages = 0  # messages whose conversion raised (none expected; counted, logged)
        self.publisher = self.create_publisher(MarkerArray, "markers", 10)
        self.create_subscription(TrackedObjectArray, "tracks", self._on_tracks, 10)

    @property
    def bad_objects(self) -> int:
        """Tracks skipped as malformed (non-finite or inverted box, non-finite velocity)."""
        return self.model.bad_objects

    def _on_tracks(self, msg: TrackedObjectArray) -> None:
        self.messages += 1
        try:
            markers, problems = self.model.update(msg)
        except Exception as e:  # one bad message must never end the node
            self.failed_messages += 1
            self.get_logger().error(f"tracks message dropped ({self.failed_messages} so far): {e!r}")
            return
        if problems:
            self.get_logger().warning(
                f"{len(problems)} malformed track(s) skipped ({self.bad_objects} so far): {problems[0]}",
                throttle_duration_sec=5.0,
            )
        self.publisher.publish(markers)


def main(args: list[str] | None = None) -> int:
    """Run the node until shut down; exit code 2 and one line when a parameter is bad."""
    rclpy.init(args=args)
    try:
        node = TrackMarkers()
    except (ValueError, ParameterException) as e:
        rclpy.logging.get_logger("track_markers").fatal(f"refusing to start: {e}")
        rclpy.try_shutdown()
        return 2
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    try:
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
