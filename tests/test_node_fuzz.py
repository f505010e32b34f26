"""Property-based fuzz of the tracker node over real DDS (hypothesis, seeded): Image,
CompressedImage, DetectionArray and SetParameters requests, valid and malformed, against two node
processes (raw and compressed images). Each case asserts the node is alive; at the end every image
sent must have arrived and be accounted for (processed or dropped by reason), no frame may have
failed, and the only failed callbacks are the requests rclpy itself cannot parse."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import cv2
import numpy as np
import pytest
import rclpy
from builtin_interfaces.msg import Time
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st
from rcl_interfaces.msg import Parameter as ParameterMsg
from rcl_interfaces.msg import ParameterValue
from rcl_interfaces.srv import SetParameters
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Header

from masa_ros.msg import Detection, DetectionArray
from masa_ros.parameters import NODE_PARAMETERS, pipeline_defaults
from tests.ros_harness import EXECUTABLE, spin_until, start_node, stop_node
from tests.test_node_hardening import accounted

pytestmark = pytest.mark.skipif(not EXECUTABLE.exists(), reason="run scripts/setup.sh: the ROS package is not built")
SEED = 16
RAW_CASES, COMPRESSED_CASES = 1100, 900  # 2,000 cases per run
QOS = QoSProfile(depth=5000, reliability=ReliabilityPolicy.RELIABLE)
NAMES = [*sorted({p.name for p in NODE_PARAMETERS} | set(pipeline_defaults())), "", "nope", "tracker", "a.b.c"]
FUZZ = settings(
    max_examples=100,  # set per test
    deadline=None,
    database=None,
    phases=[Phase.generate],
    suppress_health_check=list(HealthCheck),
)


@dataclass
class Target:
    """One node process and the peer that fuzzes it; what was sent, to check the counters."""

    name: str
    proc: object
    peer: object
    images: object
    detections: object
    params: object
    sent_images: int = 0
    bad_requests: int = 0
    futures: list = field(default_factory=list)
    stamps: itertools.count = field(default_factory=lambda: itertools.count(1))


@pytest.fixture(scope="module")
def targets(tmp_path_factory):
    rclpy.init()
    common = {
        "given_detections": True,
        "process_all_frames": True,
        "queue_size": 10000,
        "detections_buffer": 10000,
        "detections_wait": 0.5,
        "diagnostics_period": 0.2,
    }
    tmp = tmp_path_factory.mktemp("fuzz")
    out = {}
    for name, compressed in (("masa_fuzz_raw", False), ("masa_fuzz_jpeg", True)):
        proc = start_node({**common, "compressed": compressed}, tmp / f"{name}.log", name=name, namespace=f"/{name}")
        peer = rclpy.create_node(f"{name}_peer", namespace=f"/{name}")
        kind, topic = (CompressedImage, "image/compressed") if compressed else (Image, "image")
        out[name] = Target(
            name,
            proc,
            peer,
            peer.create_publisher(kind, topic, QOS),
            peer.create_publisher(DetectionArray, "detections_in", QOS),
            peer.create_client(SetParameters, f"/{name}/{name}/set_parameters"),
        )
    yield out
    for t in out.values():
        stop_node(t.proc)
        t.peer.destroy_node()
    rclpy.shutdown()


# --- strategies ---------------------------------------------------------------------------
floats32 = st.floats(width=32)
sizes = st.integers(0, 40)
texts = st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\x00"), max_size=12)
encodings = st.sampled_from(["rgb8", "bgr8", "rgba8", "bgra8", "mono8", "mono16", "32FC1", "", "yuv422", "rgb8\x00"])


@st.composite
def images(draw) -> Image:
    """Valid small images most of the time; wrong sizes, steps, encodings or data otherwise."""
    width, height, encoding = draw(sizes), draw(sizes), draw(encodings)
    channels = {"rgb8": 3, "bgr8": 3, "rgba8": 4, "bgra8": 4, "mono8": 1, "mono16": 2}.get(encoding, 3)
    step = width * channels + draw(st.sampled_from([0, 0, 0, 1, 7, -1]))
    size = max(step, 0) * height + draw(st.sampled_from([0, 0, 0, 0, -1, 1, 100]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if draw(st.integers(0, 9)) == 0:  # a header that claims a huge image
        height = draw(st.integers(2**20, 2**32 - 1))
    return Image(
        height=height,
        width=width,
        encoding=encoding,
        is_bigendian=draw(st.integers(0, 1)),
        step=max(step, 0),
        data=rng.integers(0, 256, max(size, 0), dtype=np.uint8).tobytes(),
    )


def _png_header(width: int, height: int) -> bytes:
    """A PNG that declares ``width`` x ``height`` and has almost no data (a decompression bomb's header)."""
    import struct
    import zlib

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    idat = b"IDAT" + zlib.compress(b"\x00" * 64)
    return (
        b"\x89PNG\r\n\x1a\n"
        + struct.pack(">I", len(ihdr))
        + chunk
        + struct.pack(">I", zlib.crc32(chunk))
        + struct.pack(">I", len(idat) - 4)
        + idat
        + struct.pack(">I", zlib.crc32(idat))
        + b"\x00\x00\x00\x00IEND\xaeB`\x82"
    )


@st.composite
def compressed(draw) -> CompressedImage:
    """JPEG / PNG of small random images, cut, bit-flipped, random bytes, empty, or a bomb's header."""
    kind = draw(st.sampled_from(["jpeg", "png", "png", "cut", "flip", "random", "empty", "bomb"]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    w, h = draw(st.integers(1, 48)), draw(st.integers(1, 48))
    ext = ".jpg" if kind == "jpeg" or draw(st.booleans()) else ".png"
    data = cv2.imencode(ext, rng.integers(0, 256, (h, w, 3), dtype=np.uint8))[1].tobytes()
    if kind == "cut":
        data = data[: draw(st.integers(0, len(data) - 1))]
    elif kind == "flip":
        i = draw(st.integers(0, len(data) - 1))
        data = data[:i] + bytes([data[i] ^ draw(st.integers(1, 255))]) + data[i + 1 :]
    elif kind == "random":
        data = rng.integers(0, 256, draw(st.integers(1, 2000)), dtype=np.uint8).tobytes()
    elif kind == "empty":
        data = b""
    elif kind == "bomb":
        data = _png_header(draw(st.integers(20_000, 100_000)), draw(st.integers(20_000, 100_000)))
    return CompressedImage(format=draw(st.sampled_from(["jpeg", "png", "", "rgb8; jpeg compressed bgr8"])), data=data)


detections = st.lists(
    st.builds(
        Detection,
        box=st.lists(floats32, min_size=4, max_size=4),
        score=floats32,
        class_id=st.integers(-(2**31), 2**31 - 1),
        label=texts,
    ),
    max_size=6,
)


@st.composite
def parameter_values(draw) -> ParameterValue:
    """Any ParameterValue, its type sometimes outside the enum."""
    kind = draw(st.one_of(st.integers(0, 9), st.integers(10, 255)))
    v = ParameterValue(type=kind)
    v.bool_value = draw(st.booleans())
    v.integer_value = draw(st.integers(-(2**63), 2**63 - 1))
    v.double_value = draw(st.floats())
    v.string_value = draw(texts)
    v.string_array_value = draw(st.lists(texts, max_size=3))
    v.double_array_value = draw(st.lists(st.floats(), max_size=3))
    return v


requests = st.lists(st.tuples(st.sampled_from(NAMES), parameter_values()), min_size=1, max_size=3)
actions = st.sampled_from(["image", "image", "image", "detections", "parameters"])


# --- the fuzz -----------------------------------------------------------------------------
def _stamp(t: Target) -> Header:
    n = next(t.stamps)
    return Header(stamp=Time(sec=100_000 + n, nanosec=n % 1000), frame_id="fuzz")


def _send(t: Target, action: str, image, dets, params) -> None:
    if action == "image":
        header = _stamp(t)
        image.header = header
        t.detections.publish(DetectionArray(header=header, detections=dets))
        t.images.publish(image)
        t.sent_images += 1
    elif action == "detections":
        t.detections.publish(DetectionArray(header=_stamp(t), detections=dets))
    else:
        msgs = [ParameterMsg(name=name, value=value) for name, value in params]
        t.bad_requests += any(value.type > 9 for _, value in params)  # rclpy stops at the first
        t.futures.append(t.params.call_async(SetParameters.Request(parameters=msgs)))
    rclpy.spin_once(t.peer, timeout_sec=0)
    assert t.proc.poll() is None, f"{t.name} exited with {t.proc.returncode}"


def _settled(t: Target) -> dict[str, str]:
    """The node's counters once every image sent has arrived and none is queued or in progress."""
    from diagnostic_msgs.msg import DiagnosticArray

    latest: dict[str, str] = {}

    def take(msg: DiagnosticArray) -> None:
        if msg.status and msg.status[0].name.startswith(t.name):
            latest.clear()
            latest.update({kv.key: kv.value for kv in msg.status[0].values})

    sub = t.peer.create_subscription(DiagnosticArray, "/diagnostics", take, 50)

    def done() -> bool:
        return (
            bool(latest)
            and int(latest["images received"]) == t.sent_images
            and latest["images queued"] == "0"
            and latest["images in progress"] == "0"
        )

    spin_until(t.peer, done, 180)
    t.peer.destroy_subscription(sub)
    return dict(latest)


def _check(t: Target) -> None:
    diag = _settled(t)
    assert int(diag["images received"]) == t.sent_images, diag  # reliable: nothing lost on the way
    assert accounted(diag), diag
    assert diag["errors"] == "0", diag  # no input made a frame fail
    assert int(diag["callback errors"]) == t.bad_requests, diag
    assert int(diag["images processed"]) > 0, diag
    assert t.proc.poll() is None


def _wait_ready(t: Target) -> None:
    assert spin_until(
        t.peer,
        lambda: (
            t.images.get_subscription_count() > 0
            and t.detections.get_subscription_count() > 0
            and t.params.service_is_ready()
        ),
        120,
    ), f"{t.name} never subscribed"


def test_fuzzed_images_detections_and_parameters_never_end_the_raw_node(targets):
    t = targets["masa_fuzz_raw"]
    _wait_ready(t)

    @seed(SEED)
    @settings(FUZZ, max_examples=RAW_CASES)
    @given(action=actions, image=images(), dets=detections, params=requests)
    def fuzz(action, image, dets, params):
        _send(t, action, image, dets, params)

    fuzz()
    _check(t)


def test_fuzzed_compressed_images_detections_and_parameters_never_end_the_compressed_node(targets):
    t = targets["masa_fuzz_jpeg"]
    _wait_ready(t)

    @seed(SEED)
    @settings(FUZZ, max_examples=COMPRESSED_CASES)
    @given(action=actions, image=compressed(), dets=detections, params=requests)
    def fuzz(action, image, dets, params):
        _send(t, action, image, dets, params)

    fuzz()
    _check(t)
