"""The tracker node scored like the offline Pipeline: the runs of ``masa-ros-eval --live``.

For each sequence a fresh tracker node is started through its installed executable (what ``ros2
run masa_ros tracker_node`` and the launch file start), in a namespace of its own, with the config
the offline path builds (written beside the results as ``<run>_node_config.yaml``; the shipped
``config/tracker.yaml`` is not used, its robot settings would override it), ``process_all_frames``
and, unless MASA runs its own detector, ``given_detections``. Once the node's ``tracks`` publisher
exists (it is created after the model is loaded) and every topic is matched, the frames go out as
``sensor_msgs/Image`` (rgb8) with their given boxes as a ``DetectionArray`` of the same stamp,
**in lockstep**: a frame is sent only when the previous frame's ``TrackedObjectArray`` came back
(or its ``frame_timeout`` passed). So the replay is lossless and deterministic whatever the load,
the node tracks exactly the frames the offline Pipeline tracks, in the same order, and its results
file equals the offline one (tests/test_eval_live.py). A frame whose tracks do not come back in
time is *lost*: it has no rows (its gt counts as missed) and is listed in ``GivenBoxesResult.lost_frames``
(``masa-eval``'s ``.json``, ``lost`` column, exit code 1).
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rclpy
import torch
import yaml
from builtin_interfaces.msg import Time
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image
from std_msgs.msg import Header

from masa_core.config import PipelineConfig, config_to_dict
from masa_core.errors import MasaError
from masa_core.eval.degrade import Degradation
from masa_core.eval.given_boxes import PIPELINE_TRACKERS, GivenBoxesResult, run_name, score_results
from masa_core.eval.loop import given_detections, rows_of_tracks, run_frames
from masa_core.formats.mot import MotRows, read_mot
from masa_core.video_io import FrameSource
from masa_ros.image_conversion import rgb_to_image
from masa_ros.msg import Detection, DetectionArray, TrackedObjectArray
from masa_ros.tools.processes import NODE as CHECKOUT_NODE
from masa_ros.tools.processes import stop_process
from masa_ros.track_messages import msg_to_tracks, stamp_ns

START_NS = 1_000_000_000_000  # stamp of frame 1 (1000 s); frame i is START_NS + (i - 1) / fps
SETTLE_S = 1.0  # after our side sees every endpoint matched, the node's side catches up
RELIABLE = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
_namespaces = itertools.count()


class LiveError(MasaError, RuntimeError):
    """The tracker node could not be started, did not get ready, or died during a run."""


def node_executable() -> Path:
    """The installed ``tracker_node``: through the ament index (``install/setup.bash`` puts the colcon
    install on ``AMENT_PREFIX_PATH``, as ``ros2 run`` finds it), else this checkout's ``install/``."""
    try:
        from ament_index_python.packages import PackageNotFoundError, get_package_prefix

        exe = Path(get_package_prefix("masa_ros")) / "lib" / "masa_ros" / "tracker_node"
        if exe.is_file():
            return exe
    except (ImportError, PackageNotFoundError):
        pass
    if not CHECKOUT_NODE.is_file():
        raise LiveError(f"tracker_node is not built ({CHECKOUT_NODE} missing): run scripts/setup.sh")
    return CHECKOUT_NODE


def config_yaml(config: PipelineConfig) -> str:
    """``config`` as a masa_core YAML file: the keys that differ from the built-in defaults, which
    ``load_config`` lays them over (the node's ``config_file``)."""
    defaults = config_to_dict(PipelineConfig())
    changed = {
        section: {k: v for k, v in values.items() if v != defaults[section][k]}
        for section, values in config_to_dict(config).items()
    }
    return yaml.safe_dump({s: v for s, v in changed.items() if v}, sort_keys=False)


def _tail(log: Path, lines: int = 5) -> str:
    text = log.read_text(errors="replace").strip().splitlines() if log.is_file() else []
    return "\n".join(text[-lines:]) or "(empty)"


def _detections(given: MotRows, header: Header) -> DetectionArray:
    """The boxes given to every tracker (score 1, class unknown → 0 on the node, as offline)."""
    dets = given_detections(given)
    msg = DetectionArray(header=header)
    for box, score in zip(dets.boxes, dets.scores, strict=True):
        msg.detections.append(Detection(box=[float(v) for v in box], score=float(score), class_id=-1, label=""))
    return msg


