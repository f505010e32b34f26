"""Regression tests of the hardened tracker node, over real DDS: runtime parameters reach their owner
and never end the node, config_file lies under the parameters, every parameter has a value, a
request rclpy cannot parse is counted instead of fatal, and oversize images are dropped before
they are decoded."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest
import rclpy
from rcl_interfaces.msg import Parameter as ParameterMsg
from rcl_interfaces.msg import ParameterType, ParameterValue
from rcl_interfaces.srv import GetParameters, ListParameters, SetParameters
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Image

from tests.ros_harness import EXECUTABLE, node_command, spin_until, start_node, stop_node
from tests.test_tracker_node import GT, Peer, encode, frame

pytestmark = pytest.mark.skipif(not EXECUTABLE.exists(), reason="run scripts/setup.sh: the ROS package is not built")
NAME = "masa_hardened"


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    """A node whose config_file sets the MASA tracker with match_score_thr 1.0: no similarity passes it."""
    tmp = tmp_path_factory.mktemp("hardening")
    config = tmp / "strict.yaml"
    config.write_text("tracker:\n  kind: masa\n  match_score_thr: 1.0\n")
    rclpy.init()
    params = {"given_detections": True, "process_all_frames": True, "diagnostics_period": 0.2}
    proc = start_node({**params, "config_file": str(config)}, tmp / "node.log", name=NAME)
    peer = Peer(service=f"/{NAME}/set_parameters")
    peer.wait_connected()
    yield peer, proc
    stop_node(proc)
    peer.node.destroy_node()
    rclpy.shutdown()


def call(peer: Peer, srv_type, name: str, request, timeout: float = 10):
    client = peer.node.create_client(srv_type, f"/{NAME}/{name}")
    assert client.wait_for_service(timeout_sec=10)
    future = client.call_async(request)
    spin_until(peer.node, future.done, timeout)
    peer.node.destroy_client(client)
    return future.result() if future.done() else None


def set_raw(peer: Peer, name: str, value: ParameterValue, timeout: float = 10):
    request = SetParameters.Request(parameters=[ParameterMsg(name=name, value=value)])
    response = call(peer, SetParameters, "set_parameters", request, timeout)
    return None if response is None else response.results[0]


def track_ids(peer: Peer, indices: list[int], stamp0: int) -> list[set[int]]:
    """Send frames of TUD-Campus with their gt boxes; the track IDs of each frame's output."""
    peer.tracks.clear()
    for k, i in enumerate(indices):
        image = encode(frame(i), "rgb8", stamp0 + k)
        peer.send(image, GT[i + 1].boxes)
    tracks = peer.wait_tracks(len(indices))
    return [{o.id for o in msg.objects} for msg in tracks]


def test_config_file_values_are_the_declared_defaults_and_every_parameter_has_a_value(node):
    peer, _ = node
    names = call(peer, ListParameters, "list_parameters", ListParameters.Request()).result.names
    values = call(peer, GetParameters, "get_parameters", GetParameters.Request(names=names)).values
    assert len(names) >= 44 and len(values) == len(names)  # one uninitialised parameter made this 0
    got = dict(zip(names, values, strict=True))
    assert got["tracker.match_score_thr"].double_value == 1.0  # from config_file, not the built-in 0.5
    assert got["detector.classes"].type == ParameterType.PARAMETER_STRING_ARRAY
    assert list(got["detector.classes"].string_array_value) == []


def test_a_parameter_equal_to_the_built_in_default_still_overrides_config_file(node):
    peer, proc = node
    strict = track_ids(peer, [40, 41], 3000)
    assert strict[0] and not strict[0] & strict[1]  # threshold 1.0: every frame starts new tracks
    ok, reason = peer.set_parameter("tracker.match_score_thr", 0.5)  # the built-in value
    assert ok, reason
    loose = track_ids(peer, [42, 43], 3100)
    assert len(loose[0] & loose[1]) >= 3  # the tracker runs the 0.5 that `ros2 param get` shows
    assert proc.poll() is None


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("publish_debug_image", ParameterValue(type=ParameterType.PARAMETER_BOOL, bool_value=True)),
        ("publish_instance_image", ParameterValue(type=ParameterType.PARAMETER_BOOL, bool_value=True)),
        ("detections_wait", ParameterValue(type=ParameterType.PARAMETER_DOUBLE, double_value=2.0)),
        ("max_image_pixels", ParameterValue(type=ParameterType.PARAMETER_INTEGER, integer_value=10**7)),
    ],
)
def test_node_parameters_change_at_runtime_without_ending_the_node(node, name, value):
    peer, proc = node
    result = set_raw(peer, name, value)
    assert result is not None and result.successful, result
    assert proc.poll() is None


