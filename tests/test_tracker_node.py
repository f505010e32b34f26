"""The tracker node over real topics: a separate process started through its installed executable
and the shipped parameter file, fed and read by an rclpy peer over Fast DDS."""

from __future__ import annotations

import subprocess

import cv2
import numpy as np
import pytest
import rclpy
from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.msg import Parameter as ParameterMsg
from rcl_interfaces.msg import ParameterType, ParameterValue
from rcl_interfaces.srv import SetParameters
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image
from std_msgs.msg import Header

from masa_core.formats.mot import read_mot
from masa_ros.image_conversion import rgb_to_image
from masa_ros.msg import Detection, DetectionArray, TrackedObject, TrackedObjectArray
from tests.paths import TUD_CAMPUS_GT
from tests.ros_harness import EXECUTABLE, node_command, spin_until, start_node, stop_node

pytestmark = pytest.mark.skipif(not EXECUTABLE.exists(), reason="run scripts/setup.sh: the ROS package is not built")

GT = read_mot(TUD_CAMPUS_GT, gt_filter=True)
RELIABLE = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)


class Peer:
    """The test's side of the topics: publishes images and detections, collects tracks and diagnostics."""

    def __init__(self, service: str = "/masa_tracker/set_parameters") -> None:
        self.node = rclpy.create_node("masa_test_peer")
        self.images = self.node.create_publisher(Image, "image", RELIABLE)
        self.detections = self.node.create_publisher(DetectionArray, "detections_in", RELIABLE)
        self.tracks: list[TrackedObjectArray] = []
        self.diagnostics: list[DiagnosticArray] = []
        self.node.create_subscription(TrackedObjectArray, "tracks", self.tracks.append, 50)
        self.node.create_subscription(DiagnosticArray, "/diagnostics", self.diagnostics.append, 50)
        self.params = self.node.create_client(SetParameters, service)

    def wait_connected(self) -> None:
        assert spin_until(
            self.node,
            lambda: self.images.get_subscription_count() > 0 and self.detections.get_subscription_count() > 0,
            60,
        ), "the node never subscribed"

    def send(self, image: Image, boxes: np.ndarray | list, scores: list[float] | None = None) -> None:
        dets = DetectionArray(header=image.header)
        for i, box in enumerate(boxes):
            score = 1.0 if scores is None else scores[i]
            dets.detections.append(Detection(box=[float(v) for v in box], score=score, class_id=-1, label=""))
        self.detections.publish(dets)
        self.images.publish(image)

    def wait_tracks(self, count: int, timeout: float = 60) -> list[TrackedObjectArray]:
        assert spin_until(self.node, lambda: len(self.tracks) >= count, timeout), f"got {len(self.tracks)} of {count}"
        return self.tracks

    def last_diagnostics(self) -> dict[str, str]:
        self.diagnostics.clear()
        assert spin_until(self.node, lambda: bool(self.diagnostics), 10)
        return {kv.key: kv.value for kv in self.diagnostics[-1].status[0].values}

    def set_parameter(self, name: str, value: float | int | bool) -> tuple[bool, str]:
        assert self.params.wait_for_service(timeout_sec=10)
        if isinstance(value, bool):
            pv = ParameterValue(type=ParameterType.PARAMETER_BOOL, bool_value=value)
        elif isinstance(value, int):
            pv = ParameterValue(type=ParameterType.PARAMETER_INTEGER, integer_value=value)
        else:
            pv = ParameterValue(type=ParameterType.PARAMETER_DOUBLE, double_value=value)
        future = self.params.call_async(SetParameters.Request(parameters=[ParameterMsg(name=name, value=pv)]))
        assert spin_until(self.node, future.done, 10)
        result = future.result().results[0]
        return result.successful, result.reason


def frame(index: int) -> np.ndarray:
    cap = cv2.VideoCapture(str(TUD_CAMPUS_GT.parent.parent / "TUD-Campus.mp4"))
    cap.set(cv2.CAP_PROP_POS_FRAMES, index)
    ok, bgr = cap.read()
    cap.release()
    assert ok
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def header(index: int) -> Header:
    return Header(stamp=Time(sec=1000 + index, nanosec=123), frame_id="camera_optical")


