"""Several cameras in one tracker node over real DDS: one node with two cameras gives each camera the
tracks that a single-camera node gives on the same frames; bad ``cameras`` values refuse to start."""

from __future__ import annotations

import subprocess

import cv2
import numpy as np
import pytest
import rclpy
from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.lifecycle import TransitionCallbackReturn
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Header

from masa_core import ConfigError
from masa_core.formats.mot import read_mot
from masa_ros.cameras import CameraTopics, camera_topics
from masa_ros.image_conversion import rgb_to_image
from masa_ros.msg import Detection, DetectionArray, TrackedObjectArray
from masa_ros.tracker_node import TrackerNode
from tests.paths import TUD_CAMPUS_GT, TUD_CAMPUS_VIDEO
from tests.ros_harness import EXECUTABLE, TEST_PARAMETERS, node_command, spin_until, start_node, stop_node

FRAMES = 8
RELIABLE = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)
# camera A: TUD-Campus with its ground-truth boxes; camera B: the same frames mirrored (so its tracks
# differ), as JPEG
STREAMS = {"cam_a/image": False, "cam_b/image/compressed": True}
SOLO = {"cam_a/image": "solo_a", "cam_b/image/compressed": "solo_b"}  # the single-camera node of each stream
ros_only = pytest.mark.skipif(not EXECUTABLE.exists(), reason="run scripts/setup.sh: the ROS package is not built")


def test_camera_topics_name_each_camera_by_its_namespace():
    assert camera_topics([], False) == [CameraTopics("", "image", False)]
    assert camera_topics([], True) == [CameraTopics("", "image/compressed", True)]
    front, left = camera_topics(["front/image", "/robot/left/image_raw/compressed"], False)
    assert (front.image, front.compressed, front.topic("tracks")) == ("front/image", False, "front/tracks")
    assert (left.compressed, left.topic("tracks"), left.topic("detections_in")) == (
        True,
        "/robot/left/tracks",
        "/robot/left/detections_in",
    )


@pytest.mark.parametrize(
    ("entries", "reason"),
    [
        (["a/image", "a/image"], "listed twice"),
        (["", "a/image"], "empty entry"),
        (["image"], "no namespace"),
        (["a/image", "a/image_raw/compressed"], "would both publish a/tracks"),
    ],
)
def test_bad_camera_lists_are_refused_with_the_reason(entries, reason):
    with pytest.raises(ConfigError, match=reason):
        camera_topics(entries, False)