@dataclass(frozen=True)
class LiveNode:
    """The ``track`` function of :func:`masa_core.cli.eval.run` for the tracker node (tracker ``masa``).

    frame_timeout: seconds to wait for one frame's tracks before counting it lost. ready_timeout:
    seconds for the node to load its model and match the topics. executable: the node's executable
    (default: :func:`node_executable`).
    """

    frame_timeout: float = 60.0
    ready_timeout: float = 300.0
    executable: Path | None = None

    def __call__(
        self,
        frames: Path,
        gt_file: Path,
        tracker: str,
        *,
        config: PipelineConfig | None,
        results_file: Path,
        sequence: str,
        max_frames: int | None = None,
        progress: bool = False,
        degradation: Degradation | None = None,
        own_detector: bool = False,
        given_file: Path | None = None,
        given_score_thr: float | None = None,
    ) -> GivenBoxesResult:
        config = node_config(tracker, config, given_score_thr)
        degradation = degradation or Degradation()
        results_file = Path(results_file)
        results_file.parent.mkdir(parents=True, exist_ok=True)
        stem = run_name(tracker, degradation, own_detector)
        config_file = results_file.with_name(f"{stem}_node_config.yaml")
        config_file.write_text(config_yaml(config))
        gt = read_mot(gt_file, gt_filter=True)
        source = FrameSource(frames, max_frames)
        namespace = f"/masa_eval_{os.getpid()}_{next(_namespaces)}"
        command = self.command(namespace, config_file, own_detector)
        log = results_file.with_name(f"{stem}_node.log")
        with NodeSession(command, namespace, log, own_detector, source.fps, self.frame_timeout) as session:
            session.wait_ready(self.ready_timeout)
            boxes = read_mot(given_file) if given_file is not None else gt
            label = f"{sequence} {tracker} (node)" if progress else None
            run = run_frames(session, source, boxes, degradation, own_detector, label)
        scored_gt, metrics = score_results(run.rows, results_file, Path(gt_file), gt, run.frames)
        return GivenBoxesResult(
            sequence, tracker, run.frames, run.rows, results_file, metrics, run.seconds,
            degradation=degradation, given=run.given, gt_file=scored_gt, own_detector=own_detector,
            lost_frames=run.lost,
        )  # fmt: skip

    def command(self, namespace: str, config_file: Path, own_detector: bool) -> list[str]:
        """The node's command line: its own namespace, ``config_file``, every frame processed."""
        return [
            str(self.executable or node_executable()),
            "--ros-args",
            "-r", f"__ns:={namespace}",
            "-p", f"config_file:={config_file}",
            "-p", "process_all_frames:=true",
            "-p", f"given_detections:={'false' if own_detector else 'true'}",
            "-p", f"detections_wait:={min(self.frame_timeout, 60.0)}",
        ]  # fmt: skip


def node_config(tracker: str, config: PipelineConfig | None, given_score_thr: float | None) -> PipelineConfig:
    """The pipeline config the node runs: tracker kind ``tracker``, and the given boxes' detector
    threshold as the high-score threshold where the config leaves that null."""
    if tracker not in PIPELINE_TRACKERS or config is None:
        raise LiveError(f"the tracker node runs MASA; tracker {tracker!r} runs offline only (masa-eval)")
    tracker_config = dataclasses.replace(config.tracker, kind=tracker)
    if given_score_thr is not None and tracker_config.high_score_thr is None:
        tracker_config = dataclasses.replace(tracker_config, high_score_thr=given_score_thr)
    return dataclasses.replace(config, tracker=tracker_config)


class NodeSession:
    """A tracker node process and this side's ROS endpoints; in a ``with`` block it is a
    :class:`masa_core.eval.loop.FrameTracker` that sends one frame (and its given boxes) and waits,
    in lockstep, for that frame's tracks."""

    def __init__(
        self, command: list[str], namespace: str, log: Path, own_detector: bool, fps: float, frame_timeout: float
    ) -> None:
        self.command, self.namespace, self.log = command, namespace, log
        self.own_detector, self.period, self.frame_timeout = own_detector, round(1e9 / fps), frame_timeout
        self.received: dict[int, TrackedObjectArray] = {}

    def __enter__(self) -> NodeSession:
        self.context = Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node("masa_eval_live", namespace=self.namespace, context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        reliable_100 = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
        self.tracks_sub = self.node.create_subscription(
            TrackedObjectArray, "tracks", lambda msg: self.received.__setitem__(stamp_ns(msg.header), msg), reliable_100
        )
        self.image_pub = self.node.create_publisher(Image, "image", RELIABLE)
        self.det_pub = (
            None if self.own_detector else self.node.create_publisher(DetectionArray, "detections_in", RELIABLE)
        )
        # the node's torch uses as many threads as the offline Pipeline would in this process
        env = {**os.environ, "OMP_NUM_THREADS": str(torch.get_num_threads())}
        with self.log.open("w") as log_file:
            self.proc = subprocess.Popen(self.command, stdout=log_file, stderr=subprocess.STDOUT, env=env)
        return self

    def __exit__(self, *exc: object) -> None:
        stop_process(self.proc)
        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)

    def _died(self, when: str) -> LiveError:
        return LiveError(
            f"the tracker node exited with code {self.proc.returncode} {when}; end of its log {self.log}:\n"
            f"{_tail(self.log)}"
        )

    def wait_ready(self, timeout: float) -> None:
        """Wait until the node publishes tracks and every topic is matched, then let it settle."""
        pubs = [p for p in (self.image_pub, self.det_pub) if p is not None]
        deadline = time.monotonic() + timeout
        while not (self.tracks_sub.get_publisher_count() > 0 and all(p.get_subscription_count() > 0 for p in pubs)):
            if self.proc.poll() is not None:
                raise self._died("before it was ready")
            if time.monotonic() > deadline:
                raise LiveError(
                    f"the tracker node was not ready after {timeout:.0f} s "
                    f"(no tracks publisher or unmatched topics); end of its log {self.log}:\n{_tail(self.log)}"
                )
            self.executor.spin_once(timeout_sec=0.05)
        settle = time.monotonic() + SETTLE_S
        while time.monotonic() < settle:
            self.executor.spin_once(timeout_sec=0.05)

    def __call__(self, frame: np.ndarray, given: MotRows, index: int) -> MotRows | None:
        stamp = START_NS + index * self.period
        sec, nanosec = divmod(stamp, 1_000_000_000)
        header = Header(stamp=Time(sec=sec, nanosec=nanosec), frame_id="camera")
        image = rgb_to_image(frame, header)
        if self.det_pub is not None:
            self.det_pub.publish(_detections(given, header))
        self.image_pub.publish(image)
        deadline = time.monotonic() + self.frame_timeout
        while stamp not in self.received and time.monotonic() < deadline and self.proc.poll() is None:
            self.executor.spin_once(timeout_sec=0.01)
        msg = self.received.pop(stamp, None)
        if msg is not None:
            return rows_of_tracks(given, msg_to_tracks(msg), self.own_detector)
        if self.proc.poll() is not None:
            raise self._died(f"at frame {index + 1}")
        return None
