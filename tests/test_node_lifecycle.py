"""The tracker node's managed lifecycle over real DDS: a node started with ``autostart:=false`` and a
bad parameter fails ``configure`` and stays up; the parameter, fixed through the parameter service,
lets a second ``configure`` succeed; ``activate`` turns frames into tracks, ``deactivate`` stops the
output, ``cleanup`` returns to unconfigured and ``shutdown`` ends the process."""

from __future__ import annotations

import pytest
import rclpy
from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import ChangeState, GetState

from tests.ros_harness import EXECUTABLE, spin_until, start_node, stop_node
from tests.test_tracker_node import GT, Peer, encode, frame

pytestmark = pytest.mark.skipif(not EXECUTABLE.exists(), reason="run scripts/setup.sh: the ROS package is not built")
NAME = "masa_managed"


class Manager:
    """The test's lifecycle manager: ChangeState and GetState clients of the node."""

    def __init__(self, peer: Peer) -> None:
        self.peer = peer
        self.change = peer.node.create_client(ChangeState, f"/{NAME}/change_state")
        self.get = peer.node.create_client(GetState, f"/{NAME}/get_state")
        assert self.change.wait_for_service(timeout_sec=60) and self.get.wait_for_service(timeout_sec=10)

    def _call(self, client, request, timeout: float = 120):
        future = client.call_async(request)
        assert spin_until(self.peer.node, future.done, timeout), "no answer from the node"
        return future.result()

    def transition(self, transition_id: int) -> bool:
        return self._call(self.change, ChangeState.Request(transition=Transition(id=transition_id))).success

    def state(self) -> str:
        return self._call(self.get, GetState.Request()).current_state.label


@pytest.fixture(scope="module")
def managed(tmp_path_factory):
    """A node with autostart false and an input size the model refuses (not a multiple of 32)."""
    log = tmp_path_factory.mktemp("lifecycle") / "node.log"
    rclpy.init()
    params = {"autostart": False, "model.input_size": 100, "given_detections": True, "process_all_frames": True}
    proc = start_node({**params, "diagnostics_period": 0.2}, log, name=NAME)
    peer = Peer(service=f"/{NAME}/set_parameters")
    manager = Manager(peer)
    yield manager, proc, log
    stop_node(proc)
    peer.node.destroy_node()
    rclpy.shutdown()


def send_frames(peer: Peer, indices: range, stamp0: int) -> None:
    for k, index in enumerate(indices):
        peer.send(encode(frame(index), "rgb8", stamp0 + k), GT[index + 1].boxes)


def test_a_bad_parameter_fails_configure_and_the_node_stays_up(managed):
    manager, proc, log = managed
    assert manager.state() == "unconfigured"
    assert not manager.transition(Transition.TRANSITION_CONFIGURE)
    assert manager.state() == "unconfigured" and proc.poll() is None
    failures = [line for line in log.read_text().splitlines() if "configure failed" in line]
    assert len(failures) == 1 and "model.input_size" in failures[0]
    assert manager.peer.images.get_subscription_count() == 0  # no topics before a configure succeeds


def test_the_fixed_parameter_configures_and_inactive_drops_frames(managed):
    manager, _, _ = managed
    peer = manager.peer
    assert peer.set_parameter("model.input_size", 128) == (True, "")
    assert manager.transition(Transition.TRANSITION_CONFIGURE)
    assert manager.state() == "inactive"
    peer.wait_connected()
    send_frames(peer, range(0, 3), 100)
    assert spin_until(peer.node, lambda: int(peer.last_diagnostics()["dropped (inactive)"]) == 3, 20)
    assert peer.diagnostics[-1].status[0].message == "inactive"
    assert peer.tracks == []
    ok, reason = peer.set_parameter("model.input_size", 256)  # it built the model: fixed while configured
    assert not ok and "read-only" in reason


def test_activate_turns_frames_into_tracks(managed):
    manager, _, _ = managed
    peer = manager.peer
    assert manager.transition(Transition.TRANSITION_ACTIVATE)
    assert manager.state() == "active"
    assert peer.set_parameter("tracker.match_score_thr", 0.6)[0]  # runtime parameters still work
    send_frames(peer, range(10, 13), 200)
    tracks = peer.wait_tracks(3)
    assert [len(msg.objects) for msg in tracks] == [len(GT[i]) for i in range(11, 14)]
    assert len({o.id for o in tracks[-1].objects}) == len(GT[13])


def test_deactivate_stops_processing_and_publishing(managed):
    manager, _, _ = managed
    peer = manager.peer
    assert manager.transition(Transition.TRANSITION_DEACTIVATE)
    assert manager.state() == "inactive"
    diag = peer.last_diagnostics()
    before, processed = int(diag["dropped (inactive)"]), int(diag["images processed"])
    peer.tracks.clear()
    send_frames(peer, range(20, 23), 300)
    assert spin_until(peer.node, lambda: int(peer.last_diagnostics()["dropped (inactive)"]) == before + 3, 20)
    assert not spin_until(peer.node, lambda: bool(peer.tracks), 2)
    assert int(peer.last_diagnostics()["images processed"]) == processed


def test_cleanup_unconfigures_and_shutdown_ends_the_process(managed):
    manager, proc, _ = managed
    peer = manager.peer
    assert manager.transition(Transition.TRANSITION_CLEANUP)
    assert manager.state() == "unconfigured"
    assert spin_until(peer.node, lambda: peer.images.get_subscription_count() == 0, 20)  # topics are gone
    assert peer.set_parameter("model.input_size", 96)[0]  # unconfigured: may change again
    assert manager.transition(Transition.TRANSITION_UNCONFIGURED_SHUTDOWN)
    assert proc.wait(timeout=30) == 0
