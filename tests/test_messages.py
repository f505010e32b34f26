"""The package's messages: the generated classes match msg/*.msg, a TrackedObjectArray survives a real
rclpy / Fast DDS round trip field for field, and camera-sized images cross processes with the shipped
Fast DDS profile."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import numpy as np
import pytest
import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from rclpy.serialization import deserialize_message, serialize_message
from std_msgs.msg import Header

from masa_core.tracking import TrackState
from masa_ros import msg as masa_msgs
from masa_ros.image_conversion import image_to_mask, mask_to_image
from tests.paths import REPO
from tests.ros_harness import spin_executor_until

TrackedObject = masa_msgs.TrackedObject
TrackedObjectArray = masa_msgs.TrackedObjectArray

MSG_DIR = REPO / "msg"
PROFILE = REPO / "config" / "fastdds_profile.xml"
RELIABLE = QoSProfile(
    depth=10,
    reliability=ReliabilityPolicy.RELIABLE,
    durability=DurabilityPolicy.VOLATILE,
    history=HistoryPolicy.KEEP_LAST,
)

# .msg primitive type -> the name rosidl's Python classes report
_IDL_NAMES = {"float32": "float", "float64": "double", "byte": "octet", "char": "uint8"}
_PRIMITIVES = {
    "bool", "byte", "char", "float32", "float64", "int8", "uint8", "int16", "uint16",
    "int32", "uint32", "int64", "uint64", "string", "wstring",
}  # fmt: skip


def expected_field_types(path) -> dict[str, str]:
    """Field name -> type, as ``get_fields_and_field_types()`` spells it, parsed from a .msg file."""
    fields = {}
    for raw in path.read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        type_text, name = line.split()[:2]
        if "=" in line.split(None, 1)[1]:
            continue  # a constant, not a field
        m = re.fullmatch(r"([\w/]+?)(<=(\d+))?(\[(<=)?(\d*)\])?", type_text)
        assert m, f"{path.name}: cannot parse {raw!r}"
        base, str_bound, array_part, bounded, size = m.group(1), m.group(3), m.group(4), m.group(5), m.group(6)
        if base in _PRIMITIVES:
            base = _IDL_NAMES.get(base, base)
        elif "/" not in base:
            base = f"masa_ros/{base}"
        if str_bound:
            base = f"{base}<{str_bound}>"
        if not array_part:
            fields[name] = base
        elif bounded:
            fields[name] = f"sequence<{base}, {size}>"
        elif size:
            fields[name] = f"{base}[{size}]"
        else:
            fields[name] = f"sequence<{base}>"
    return fields


MSG_FILES = sorted(MSG_DIR.glob("*.msg"))


def test_tracked_object_messages_are_defined():
    assert {"TrackedObject.msg", "TrackedObjectArray.msg"} <= {p.name for p in MSG_FILES}


@pytest.mark.parametrize("path", MSG_FILES, ids=[p.stem for p in MSG_FILES])
def test_generated_class_matches_msg_file(path):
    cls = getattr(masa_msgs, path.stem, None)
    assert cls is not None, f"masa_ros.msg has no {path.stem}: rebuild with scripts/setup_ros.sh"
    assert cls.get_fields_and_field_types() == expected_field_types(path)


def test_public_contract_of_tracked_object():
    assert TrackedObject.get_fields_and_field_types() == {
        "id": "uint64",
        "label": "string",
        "class_id": "int32",
        "score": "float",
        "match_score": "float",
        "box": "float[4]",
        "mask": "sensor_msgs/Image",
        "age": "uint32",
        "frames_since_seen": "uint32",
        "velocity": "float[2]",
        "state": "uint8",
        "detection_index": "int32",
    }
    states = (TrackedObject.STATE_TENTATIVE, TrackedObject.STATE_CONFIRMED, TrackedObject.STATE_LOST)
    assert states == tuple(int(s) for s in TrackState)
    assert TrackedObjectArray.get_fields_and_field_types() == {
        "header": "std_msgs/Header",
        "image_width": "uint32",
        "image_height": "uint32",
        "objects": "sequence<masa_ros/TrackedObject>",
    }


def sample_array() -> tuple[TrackedObjectArray, np.ndarray]:
    header = Header(frame_id="camera_color_optical_frame")
    header.stamp.sec, header.stamp.nanosec = 1_700_000_123, 456_789_000
    mask = np.zeros((12, 9), bool)
    mask[2:10, 3:7] = True
    mask[5, 0] = True
    first = TrackedObject(
        id=2**63 + 7,  # uint64 beyond int64
        label="person",
        class_id=0,
        score=0.875,
        match_score=0.5,
        box=np.array([10.5, 20.25, 19.5, 32.0], np.float32),
        mask=mask_to_image(mask, header),
        age=41,
        frames_since_seen=0,
    )
    second = TrackedObject(
        id=3,
        label="object",
        class_id=-1,
        score=0.25,
        match_score=0.0,
        box=np.array([0.0, 0.0, 639.0, 479.0], np.float32),
        age=0,
        frames_since_seen=2,
    )
    msg = TrackedObjectArray(header=header, image_width=640, image_height=480, objects=[first, second])
    return msg, mask


def assert_same_array(got: TrackedObjectArray, want: TrackedObjectArray, mask: np.ndarray) -> None:
    assert got.header.frame_id == want.header.frame_id
    assert (got.header.stamp.sec, got.header.stamp.nanosec) == (want.header.stamp.sec, want.header.stamp.nanosec)
    assert (got.image_width, got.image_height) == (640, 480)
    assert len(got.objects) == 2
    for g, w in zip(got.objects, want.objects, strict=True):
        assert (g.id, g.label, g.class_id, g.age, g.frames_since_seen) == (
            w.id,
            w.label,
            w.class_id,
            w.age,
            w.frames_since_seen,
        )
        assert (g.score, g.match_score) == (w.score, w.match_score)
        np.testing.assert_array_equal(g.box, w.box)
        assert (g.mask.height, g.mask.width, g.mask.step, g.mask.encoding) == (
            w.mask.height,
            w.mask.width,
            w.mask.step,
            w.mask.encoding,
        )
        assert bytes(g.mask.data) == bytes(w.mask.data)
    assert got.objects[0].id == 2**63 + 7
    np.testing.assert_array_equal(image_to_mask(got.objects[0].mask), mask)
    assert image_to_mask(got.objects[1].mask).shape == (0, 0)
    assert got == want  # the generated __eq__ agrees


def test_serialization_round_trip():
    msg, mask = sample_array()
    assert_same_array(deserialize_message(serialize_message(msg), TrackedObjectArray), msg, mask)


def test_tracked_object_array_round_trip_over_fast_dds(ros_context):
    sender = rclpy.create_node("masa_msg_test_sender", context=ros_context)
    receiver = rclpy.create_node("masa_msg_test_receiver", context=ros_context)
    executor = SingleThreadedExecutor(context=ros_context)
    try:
        for node in (sender, receiver):
            executor.add_node(node)
        received: list[TrackedObjectArray] = []
        receiver.create_subscription(TrackedObjectArray, "tracks", received.append, RELIABLE)
        publisher = sender.create_publisher(TrackedObjectArray, "tracks", RELIABLE)
        matched = spin_executor_until(executor, lambda: publisher.get_subscription_count() == 1, 5.0)
        assert matched, "no subscriber matched"

        msg, mask = sample_array()
        publisher.publish(msg)
        assert spin_executor_until(executor, lambda: len(received) >= 1, 5.0), "the message did not arrive"
        assert len(received) == 1
        assert received[0] is not msg
        assert_same_array(received[0], msg, mask)
    finally:
        executor.shutdown()
        sender.destroy_node()
        receiver.destroy_node()


_SUBSCRIBER = """
import sys, time, rclpy
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Image
rclpy.init()
node = rclpy.create_node("masa_profile_test_sub")
got = []
node.create_subscription(Image, "profile_test_image", lambda m: got.append((m.width, m.height, len(m.data))),
                         qos_profile_sensor_data)
