"""masa-ros-replay → tracker node → masa-ros-record, each its own process over real DDS; bags are
compared after decoding, never as raw bytes."""

from __future__ import annotations

import subprocess
import sys

import cv2
import numpy as np
import pytest
import rclpy
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image

from masa_core.config import load_config
from masa_core.pipeline import Pipeline
from masa_ros.image_conversion import image_to_rgb
from masa_ros.msg import TrackedObjectArray
from masa_ros.tools.bag_io import open_writer, read_tracks, typestore
from tests.paths import TUD_CAMPUS_VIDEO
from tests.ros_harness import EXECUTABLE, TEST_PARAMETERS, spin_until, start_node, stop_node

pytestmark = pytest.mark.skipif(not EXECUTABLE.exists(), reason="run scripts/setup.sh: the ROS package is not built")
RELIABLE = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)
NODE_AS_CONFIG: dict[str, dict[str, object]] = {}
for _name, _value in TEST_PARAMETERS.items():
    _section, _key = _name.split(".", 1)
    NODE_AS_CONFIG.setdefault(_section, {})[_key] = _value


def tool(name: str, *args: str) -> list[str]:
    return [sys.executable, "-m", f"masa_ros.tools.{name}", *args]


@pytest.fixture()
def ros():
    rclpy.init()
    node = rclpy.create_node("replay_record_test")
    yield node
    node.destroy_node()
    rclpy.shutdown()


def test_replayed_video_tracked_and_recorded_matches_what_subscribers_saw_and_the_offline_pipeline(ros, tmp_path):
    live: list[TrackedObjectArray] = []
    ros.create_subscription(TrackedObjectArray, "tracks", live.append, RELIABLE)
    node = start_node(
        {"process_all_frames": True, "detector.classes": "[Person]"}, tmp_path / "node.log", name="masa_tracker"
    )
    bag = tmp_path / "bag"
    record = subprocess.Popen(tool("record", str(bag), "--count", "4", "--quiet"))
    try:
        # the recorder must be listening before the first tracks go out (volatile QoS keeps no history):
        # wait for the node's tracks publisher (created once its model is loaded) and both subscribers,
        # then give discovery a moment to match them, so no early message is lost under load
        assert spin_until(
            ros, lambda: ros.count_subscribers("tracks") >= 2 and ros.count_publishers("tracks") >= 1, 120
        )
        spin_until(ros, lambda: False, 2.0)
        replay = subprocess.run(
            tool(
                "replay",
                str(TUD_CAMPUS_VIDEO),
                "--max-frames",
                "4",
                "--rate",
                "0",
                "--start-stamp",
                "1000",
                "--wait",
                "60",
                "--frame-id",
                "cam",
            ),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert replay.returncode == 0, replay.stderr
        assert "published 4 images" in replay.stdout
        assert spin_until(ros, lambda: len(live) >= 4 and record.poll() is not None, 120)
    finally:
        stop_node(node)
        if record.poll() is None:
            record.terminate()
    recorded = read_tracks(bag)
    assert [(m.header.stamp.sec, m.header.stamp.nanosec) for m in recorded] == [
        (1000, i * 40_000_000) for i in range(4)
    ]
    assert all(m.header.frame_id == "cam" and (m.image_width, m.image_height) == (640, 480) for m in recorded)
    assert sum(len(m.objects) for m in recorded) >= 8  # people found by the default detector
    for bag_msg, live_msg in zip(recorded, live, strict=True):
        assert bag_msg.header.stamp.nanosec == live_msg.header.stamp.nanosec
        assert [(o.id, o.label, o.age) for o in bag_msg.objects] == [(o.id, o.label, o.age) for o in live_msg.objects]
        for a, b in zip(bag_msg.objects, live_msg.objects, strict=True):
            np.testing.assert_allclose(a.box, b.box)
            assert a.score == pytest.approx(b.score) and a.match_score == pytest.approx(b.match_score)
    # The live node over DDS gives what the offline Pipeline gives on the same frames and settings.
    offline = Pipeline(load_config(overrides={**NODE_AS_CONFIG, "detector": {"classes": ["Person"]}}))
    for frame, bag_msg in zip(_frames(4), recorded, strict=True):
        tracks = offline.process(frame).tracks
        assert [t.id for t in tracks] == [o.id for o in bag_msg.objects]
        np.testing.assert_allclose([t.box for t in tracks], [o.box for o in bag_msg.objects], atol=1e-3)


def _frames(n: int) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(TUD_CAMPUS_VIDEO))
    out = [cv2.cvtColor(cap.read()[1], cv2.COLOR_BGR2RGB) for _ in range(n)]
    cap.release()
    return out


@pytest.mark.parametrize("storage", ["sqlite3", "mcap"])
def test_bag_images_are_replayed_with_headers_and_pixels_intact(ros, tmp_path, storage):
    frames = _frames(3)
    store = typestore()
    Img, Hdr, Stamp = (
        store.types[t] for t in ("sensor_msgs/msg/Image", "std_msgs/msg/Header", "builtin_interfaces/msg/Time")
    )
    bag = tmp_path / "camera_bag"
    with open_writer(bag, storage) as writer:
        conn = writer.add_connection("/camera/image_raw", "sensor_msgs/msg/Image", typestore=store)
        for i, f in enumerate(frames):
            msg = Img(
                header=Hdr(stamp=Stamp(sec=7, nanosec=i * 1000), frame_id="cam"),
                height=480,
                width=640,
                encoding="rgb8",
                is_bigendian=0,
                step=1920,
                data=f.reshape(-1),
            )
            writer.write(conn, 7_000_000_000 + i * 1000, store.serialize_cdr(msg, "sensor_msgs/msg/Image"))
    got: list[Image] = []
    ros.create_subscription(Image, "replayed", got.append, RELIABLE)
    replay = subprocess.Popen(tool("replay", str(bag), "--topic", "replayed", "--wait", "30", "--rate", "0"))
    assert spin_until(ros, lambda: len(got) == 3, 60)
    assert replay.wait(timeout=30) == 0
    for i, (msg, frame) in enumerate(zip(got, frames, strict=True)):
        assert (msg.header.stamp.sec, msg.header.stamp.nanosec, msg.header.frame_id) == (7, i * 1000, "cam")
        np.testing.assert_array_equal(image_to_rgb(msg), frame)


def test_corrupt_or_unsuitable_bags_are_clear_errors(tmp_path):
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "metadata.yaml").write_text("this: [is not rosbag2 metadata\n")
    out = subprocess.run(tool("replay", str(broken), "--wait", "0"), capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "cannot read bag" in out.stderr
    store = typestore()
    no_images = tmp_path / "no_images"
    with open_writer(no_images, "mcap") as writer:
        conn = writer.add_connection("/chatter", "std_msgs/msg/Header", typestore=store)
        writer.write(
            conn,
            1,
            store.serialize_cdr(
                store.types["std_msgs/msg/Header"](
                    stamp=store.types["builtin_interfaces/msg/Time"](sec=1, nanosec=0), frame_id="x"
                ),
                "std_msgs/msg/Header",
            ),
        )
    out = subprocess.run(tool("replay", str(no_images), "--wait", "0"), capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "has no" in out.stderr and "/chatter" in out.stderr


def test_recording_into_an_existing_folder_is_refused(tmp_path):
    out = subprocess.run(tool("record", str(tmp_path)), capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "already exists" in out.stderr


def test_unreadable_video_replay_is_a_clear_error(tmp_path):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"nope" * 100)
    out = subprocess.run(tool("replay", str(bad), "--wait", "0"), capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "cannot read video" in out.stderr