@ros_only
@pytest.mark.parametrize(
    ("value", "reason"),
    [("[a/image,a/image]", "listed twice"), ("[a/image,a/image/compressed]", "would both publish a/tracks")],
)
def test_bad_cameras_parameter_fails_configure_naming_it(value, reason):
    out = subprocess.run(node_command({"cameras": value}), capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and reason in out.stdout + out.stderr


@ros_only
def test_lifecycle_and_runtime_parameters_cover_every_camera(ros):
    """In process: a bad list fails configure and the node stays unconfigured; fixed, configure builds
    one pipeline per camera on one model; tracker.* changes reach every camera; deactivate drops every
    camera's queue; cleanup frees them all."""
    overrides = [
        Parameter(k, value=v)
        for k, v in {**TEST_PARAMETERS, "autostart": False, "given_detections": True, "detections_wait": 30.0}.items()
    ]
    overrides.append(Parameter("cameras", Parameter.Type.STRING_ARRAY, ["a/image", "a/image"]))
    node = TrackerNode(parameter_overrides=overrides)
    try:
        assert node.trigger_configure() == TransitionCallbackReturn.FAILURE and "listed twice" in node.last_error
        assert node.state == "unconfigured" and node.cameras == []
        node.set_parameters([Parameter("cameras", Parameter.Type.STRING_ARRAY, ["a/image", "b/image/compressed"])])
        assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
        first, second = (c.pipeline for c in node.cameras)
        assert first.model is second.model and first.tracker is not second.tracker
        assert node.set_parameters([Parameter("tracker.match_score_thr", value=0.61)])[0].successful
        assert {c.pipeline.config.tracker.match_score_thr for c in node.cameras} == {0.61}
        assert node.trigger_activate() == TransitionCallbackReturn.SUCCESS
        for camera in node.cameras:  # images that wait for their detections (detections_wait 30 s)
            node._on_image(camera, rgb_to_image(np.zeros((8, 8, 3), np.uint8), Header(stamp=Time(sec=1))))
        assert node.trigger_deactivate() == TransitionCallbackReturn.SUCCESS
        assert [(len(c.pending), c.health.dropped_inactive) for c in node.cameras] == [(0, 1), (0, 1)]
        assert node.trigger_cleanup() == TransitionCallbackReturn.SUCCESS
        assert node.cameras == [] and node.pipeline is None
    finally:
        node.destroy_node()


@pytest.fixture(scope="module")
def ros():
    rclpy.init()
    yield
    rclpy.shutdown()


@ros_only
def test_cameras_share_the_nodes_own_detector(ros, tmp_path):
    """Without given boxes: the one detector the cameras share finds people in each camera's image."""
    cameras = "[left/image,right/image]"
    proc = start_node({"cameras": cameras, "detector.classes": "[Person]"}, tmp_path / "node.log")
    peer = rclpy.create_node("masa_cameras_detector_peer")
    try:
        pubs = [peer.create_publisher(Image, f"{side}/image", RELIABLE) for side in ("left", "right")]
        got: dict[str, list[TrackedObjectArray]] = {"left": [], "right": []}
        for side, msgs in got.items():
            peer.create_subscription(TrackedObjectArray, f"{side}/tracks", msgs.append, 10)
        assert spin_until(peer, lambda: all(p.get_subscription_count() for p in pubs), 120)
        rgb = load_streams()["cam_a/image"][0][0]
        for pub, image in zip(pubs, (rgb, np.ascontiguousarray(rgb[:, ::-1])), strict=True):
            pub.publish(rgb_to_image(image, Header(stamp=Time(sec=7), frame_id="cam")))
        assert spin_until(peer, lambda: all(got.values()), 120), {k: len(v) for k, v in got.items()}
        left, right = got["left"][0], got["right"][0]
        assert len(left.objects) >= 3 and all(o.label == "Person" for o in (*left.objects, *right.objects))
        # the mirrored image gives the mirrored boxes, give or take the detector's own asymmetry
        assert abs(len(left.objects) - len(right.objects)) <= 1
    finally:
        stop_node(proc)
        peer.destroy_node()


def load_streams() -> dict[str, list[tuple[np.ndarray, np.ndarray]]]:
    """FRAMES (frame, boxes) of each stream: TUD-Campus with its boxes, and mirrored."""
    gt = read_mot(TUD_CAMPUS_GT, gt_filter=True)
    cap = cv2.VideoCapture(str(TUD_CAMPUS_VIDEO))
    frames = [cv2.cvtColor(cap.read()[1], cv2.COLOR_BGR2RGB) for _ in range(FRAMES)]
    cap.release()
    streams = {}
    for topic, mirrored in STREAMS.items():
        pairs = []
        for i, rgb in enumerate(frames):
            boxes = gt[i + 1].boxes.astype(np.float64)
            if mirrored:
                rgb = np.ascontiguousarray(rgb[:, ::-1])
                boxes = np.stack([640 - boxes[:, 2], boxes[:, 1], 640 - boxes[:, 0], boxes[:, 3]], axis=1)
            pairs.append((rgb, boxes))
        streams[topic] = pairs
    return streams


class Camera:
    """The peer's side of one camera stream: image and detections publishers, the tracks received."""

    def __init__(self, peer, prefix: str, compressed: bool) -> None:
        self.compressed = compressed
        kind, leaf = (CompressedImage, "image/compressed") if compressed else (Image, "image")
        self.images = peer.create_publisher(kind, f"{prefix}/{leaf}", RELIABLE)
        self.detections = peer.create_publisher(DetectionArray, f"{prefix}/detections_in", RELIABLE)
        self.tracks: list[TrackedObjectArray] = []
        peer.create_subscription(TrackedObjectArray, f"{prefix}/tracks", self.tracks.append, 50)

    def connected(self) -> bool:
        return self.images.get_subscription_count() > 0 and self.detections.get_subscription_count() > 0

    def send(self, index: int, rgb: np.ndarray, boxes: np.ndarray) -> None:
        header = Header(stamp=Time(sec=100 + index), frame_id="cam")
        dets = [Detection(box=[float(v) for v in b], score=1.0, class_id=-1, label="") for b in boxes]
        self.detections.publish(DetectionArray(header=header, detections=dets))
        if self.compressed:
            data = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))[1].tobytes()
            self.images.publish(CompressedImage(header=header, format="jpeg", data=data))
        else:
            self.images.publish(rgb_to_image(rgb, header))