def encode(rgb: np.ndarray, encoding: str, index: int) -> Image:
    if encoding == "rgb8":
        return rgb_to_image(rgb, header(index))
    if encoding == "bgr8":
        data = rgb[:, :, ::-1]
    elif encoding == "bgra8":
        data = np.concatenate([rgb[:, :, ::-1], np.full((*rgb.shape[:2], 1), 255, np.uint8)], axis=2)
    else:  # mono8
        data = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)[:, :, None]
    h, w, c = data.shape
    return Image(
        header=header(index),
        height=h,
        width=w,
        encoding=encoding,
        is_bigendian=0,
        step=w * c,
        data=np.ascontiguousarray(data).tobytes(),
    )


@pytest.fixture(scope="module")
def ros():
    rclpy.init()
    yield
    rclpy.shutdown()


@pytest.fixture(scope="module")
def node_process(ros, tmp_path_factory):
    log = tmp_path_factory.mktemp("node") / "node.log"
    params = {"given_detections": True, "process_all_frames": True, "diagnostics_period": 0.2}
    proc = start_node(params, log)
    yield proc, log
    stop_node(proc)


@pytest.fixture(scope="module")
def peer(node_process):
    p = Peer()
    p.wait_connected()
    yield p
    p.node.destroy_node()


def test_moving_people_keep_ids_with_stamps_and_boxes_preserved(peer, node_process):
    peer.tracks.clear()
    for i in range(6):
        peer.send(encode(frame(i), "rgb8", i), GT[i + 1].boxes)
    tracks = peer.wait_tracks(6)
    id_of: dict[int, int] = {}
    for i, msg in enumerate(tracks):
        assert msg.header.stamp == header(i).stamp and msg.header.frame_id == "camera_optical"
        assert (msg.image_width, msg.image_height) == (640, 480)
        rows = GT[i + 1]
        for obj in msg.objects:
            j = int(np.argmin(np.abs(rows.boxes - np.array(obj.box)).sum(1)))
            np.testing.assert_allclose(obj.box, rows.boxes[j], atol=1e-3)  # source-image pixels
            assert id_of.setdefault(int(rows.ids[j]), obj.id) == obj.id
    assert len(id_of) >= 5
    assert node_process[0].poll() is None
    diagnostics = peer.last_diagnostics()  # per-stage means of the frames above; no masks configured
    assert all(float(diagnostics[f"{s} ms"]) > 0 for s in ("backbone", "adapter", "embed", "tracker"))
    assert float(diagnostics["detector ms"]) >= 0 and diagnostics["masks ms"] == "n/a"
    assert diagnostics["model"].startswith("model ") and " backend " in diagnostics["model"]


@pytest.mark.parametrize("encoding", ["bgr8", "mono8", "bgra8"])
def test_each_encoding_is_tracked_in_source_pixels(peer, encoding):
    peer.tracks.clear()
    index = {"bgr8": 10, "mono8": 11, "bgra8": 12}[encoding]
    peer.send(encode(frame(index), encoding, index), GT[index + 1].boxes)
    (msg,) = peer.wait_tracks(1)
    assert msg.header.stamp == header(index).stamp
    assert sorted(tuple(np.round(o.box, 2)) for o in msg.objects) == sorted(
        tuple(np.round(b, 2)) for b in GT[index + 1].boxes
    )