print("READY", flush=True)
deadline = time.monotonic() + float(sys.argv[1])
while time.monotonic() < deadline and len(got) < 10:
    rclpy.spin_once(node, timeout_sec=0.05)
print("GOT", len(got), sorted(set(got)), flush=True)
"""

_PUBLISHER = """
import time, rclpy
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Image
from masa_ros.image_conversion import rgb_to_image
import numpy as np
rclpy.init()
node = rclpy.create_node("masa_profile_test_pub")
pub = node.create_publisher(Image, "profile_test_image", qos_profile_sensor_data)
deadline = time.monotonic() + 10
while pub.get_subscription_count() == 0 and time.monotonic() < deadline:
    time.sleep(0.02)
time.sleep(0.3)
msg = rgb_to_image(np.full((480, 640, 3), 77, np.uint8))
for _ in range(10):
    pub.publish(msg)
    time.sleep(0.05)
time.sleep(0.5)
print("SENT", pub.get_subscription_count(), flush=True)
"""


def test_camera_sized_images_cross_processes_with_the_shipped_profile(tmp_path):
    """10 of 10 best-effort 640x480 rgb8 images from one process to another (default transports: ~1 of 10)."""
    env = dict(os.environ, FASTDDS_DEFAULT_PROFILES_FILE=str(PROFILE), PYTHONPATH=os.pathsep.join(sys.path))
    env.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    sub = subprocess.Popen(
        [sys.executable, "-c", _SUBSCRIBER, "12"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
    )
    try:
        early = []
        while (line := sub.stdout.readline()) and line.strip() != "READY":
            early.append(line)  # Fast DDS or rclpy messages before the subscription exists
        assert line.strip() == "READY", f"subscriber did not start: {''.join(early)!r}"
        pub = subprocess.run(
            [sys.executable, "-c", _PUBLISHER], capture_output=True, text=True, env=env, timeout=30, cwd=tmp_path
        )
        assert pub.returncode == 0, pub.stderr
        out, _ = sub.communicate(timeout=20)
    finally:
        if sub.poll() is None:
            sub.kill()
            sub.wait()
    assert "GOT 10 [(640, 480, 921600)]" in out, f"subscriber: {out!r}, publisher: {pub.stdout!r} {pub.stderr!r}"
