"""The node as a robot runs it: compressed camera images at sensor-data QoS, its own detector, the
newest image winning (stale ones dropped and counted), and the debug overlay for RViz."""

from __future__ import annotations

import time

import cv2
import numpy as np
import pytest
import rclpy
from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Header

from masa_core.segmentation.box_prompt import box_window
from masa_ros.image_conversion import image_to_mask, image_to_rgb
from masa_ros.msg import TrackedObjectArray
from tests.paths import TUD_CAMPUS_VIDEO
from tests.ros_harness import EXECUTABLE, spin_until, start_node, stop_node

pytestmark = pytest.mark.skipif(not EXECUTABLE.exists(), reason="run scripts/setup.sh: the ROS package is not built")


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    rclpy.init()
    params = {
        "compressed": True,
        "publish_debug_image": True,
        "detector.classes": "[Person]",
        "diagnostics_period": 0.2,
        "masks.enabled": True,
        "publish_instance_image": True,
    }
    proc = start_node(params, tmp_path_factory.mktemp("node") / "node.log")
    peer = rclpy.create_node("masa_modes_peer")
    got = {"tracks": [], "debug": [], "diag": [], "ids": []}
    pub = peer.create_publisher(CompressedImage, "image/compressed", qos_profile_sensor_data)
    peer.create_subscription(TrackedObjectArray, "tracks", got["tracks"].append, 50)
    peer.create_subscription(Image, "debug_image", got["debug"].append, qos_profile_sensor_data)
    peer.create_subscription(DiagnosticArray, "/diagnostics", got["diag"].append, 50)
    peer.create_subscription(Image, "instance_ids", got["ids"].append, qos_profile_sensor_data)
    assert spin_until(peer, lambda: pub.get_subscription_count() > 0, 60)
    yield peer, pub, got, proc
    stop_node(proc)
    peer.destroy_node()
    rclpy.shutdown()


def jpeg(index: int) -> CompressedImage:
    cap = cv2.VideoCapture(str(TUD_CAMPUS_VIDEO))
    cap.set(cv2.CAP_PROP_POS_FRAMES, index)
    bgr = cap.read()[1]
    cap.release()
    ok, data = cv2.imencode(".jpg", bgr)
    assert ok
    return CompressedImage(header=Header(stamp=Time(sec=index), frame_id="cam"), format="jpeg", data=data.tobytes())


def publish_until(peer, pub, msg, condition, timeout: float = 60) -> bool:
    """Publish ``msg`` every half second until ``condition()`` holds, as a camera keeps streaming:
    best-effort delivery may lose a sample, in particular right after discovery."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pub.publish(msg)
        if spin_until(peer, condition, 0.5):
            return True
    return False


def diagnostics(peer, got) -> dict[str, str]:
    got["diag"].clear()
    assert spin_until(peer, lambda: bool(got["diag"]), 10)
    return {kv.key: kv.value for kv in got["diag"][-1].status[0].values}


def test_compressed_images_are_tracked_with_masks_and_drawn(setup):
    peer, pub, got, _ = setup
    assert publish_until(peer, pub, jpeg(5), lambda: bool(got["tracks"] and got["debug"] and got["ids"])), {
        k: len(v) for k, v in got.items()
    }
    tracks = got["tracks"][-1]
    assert tracks.header.stamp.sec == 5 and len(tracks.objects) >= 3
    assert all(o.label == "Person" for o in tracks.objects)
    for obj in tracks.objects:  # mono8 masks cropped to the box window
        x1, y1, x2, y2 = box_window(obj.box, 480, 640)
        assert (obj.mask.encoding, obj.mask.width, obj.mask.height) == ("mono8", x2 - x1, y2 - y1)
    # at the tests' 128-pixel model input some small people get empty masks; most do not
    assert np.mean([image_to_mask(o.mask).mean() > 0.1 for o in tracks.objects]) >= 0.5
    ids = np.frombuffer(bytes(got["ids"][-1].data), "<u2").reshape(480, 640)
    assert got["ids"][-1].encoding == "mono16"
    assert set(np.unique(ids)) - {0} <= {o.id + 1 for o in tracks.objects} and ids.any()
    overlay = image_to_rgb(got["debug"][-1])
    assert overlay.shape == (480, 640, 3) and got["debug"][-1].header.stamp.sec == 5


def test_newest_image_wins_and_stale_ones_are_counted(setup):
    peer, pub, got, proc = setup
    before = diagnostics(peer, got)
    frames = [jpeg(10 + i) for i in range(8)]
    for msg in frames:
        pub.publish(msg)
    counts = {}

    def settled() -> bool:  # every image that arrived is processed or dropped, none in flight
        after = diagnostics(peer, got)
        for key in ("images received", "images processed", "dropped (stale)"):
            counts[key] = int(after[key]) - int(before[key])
        received = counts["images received"]
        return received >= 1 and counts["images processed"] + counts["dropped (stale)"] == received

    assert spin_until(peer, settled, 60), counts
    # sensor-data QoS keeps only the newest few in the middleware too, so some may never arrive
    assert counts["images received"] <= 8
    assert counts["images processed"] < 8  # the worker skipped stale images instead of queueing them
    assert proc.poll() is None


def test_undecodable_compressed_image_is_dropped_and_counted(setup):
    peer, pub, got, proc = setup
    before = int(diagnostics(peer, got)["dropped (invalid image)"])
    bad = CompressedImage(header=Header(stamp=Time(sec=99)), format="jpeg", data=b"\xff\xd8 not a jpeg")
    assert publish_until(peer, pub, bad, lambda: int(diagnostics(peer, got)["dropped (invalid image)"]) > before)
    assert publish_until(peer, pub, jpeg(30), lambda: any(t.header.stamp.sec == 30 for t in got["tracks"]))
    assert proc.poll() is None and np.isfinite([o.score for o in got["tracks"][-1].objects]).all()
