"""The example consumer masa_ros/examples/track_markers.py: the track -> marker conversion without DDS,
then the node over real rclpy / Fast DDS, in this process and as its own process."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest
import rclpy
from builtin_interfaces.msg import Time
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.parameter import Parameter
from std_msgs.msg import Header
from visualization_msgs.msg import Marker, MarkerArray

from masa_ros.examples.track_markers import MarkerSettings, TrackMarkerModel, TrackMarkers, marker_id
from masa_ros.msg import TrackedObject, TrackedObjectArray
from masa_ros.tools.processes import stop_process
from tests.paths import REPO
from tests.ros_harness import spin_executor_until

SETTINGS = MarkerSettings(
    frame_id="plane", metres_per_pixel=0.01, origin_x=1.0, origin_y=2.0, plane_z=0.5, velocity_seconds=2.0
)


def obj(track_id: int, box, velocity=(0.0, 0.0), state=TrackedObject.STATE_CONFIRMED) -> TrackedObject:
    return TrackedObject(
        id=track_id, label="person", class_id=0, box=[float(v) for v in box], velocity=list(velocity), state=state
    )


def tracks(t: float, *objects: TrackedObject) -> TrackedObjectArray:
    stamp = Time(sec=int(t), nanosec=round((t - int(t)) * 1e9))
    return TrackedObjectArray(
        header=Header(stamp=stamp, frame_id="camera"), image_width=640, image_height=480, objects=list(objects)
    )


def find(markers: MarkerArray, ns: str, track_id: int) -> Marker:
    found = [m for m in markers.markers if m.ns == ns and m.id == marker_id(track_id)]
    assert len(found) == 1, f"{ns}/{track_id}: {len(found)} markers"
    return found[0]


def xyz(p) -> tuple[float, float, float]:
    return (p.x, p.y, p.z)


def plane(u: float, v: float) -> tuple[float, float, float]:
    """Where SETTINGS put image pixel (u, v)."""
    return (1.0 + 0.01 * u, 2.0 - 0.01 * v, 0.5)


# --- the conversion, without DDS ---


def test_one_track_becomes_a_box_a_label_and_a_velocity_arrow_on_the_plane():
    out, problems = TrackMarkerModel(SETTINGS).update(tracks(3.25, obj(7, (100, 200, 140, 280), (30.0, -40.0))))
    assert problems == []
    for m in out.markers:
        assert m.header.frame_id == "plane" and (m.header.stamp.sec, m.header.stamp.nanosec) == (3, 250_000_000)
    box = find(out, "box", 7)
    assert box.type == Marker.LINE_STRIP and box.action == Marker.ADD
    corners = [plane(100, 200), plane(140, 200), plane(140, 280), plane(100, 280), plane(100, 200)]
    assert np.array([xyz(p) for p in box.points]) == pytest.approx(np.array(corners))
    label = find(out, "label", 7)
    assert label.type == Marker.TEXT_VIEW_FACING and label.text == "7 person confirmed"
    assert xyz(label.pose.position)[:2] == pytest.approx(plane(120, 200)[:2])
    assert label.pose.position.z > 0.5
    arrow = find(out, "velocity", 7)
    assert arrow.type == Marker.ARROW and arrow.action == Marker.ADD
    start, end = (xyz(p) for p in arrow.points)
    assert start == pytest.approx(plane(120, 240))
    # 2 s of (30, -40) px/s = (60, -80) px: 100 px = 1 m long, image up-right = plane +x, +y
    assert end == pytest.approx(plane(180, 160))
    assert math.dist(start, end) == pytest.approx(1.0)
    assert find(out, "trail", 7).action == Marker.DELETE  # one centre: no trail yet


def test_history_trail_unseen_tracks_fade_then_are_deleted_after_expiry():
    model = TrackMarkerModel(MarkerSettings(history_length=3, expiry_seconds=0.25))
    for i in range(5):
        out, _ = model.update(tracks(10 + 0.1 * i, obj(1, (10 * i, 0, 10 * i + 20, 20)), obj(2, (300, 300, 320, 340))))
    trail = find(out, "trail", 1)
    assert trail.action == Marker.ADD and [p.x for p in trail.points] == pytest.approx(
        [0.3, 0.4, 0.5]
    )  # last 3 centres
    out, _ = model.update(tracks(10.6, obj(1, (50, 0, 70, 20))))  # track 2 unseen for 0.2 s: kept, faded
    label = find(out, "label", 2)
    assert label.text == "2 person unseen 0.2s" and label.color.a < find(out, "label", 1).color.a
    assert find(out, "box", 2).action == Marker.ADD
    out, _ = model.update(tracks(10.7, obj(1, (60, 0, 80, 20))))  # unseen 0.3 s > 0.25: deleted
    assert {(m.ns, m.action) for m in out.markers if m.id == 2} == {
        (ns, Marker.DELETE) for ns in ("box", "label", "velocity", "trail")
    }
    assert set(model.tracks) == {1}
    out, _ = model.update(tracks(10.8, obj(1, (70, 0, 90, 20))))
    assert all(m.id == 1 for m in out.markers)  # deleted once, then no more markers for it


def test_malformed_tracks_are_counted_and_skipped_the_rest_drawn():
    model = TrackMarkerModel(SETTINGS)
    out, problems = model.update(
        tracks(
            1.0,
            obj(1, (math.nan, 0, 10, 10)),
            obj(2, (50, 50, 40, 60)),
            obj(3, (0, 0, 10, 10), (math.inf, 0.0)),
            obj(4, (0, 0, 10, 10)),
        )
    )
    assert model.bad_objects == 3 and len(problems) == 3
    assert "non-finite box" in problems[0] and "inverted box" in problems[1] and "velocity" in problems[2]
    assert {m.id for m in out.markers} == {4}
    assert find(out, "velocity", 4).action == Marker.DELETE  # zero velocity: no arrow


def test_tentative_tracks_are_faded_and_a_stamp_going_back_deletes_all():
    model = TrackMarkerModel(SETTINGS)
    out, _ = model.update(tracks(5.0, obj(1, (0, 0, 10, 10), state=TrackedObject.STATE_TENTATIVE)))
    assert find(out, "label", 1).text == "1 person tentative" and find(out, "box", 1).color.a == 0.5
    out, _ = model.update(tracks(4.0, obj(9, (0, 0, 10, 10))))  # a bag played again
    assert out.markers[0].action == Marker.DELETEALL and set(model.tracks) == {9}


@pytest.mark.parametrize(
    "change, message",
    [
        ({"frame_id": ""}, "frame_id"),
        ({"metres_per_pixel": 0.0}, "metres_per_pixel"),
        ({"plane_z": math.nan}, "plane_z"),
        ({"expiry_seconds": -1.0}, "expiry_seconds"),
        ({"history_length": 0}, "history_length"),
    ],
)
def test_bad_settings_are_refused_with_the_name(change, message):
    with pytest.raises(ValueError, match=message):
        TrackMarkerModel(MarkerSettings(**change))


# --- over real DDS ---


class Planner:
    """A test node that publishes tracks and collects the markers that come back."""

    def __init__(self, context: Context, executor: SingleThreadedExecutor) -> None:
        self.node = rclpy.create_node("track_markers_test", context=context)
        self.executor = executor
        executor.add_node(self.node)
        self.received: list[MarkerArray] = []
        self.subscription = self.node.create_subscription(MarkerArray, "markers", self.received.append, 10)
        self.publisher = self.node.create_publisher(TrackedObjectArray, "tracks", 10)

    def wait_matched(self, timeout: float) -> bool:
        return spin_executor_until(
            self.executor,
            lambda: self.publisher.get_subscription_count() >= 1 and self.subscription.get_publisher_count() >= 1,
            timeout,
        )

    def send(self, msg: TrackedObjectArray, timeout: float = 10.0) -> MarkerArray:
        count = len(self.received)
        self.publisher.publish(msg)
        assert spin_executor_until(self.executor, lambda: len(self.received) > count, timeout), "no markers came back"
        return self.received[-1]


def test_the_node_over_dds_tracks_moving_one_vanishing_and_a_malformed_message(ros_context):
    executor = SingleThreadedExecutor(context=ros_context)
    params = [Parameter(k, value=v) for k, v in dataclass_items(SETTINGS, expiry_seconds=0.15)]
    node = TrackMarkers(context=ros_context, parameter_overrides=params)
    executor.add_node(node)
    planner = Planner(ros_context, executor)
    try:
        assert planner.wait_matched(30.0), "the node and the test did not match"
        for i in range(3):  # A moves right at 100 px/s, B moves up at 50 px/s (10 Hz stamps)
            a = obj(1, (100 + 10 * i, 100, 140 + 10 * i, 180), (100.0, 0.0))
            b = obj(2, (300, 300 - 5 * i, 340, 380 - 5 * i), (0.0, -50.0))
            out = planner.send(tracks(20 + 0.1 * i, a, b))
        assert (out.markers[0].header.stamp.sec, out.markers[0].header.stamp.nanosec) == (20, 200_000_000)
        assert {m.header.frame_id for m in out.markers} == {"plane"}
        assert xyz(find(out, "box", 1).points[0]) == pytest.approx(plane(120, 100))
        start, end = (xyz(p) for p in find(out, "velocity", 1).points)
        assert end[0] - start[0] == pytest.approx(2.0) and end[1] == pytest.approx(start[1])  # +x, 200 px = 2 m
        start, end = (xyz(p) for p in find(out, "velocity", 2).points)
        assert end[1] - start[1] == pytest.approx(1.0) and end[0] == pytest.approx(start[0])  # image up = +y
        assert len(find(out, "trail", 2).points) == 3
        assert find(out, "label", 2).text == "2 person confirmed"

        out = planner.send(tracks(20.3, obj(1, (130, 100, 170, 180), (100.0, 0.0))))  # B unseen 0.1 s: kept
        assert find(out, "label", 2).text == "2 person unseen 0.1s"
        out = planner.send(tracks(20.4, obj(1, (140, 100, 180, 180), (100.0, 0.0))))  # 0.2 s > 0.15: deleted
        assert {m.action for m in out.markers if m.id == 2} == {Marker.DELETE} and node.model.tracks.keys() == {1}

        bad = tracks(20.5, obj(1, (math.nan, 100, 190, 180)), obj(3, (0, 0, 10, 10)))
        out = planner.send(bad)
        assert node.bad_objects == 1 and node.failed_messages == 0 and {m.id for m in out.markers} == {1, 3}
        out = planner.send(tracks(20.6, obj(1, (160, 100, 200, 180), (100.0, 0.0))))
        assert find(out, "box", 1).action == Marker.ADD and node.messages == 7
    finally:
        executor.shutdown()
        planner.node.destroy_node()
        node.destroy_node()


def dataclass_items(settings: MarkerSettings, **changes) -> list[tuple[str, object]]:
    return list({**settings.__dict__, **changes}.items())


def node_process(*params: str) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "masa_ros.examples.track_markers", "--ros-args"]
    for p in params:
        cmd += ["-p", p]
    return subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_the_node_as_a_process_survives_a_malformed_track_and_refuses_a_bad_parameter(ros_context):
    bad = node_process("metres_per_pixel:=0.0")
    try:
        assert bad.wait(timeout=60) == 2
        output = bad.stdout.read()
        assert "refusing to start" in output and "metres_per_pixel" in output and "Traceback" not in output
    finally:
        stop_process(bad)
    proc = node_process("frame_id:=map", "metres_per_pixel:=0.02")
    executor = SingleThreadedExecutor(context=ros_context)
    planner = Planner(ros_context, executor)
    try:
        assert planner.wait_matched(60.0), "the node process did not come up"
        out = planner.send(tracks(1.0, obj(5, (math.inf, 0, 10, 10)), obj(6, (0, 0, 50, 100), (10.0, 0.0))))
        assert {m.id for m in out.markers} == {6} and {m.header.frame_id for m in out.markers} == {"map"}
        assert xyz(find(out, "box", 6).points[2]) == pytest.approx((1.0, -2.0, 0.0))
        out = planner.send(tracks(1.1, obj(6, (5, 0, 55, 100), (10.0, 0.0))))
        assert find(out, "trail", 6).action == Marker.ADD and proc.poll() is None
    finally:
        executor.shutdown()
        planner.node.destroy_node()
        stop_process(proc)
    assert "1 malformed track(s) skipped" in proc.stdout.read()
