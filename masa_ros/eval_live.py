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

import rclpy
import torch
import yaml
from builtin_interfaces.msg import Time
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image
from std_msgs.msg import Header
from tqdm import tqdm

from masa_core.config import PipelineConfig, config_to_dict
from masa_core.errors import MasaError
from masa_core.eval.degrade import Degradation
from masa_core.eval.given_boxes import (
    PIPELINE_TRACKERS,
    GivenBoxesResult,
    given_detections,
    given_frames,
    given_rows_of,
    run_name,
    score_results,
)
from masa_core.formats.mot import MotRows, read_mot
from masa_core.video_io import FrameSource
from masa_ros.demo import NODE as CHECKOUT_NODE
from masa_ros.demo import stop_process
from masa_ros.image_conversion import rgb_to_image
from masa_ros.msg import Detection, DetectionArray, TrackedObjectArray
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
        if tracker not in PIPELINE_TRACKERS or config is None:
            raise LiveError(f"the tracker node runs MASA; tracker {tracker!r} runs offline only (masa-eval)")
        tracker_config = dataclasses.replace(config.tracker, kind=tracker)
        if given_score_thr is not None and tracker_config.high_score_thr is None:  # the boxes' detector's threshold
            tracker_config = dataclasses.replace(tracker_config, high_score_thr=given_score_thr)
        config = dataclasses.replace(config, tracker=tracker_config)
        degradation = degradation or Degradation()
        results_file = Path(results_file)
        results_file.parent.mkdir(parents=True, exist_ok=True)
        stem = run_name(tracker, degradation, own_detector)
        config_file = results_file.with_name(f"{stem}_node_config.yaml")
        config_file.write_text(config_yaml(config))
        log = results_file.with_name(f"{stem}_node.log")
        gt = read_mot(gt_file, gt_filter=True)
        source = FrameSource(frames, max_frames)
        period = round(1e9 / source.fps)
        namespace = f"/masa_eval_{os.getpid()}_{next(_namespaces)}"
        command = [
            str(self.executable or node_executable()),
            "--ros-args",
            "-r", f"__ns:={namespace}",
            "-p", f"config_file:={config_file}",
            "-p", "process_all_frames:=true",
            "-p", f"given_detections:={'false' if own_detector else 'true'}",
            "-p", f"detections_wait:={min(self.frame_timeout, 60.0)}",
        ]  # fmt: skip
        # the node's torch uses as many threads as the offline Pipeline would in this process
        env = {**os.environ, "OMP_NUM_THREADS": str(torch.get_num_threads())}

        context = Context()
        rclpy.init(context=context)
        node = rclpy.create_node("masa_eval_live", namespace=namespace, context=context)
        executor = SingleThreadedExecutor(context=context)
        executor.add_node(node)
        received: dict[int, TrackedObjectArray] = {}
        tracks_sub = node.create_subscription(
            TrackedObjectArray,
            "tracks",
            lambda msg: received.__setitem__(stamp_ns(msg.header), msg),
            QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE),
        )
        image_pub = node.create_publisher(Image, "image", RELIABLE)
        det_pub = None if own_detector else node.create_publisher(DetectionArray, "detections_in", RELIABLE)
        rows: dict[int, MotRows] = {}
        given_rows: dict[int, MotRows] = {}
        lost: list[int] = []
        seconds = 0.0
        count = 0
        with log.open("w") as log_file:
            proc = subprocess.Popen(command, stdout=log_file, stderr=subprocess.STDOUT, env=env)
        try:
            pubs = [p for p in (image_pub, det_pub) if p is not None]

            def ready() -> bool:
                return tracks_sub.get_publisher_count() > 0 and all(p.get_subscription_count() > 0 for p in pubs)

            deadline = time.monotonic() + self.ready_timeout
            while not ready():
                if proc.poll() is not None:
                    raise LiveError(
                        f"the tracker node exited with code {proc.returncode} before it was ready; "
                        f"end of its log {log}:\n{_tail(log)}"
                    )
                if time.monotonic() > deadline:
                    raise LiveError(
                        f"the tracker node was not ready after {self.ready_timeout:.0f} s "
                        f"(no tracks publisher or unmatched topics); end of its log {log}:\n{_tail(log)}"
                    )
                executor.spin_once(timeout_sec=0.05)
            settle = time.monotonic() + SETTLE_S
            while time.monotonic() < settle:
                executor.spin_once(timeout_sec=0.05)

            bar = tqdm(total=len(source), unit="frame", desc=f"{sequence} {tracker} (node)", disable=not progress)
            boxes = read_mot(given_file) if given_file is not None else gt
            for index, frame, given in given_frames(source, boxes, degradation, own_detector):
                if len(given):
                    given_rows[index + 1] = given
                stamp = START_NS + index * period
                sec, nanosec = divmod(stamp, 1_000_000_000)
                header = Header(stamp=Time(sec=sec, nanosec=nanosec), frame_id="camera")
                image = rgb_to_image(frame, header)
                if det_pub is not None:
                    det_pub.publish(_detections(given, header))
                start = time.perf_counter()
                image_pub.publish(image)
                deadline = time.monotonic() + self.frame_timeout
                while stamp not in received and time.monotonic() < deadline and proc.poll() is None:
                    executor.spin_once(timeout_sec=0.01)
                msg = received.pop(stamp, None)
                if msg is not None:
                    seconds += time.perf_counter() - start
                    tracks = msg_to_tracks(msg)
                    out = MotRows.from_tracks(tracks) if own_detector else given_rows_of(given, tracks)
                    if len(out):
                        rows[index + 1] = out
                elif proc.poll() is not None:
                    raise LiveError(
                        f"the tracker node exited with code {proc.returncode} at frame {index + 1}; "
                        f"end of its log {log}:\n{_tail(log)}"
                    )
                else:
                    lost.append(index + 1)
                count += 1
                bar.update()
            bar.close()
        finally:
            stop_process(proc)
            executor.shutdown()
            node.destroy_node()
            rclpy.try_shutdown(context=context)

        scored_gt, metrics = score_results(rows, results_file, Path(gt_file), gt, count)
        return GivenBoxesResult(
            sequence,
            tracker,
            count,
            rows,
            results_file,
            metrics,
            seconds,
            degradation=degradation,
            given=given_rows,
            gt_file=scored_gt,
            own_detector=own_detector,
            lost_frames=lost,
        )
