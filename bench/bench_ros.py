"""End-to-end cost of the ROS edge: the tracker node over real DDS against calling the Pipeline
directly, on the same frames with the same config, in one run.

    python bench/bench_ros.py [--frames 20] [--input-size 128]

Latency: one image at a time, from publish to the TrackedObjectArray arriving back (a camera at
a low rate). Throughput: all images published at once with process_all_frames (a replay).
Boxes are given (ground truth) so both paths do identical work.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import rclpy
import torch
from builtin_interfaces.msg import Time
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image
from std_msgs.msg import Header

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from masa_core import Detections, Pipeline, load_config  # noqa: E402
from masa_core.formats.mot import read_mot  # noqa: E402
from masa_ros.image_conversion import rgb_to_image  # noqa: E402
from masa_ros.msg import Detection, DetectionArray, TrackedObjectArray  # noqa: E402
from tests.ros_harness import spin_until, start_node, stop_node  # noqa: E402

VIDEO = REPO / "data/mot15/TUD-Campus/TUD-Campus.mp4"
GT = REPO / "data/mot15/TUD-Campus/gt/gt.txt"


def load(n: int) -> tuple[list[np.ndarray], list[Detections]]:
    cap = cv2.VideoCapture(str(VIDEO))
    frames = [cv2.cvtColor(cap.read()[1], cv2.COLOR_BGR2RGB) for _ in range(n)]
    gt = read_mot(GT, gt_filter=True)
    return frames, [Detections(gt[i + 1].boxes, np.ones(len(gt[i + 1]), np.float32)) for i in range(n)]


def direct(frames: list[np.ndarray], dets: list[Detections], input_size: int) -> list[float]:
    pipe = Pipeline(load_config(overrides={"model": {"input_size": input_size, "device": "cpu"}}))
    pipe.process(frames[0], dets[0])  # warm-up
    pipe.reset()
    times = []
    for f, d in zip(frames, dets, strict=True):
        t = time.perf_counter()
        pipe.process(f, d)
        times.append(time.perf_counter() - t)
    return times


def through_node(frames: list[np.ndarray], dets: list[Detections], input_size: int) -> tuple[list[float], float]:
    rclpy.init()
    peer = rclpy.create_node("bench_ros_peer")
    qos = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
    img_pub = peer.create_publisher(Image, "image", qos)
    det_pub = peer.create_publisher(DetectionArray, "detections_in", qos)
    got: dict[int, float] = {}
    peer.create_subscription(
        TrackedObjectArray, "tracks", lambda m: got.setdefault(m.header.stamp.sec, time.perf_counter()), qos
    )
    params = {
        "given_detections": True,
        "process_all_frames": True,
        "queue_size": 1000,
        "model.input_size": input_size,
        "model.device": "cpu",
    }
    node = start_node(params, Path(tempfile.mkdtemp()) / "node.log", name="masa_tracker")
    try:
        assert spin_until(peer, lambda: img_pub.get_subscription_count() > 0, 120), "node did not start"

        def send(i: int, f: np.ndarray, d: Detections) -> None:
            header = Header(stamp=Time(sec=i, nanosec=0), frame_id="cam")
            msg = DetectionArray(header=header)
            msg.detections = [Detection(box=[float(v) for v in b], score=1.0, class_id=-1) for b in d.boxes]
            det_pub.publish(msg)
            img_pub.publish(rgb_to_image(f, header))

        send(0, frames[0], dets[0])  # warm-up frame
        assert spin_until(peer, lambda: 0 in got, 120)
        latency = []
        for i, (f, d) in enumerate(zip(frames, dets, strict=True), start=1):
            t = time.perf_counter()
            send(i, f, d)
            assert spin_until(peer, lambda i=i: i in got, 120)
            latency.append(got[i] - t)
        start = time.perf_counter()
        base = len(frames) + 1
        for i, (f, d) in enumerate(zip(frames, dets, strict=True), start=base):
            send(i, f, d)
        assert spin_until(peer, lambda: all(k in got for k in range(base, base + len(frames))), 600)
        throughput = len(frames) / (max(got[k] for k in range(base, base + len(frames))) - start)
    finally:
        stop_node(node)
        peer.destroy_node()
        rclpy.shutdown()
    return latency, throughput


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--frames", type=int, default=20)
    p.add_argument("--input-size", type=int, default=128)
    args = p.parse_args()
    torch.set_num_threads(1)
    frames, dets = load(args.frames)
    d = direct(frames, dets, args.input_size)
    lat, fps = through_node(frames, dets, args.input_size)
    dm, lm = statistics.median(d), statistics.median(lat)
    print(f"{args.frames} TUD-Campus frames (640x480 rgb8), GT boxes given, model input {args.input_size} px, CPU\n")
    print("| path | median ms/frame | frames/s |")
    print("|---|---:|---:|")
    print(f"| Pipeline.process (direct) | {1000 * dm:.1f} | {1 / statistics.mean(d):.2f} |")
    print(f"| node over DDS, one at a time (latency) | {1000 * lm:.1f} | {1 / statistics.mean(lat):.2f} |")
    print(f"| node over DDS, all at once (throughput) | | {fps:.2f} |")
    print(f"\nlatency ratio node/direct: {lm / dm:.2f}; throughput ratio node/direct: {fps * statistics.mean(d):.2f}")


if __name__ == "__main__":
    main()