@pytest.fixture(scope="module")
def nodes(ros, tmp_path_factory):
    logs = tmp_path_factory.mktemp("nodes")
    common = {"given_detections": True, "process_all_frames": True, "diagnostics_period": 0.2}
    procs = [start_node({**common, "cameras": f"[{','.join(STREAMS)}]"}, logs / "multi.log")]
    procs += [
        start_node({**common, "compressed": topic.endswith("compressed")}, logs / f"{ns}.log", f"masa_{ns}", f"/{ns}")
        for topic, ns in SOLO.items()
    ]
    peer = rclpy.create_node("masa_cameras_peer")
    multi = {topic: Camera(peer, topic.split("/")[0], topic.endswith("compressed")) for topic in STREAMS}
    solo = {topic: Camera(peer, f"/{ns}", topic.endswith("compressed")) for topic, ns in SOLO.items()}
    diagnostics: list[DiagnosticArray] = []
    peer.create_subscription(DiagnosticArray, "/diagnostics", diagnostics.append, 50)
    cams = [*multi.values(), *solo.values()]
    assert spin_until(peer, lambda: all(c.connected() for c in cams), 120), "a node never subscribed"
    yield peer, multi, solo, diagnostics, procs
    for proc in procs:
        stop_node(proc)
    peer.destroy_node()


def summary(msg: TrackedObjectArray) -> list[tuple]:
    """A tracks message as (id, state, label, box rounded) per object, sorted by id."""
    return sorted((o.id, o.state, o.label, *np.round(o.box, 2)) for o in msg.objects)


@ros_only
def test_two_cameras_in_one_node_track_as_two_single_camera_nodes(nodes):
    peer, multi, solo, _, procs = nodes
    streams = load_streams()
    for i in range(FRAMES):  # all at once: the two-camera node batches frames that arrive together
        for topic, pairs in streams.items():
            multi[topic].send(i, *pairs[i])
            solo[topic].send(i, *pairs[i])
    cams = [*multi.values(), *solo.values()]
    assert spin_until(peer, lambda: all(len(c.tracks) >= FRAMES for c in cams), 180), [len(c.tracks) for c in cams]
    for topic in STREAMS:
        got, want = multi[topic].tracks, solo[topic].tracks
        assert [m.header.stamp.sec for m in got] == [100 + i for i in range(FRAMES)]
        assert [summary(m) for m in got] == [summary(m) for m in want]
        for a, b in zip(got, want, strict=True):
            np.testing.assert_allclose([o.score for o in a.objects], [o.score for o in b.objects], atol=1e-4)
        assert len({o.id for m in got for o in m.objects}) >= 5
    # each camera its own ID space: both start from the same first ID
    first_a, first_b = (min(o.id for o in c.tracks[0].objects) for c in multi.values())
    assert first_a == first_b
    assert all(p.poll() is None for p in procs)