def _bad_images() -> list[Image]:
    good = encode(frame(20), "rgb8", 20)
    short = encode(frame(20), "rgb8", 21)
    short.data = short.data[: len(short.data) // 2]
    wrong_step = encode(frame(20), "rgb8", 22)
    wrong_step.step = 100
    unsupported = encode(frame(20), "rgb8", 23)
    unsupported.encoding = "32FC1"
    empty = Image(header=header(24), height=0, width=0, encoding="rgb8", step=0)
    return [short, wrong_step, unsupported, empty, good]


def test_malformed_images_are_dropped_counted_and_the_node_keeps_tracking(peer, node_process):
    before = int(peer.last_diagnostics()["dropped (invalid image)"])
    peer.tracks.clear()
    for img in _bad_images():
        peer.send(img, [[10, 10, 50, 100]])
    peer.send(encode(frame(25), "rgb8", 25), GT[26].boxes)
    tracks = peer.wait_tracks(2)
    assert [m.header.stamp.sec for m in tracks] == [1020, 1025]
    assert int(peer.last_diagnostics()["dropped (invalid image)"]) == before + 4
    assert node_process[0].poll() is None


def test_nan_and_negative_detections_are_dropped_valid_ones_tracked(peer):
    peer.tracks.clear()
    boxes = [[np.nan, 10, 50, 100], [200, 200, 150, 150], [100, 100, 160, 220]]
    peer.send(encode(frame(30), "rgb8", 30), boxes, [0.9, 0.9, 0.9])
    (msg,) = peer.wait_tracks(1)
    assert [list(np.round(o.box, 2)) for o in msg.objects] == [[100.0, 100.0, 160.0, 220.0]]


def test_detections_without_images_are_bounded_and_counted(peer, node_process):
    for i in range(150):  # the node keeps at most detections_buffer (100) of them
        peer.detections.publish(DetectionArray(header=Header(stamp=Time(sec=50_000 + i))))
        rclpy.spin_once(peer.node, timeout_sec=0.002)
    assert spin_until(peer.node, lambda: int(peer.last_diagnostics()["detections without image"]) >= 50, 20)
    peer.tracks.clear()
    peer.send(encode(frame(31), "rgb8", 31), GT[32].boxes)
    assert len(peer.wait_tracks(1)[0].objects) == len(GT[32])
    assert node_process[0].poll() is None


def test_new_tracks_are_published_once_confirmed_with_state_and_velocity(peer):
    assert peer.set_parameter("tracker.publish_tentative", False)[0]
    try:
        peer.tracks.clear()
        extra = [560.0, 40.0, 600.0, 140.0]  # a box that appears one image after the others
        for k, index in enumerate((40, 41, 42)):
            boxes = np.vstack([GT[index + 1].boxes, [extra]]) if k else GT[index + 1].boxes
            peer.send(encode(frame(index), "rgb8", index), boxes)
        first, second, third = peer.wait_tracks(3)
    finally:
        assert peer.set_parameter("tracker.publish_tentative", True)[0]
    assert first.objects == []  # every track is new, so tentative (these images come 10 s after the last ones)
    assert len(second.objects) == len(GT[42]) and extra not in [list(o.box) for o in second.objects]
    assert {o.state for o in second.objects} == {TrackedObject.STATE_CONFIRMED}
    assert extra in [list(np.round(o.box, 3)) for o in third.objects]
    assert all(np.isfinite(o.velocity).all() for o in third.objects)
    assert any(np.abs(o.velocity).sum() > 0 for o in third.objects)  # pixels per second, from the filter


def test_runtime_parameters_are_validated(peer):
    ok, reason = peer.set_parameter("tracker.match_score_thr", 1.5)
    assert not ok
    ok, _ = peer.set_parameter("tracker.match_score_thr", 0.6)
    assert ok
    ok, reason = peer.set_parameter("model.input_size", 256)
    assert not ok and "read-only" in reason.lower()


@pytest.mark.parametrize(
    ("param", "value", "message"),
    [
        ("model.device", "tpu", "model.device"),
        ("model.backend", "onnx", "model.backend"),
        ("tracker.match_metric", "euclid", "tracker.match_metric"),
        ("tracker.match_score_thr", "1.5", "tracker.match_score_thr"),
    ],
)
def test_invalid_parameters_at_start_refuse_to_start_naming_them(param, value, message):
    out = subprocess.run(node_command({param: value}), capture_output=True, text=True, timeout=120)
    assert out.returncode == 2
    assert message in out.stdout + out.stderr