def test_the_debug_image_follows_its_runtime_switch(node):
    peer, _ = node
    debug: list[Image] = []
    peer.node.create_subscription(Image, "debug_image", debug.append, qos_profile_sensor_data)
    result = set_raw(peer, "publish_debug_image", ParameterValue(type=ParameterType.PARAMETER_BOOL, bool_value=True))
    assert result is not None and result.successful
    spin_until(peer.node, lambda: False, 1.0)  # let the new subscription match
    track_ids(peer, [44], 3200)
    assert spin_until(peer.node, lambda: bool(debug), 10)


@pytest.mark.parametrize("name", ["", "no_such.parameter", "tracker"])
def test_unknown_names_are_rejected_with_a_reason(node, name):
    peer, proc = node
    result = set_raw(peer, name, ParameterValue(type=ParameterType.PARAMETER_DOUBLE, double_value=0.5))
    assert result is not None and not result.successful
    assert "unknown parameter" in result.reason or "undeclared" in result.reason, result.reason
    assert proc.poll() is None


def test_a_request_rclpy_cannot_parse_is_counted_and_the_node_keeps_serving(node):
    peer, proc = node
    before = int(peer.last_diagnostics()["callback errors"])
    # type 42 is outside the ParameterType enum: rclpy's service raises ValueError before any callback
    assert set_raw(peer, "tracker.match_score_thr", ParameterValue(type=42), timeout=2) is None
    assert spin_until(peer.node, lambda: int(peer.last_diagnostics()["callback errors"]) == before + 1, 10)
    assert proc.poll() is None
    ok, reason = peer.set_parameter("tracker.match_score_thr", 0.5)
    assert ok, reason
    assert track_ids(peer, [45], 3300)[0]


def test_an_oversize_image_is_dropped_before_decoding_and_counted(node):
    peer, proc = node
    before = int(peer.last_diagnostics()["dropped (oversize image)"])
    assert peer.set_parameter("max_image_pixels", 640 * 480 - 1)[0]
    peer.send(encode(frame(46), "rgb8", 3400), GT[47].boxes)
    assert spin_until(peer.node, lambda: int(peer.last_diagnostics()["dropped (oversize image)"]) == before + 1, 20)
    assert peer.set_parameter("max_image_pixels", 640 * 480)[0]
    assert track_ids(peer, [47], 3401)[0]
    assert accounted(peer.last_diagnostics())
    assert proc.poll() is None


def accounted(diag: dict[str, str]) -> bool:
    """Whether every image received is processed, dropped, failed, queued or in progress."""
    parts = [k for k in diag if k.startswith("dropped (")] + ["images processed", "errors", "images queued"]
    return sum(int(diag[k]) for k in parts) + int(diag["images in progress"]) == int(diag["images received"])


def refusal(parameters: dict[str, object]) -> subprocess.CompletedProcess:
    return subprocess.run(node_command(parameters), capture_output=True, text=True, timeout=120)


def test_a_binary_config_file_refuses_to_start_in_one_line(tmp_path):
    binary = tmp_path / "config.yaml"
    binary.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    out = refusal({"config_file": str(binary)})
    assert out.returncode == 2
    lines = [line for line in (out.stdout + out.stderr).splitlines() if line.strip()]
    assert len(lines) == 1 and "refusing to start" in lines[0] and "not a text" in lines[0]


def test_given_detector_without_a_readable_file_refuses_to_start(tmp_path):
    out = refusal({"detector.kind": "given", "detector.detections_file": str(tmp_path / "missing.txt")})
    assert out.returncode == 2 and "missing.txt" in out.stdout + out.stderr