@ros_only
def test_each_camera_reports_its_own_counters_on_diagnostics(nodes):
    peer, _, _, diagnostics, _ = nodes
    diagnostics.clear()

    def statuses() -> dict[str, dict[str, str]]:
        found = {}
        for msg in diagnostics:
            for s in msg.status:
                if s.name.startswith("masa_tracker: tracking"):
                    found[s.name] = {kv.key: kv.value for kv in s.values}
        return found

    names = {"masa_tracker: tracking cam_a", "masa_tracker: tracking cam_b"}
    assert spin_until(peer, lambda: set(statuses()) == names, 20), set(statuses())
    for values in statuses().values():
        assert int(values["images received"]) == int(values["images processed"]) == FRAMES
        assert values["dropped (stale)"] == "0" and values["latency ms (mean of last 100)"] != "n/a"
    # the frames were sent together: some of the two cameras' frames went through the model together
    assert sum(int(v["images batched with other cameras"]) for v in statuses().values()) >= 2


@ros_only
def test_a_bad_image_or_box_on_one_camera_loses_nothing_on_the_other(ros, tmp_path):
    """Frames sent together (on topics of their own: the module's nodes are still up): camera B's
    malformed image is dropped and counted, its NaN box dropped from its frame; camera A's frames,
    sent beside them, are all tracked; the node lives on."""
    common = {"given_detections": True, "process_all_frames": True, "diagnostics_period": 0.2}
    proc = start_node({**common, "cameras": "[good_cam/image,bad_cam/image]"}, tmp_path / "node.log")
    peer = rclpy.create_node("masa_cameras_bad_input_peer")
    try:
        cam_a, cam_b = Camera(peer, "good_cam", False), Camera(peer, "bad_cam", False)
        diagnostics: list[DiagnosticArray] = []
        peer.create_subscription(DiagnosticArray, "/diagnostics", diagnostics.append, 50)
        assert spin_until(peer, lambda: cam_a.connected() and cam_b.connected(), 120), "the node never subscribed"
        pairs = load_streams()["cam_a/image"]
        nan_boxes = np.vstack([pairs[1][1], [[np.nan, 10.0, 50.0, 90.0]]])
        for i, (rgb, boxes) in enumerate(pairs[:3]):
            cam_a.send(i, rgb, boxes)
            if i == 0:  # rgb8 that claims 640x480 but carries 10 bytes
                header = Header(stamp=Time(sec=100), frame_id="cam")
                cam_b.detections.publish(DetectionArray(header=header, detections=[]))
                cam_b.images.publish(
                    Image(header=header, height=480, width=640, encoding="rgb8", step=1920, data=b"x" * 10)
                )
            else:
                cam_b.send(i, rgb, nan_boxes if i == 1 else boxes)
        assert spin_until(peer, lambda: len(cam_a.tracks) == 3 and len(cam_b.tracks) == 2, 120), (
            len(cam_a.tracks),
            len(cam_b.tracks),
        )
        assert [m.header.stamp.sec for m in cam_a.tracks] == [100, 101, 102]
        assert [m.header.stamp.sec for m in cam_b.tracks] == [101, 102]
        assert all(len(m.objects) == len(pairs[i][1]) for i, m in enumerate(cam_a.tracks))
        boxes_b = [o.box for m in cam_b.tracks for o in m.objects]
        assert boxes_b and np.isfinite(boxes_b).all()  # the NaN box was dropped, not tracked

        def invalid() -> dict[str, str]:
            return {
                s.name: next(kv.value for kv in s.values if kv.key == "dropped (invalid image)")
                for msg in diagnostics
                for s in msg.status
                if s.name in want
            }

        want = {"masa_tracker: tracking good_cam": "0", "masa_tracker: tracking bad_cam": "1"}
        assert spin_until(peer, lambda: invalid() == want, 20), invalid()
        assert proc.poll() is None
    finally:
        stop_node(proc)
        peer.destroy_node()
