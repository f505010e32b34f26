"""Several cameras: one tracker node with N cameras against N single-camera nodes, on the same frames,
in one run (N = 1, 2, 4 by default).

    python bench/bench_cameras.py [--frames 20] [--cameras 1 2 4] [--input-size 0] [--backend auto]

The cameras are triggered together (a synchronised rig): frame i goes to every camera at once
(ground-truth boxes given, so no detector runs and both setups do identical work), and the next one
once every camera's tracks for it came back. Throughput: frames tracked per second, all cameras
together. Latency: per camera, from publishing the image to receiving its tracks (median). Memory: PSS
(``/proc/<pid>/smaps_rollup``: shared pages split between the processes that share them) summed over
the node processes, after the run. ``--max-batch`` sets the node's ``max_batch`` (most images per
backbone and adapter call). Model: the CPU default (``model.*`` auto: masa_mnv2_lite, 512 px,
OpenVINO) unless told otherwise.
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
from builtin_interfaces.msg import Time
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image
from std_msgs.msg import Header

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from masa_core.formats.mot import read_mot  # noqa: E402
from masa_ros.image_conversion import rgb_to_image  # noqa: E402
from masa_ros.msg import Detection, DetectionArray, TrackedObjectArray  # noqa: E402
from tests.paths import TUD_CAMPUS_GT, TUD_CAMPUS_VIDEO  # noqa: E402
from tests.ros_harness import spin_until, start_node, stop_node  # noqa: E402

QOS = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
WARM_UP = 3  # frames per camera before the measured ones


def load(n: int) -> list[tuple[np.ndarray, list[Detection]]]:
    """The first ``n`` TUD-Campus frames (RGB) with their ground-truth boxes as detections."""
    cap = cv2.VideoCapture(str(TUD_CAMPUS_VIDEO))
    gt = read_mot(TUD_CAMPUS_GT, gt_filter=True)
    out = []
    for i in range(n):
        ok, bgr = cap.read()
        if not ok:
            raise SystemExit(f"bench_cameras: TUD-Campus has fewer than {n} frames")
        dets = [Detection(box=[float(v) for v in b], score=1.0, class_id=-1, label="") for b in gt[i + 1].boxes]
        out.append((cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), dets))
    return out


def pss_kib(pid: int) -> tuple[int, int]:
    """(PSS, RSS) in KiB of a process and its descendants."""
    pss = rss = 0
    for p in [pid, *_descendants(pid)]:
        try:
            for line in Path(f"/proc/{p}/smaps_rollup").read_text().splitlines():
                key, _, rest = line.partition(":")
                if key in ("Pss", "Rss"):
                    value = int(rest.split()[0])
                    pss, rss = (pss + value, rss) if key == "Pss" else (pss, rss + value)
        except OSError:
            continue
    return pss, rss


def _descendants(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            children = [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
        for c in children:
            found += [c, *_descendants(c)]
    return found


class Rig:
    """The peer side of N cameras ``/cam<k>``: publishers, and the arrival time of each tracks message."""

    def __init__(self, peer, count: int) -> None:
        self.peer = peer
        self.images = [peer.create_publisher(Image, f"/cam{k}/image", QOS) for k in range(count)]
        self.dets = [peer.create_publisher(DetectionArray, f"/cam{k}/detections_in", QOS) for k in range(count)]
        self.arrived: list[dict[int, float]] = [{} for _ in range(count)]
        self.subs = [
            peer.create_subscription(
                TrackedObjectArray, f"/cam{k}/tracks", lambda m, k=k: self._got(k, m.header.stamp.sec), QOS
            )
            for k in range(count)
        ]

    def _got(self, camera: int, sec: int) -> None:
        self.arrived[camera].setdefault(sec, time.perf_counter())

    def connected(self) -> bool:
        return all(p.get_subscription_count() > 0 for p in (*self.images, *self.dets))

    def trigger(self, sec: int, rgb: np.ndarray, dets: list[Detection]) -> float:
        """Publish one frame to every camera; returns the time it was published."""
        header = Header(stamp=Time(sec=sec), frame_id="cam")
        image = rgb_to_image(rgb, header)
        start = time.perf_counter()
        for img_pub, det_pub in zip(self.images, self.dets, strict=True):
            det_pub.publish(DetectionArray(header=header, detections=dets))
            img_pub.publish(image)
        return start

    def wait(self, sec: int, timeout: float = 300) -> None:
        if not spin_until(self.peer, lambda: all(sec in a for a in self.arrived), timeout):
            raise SystemExit(f"bench_cameras: no tracks for frame {sec} within {timeout} s")

    def close(self) -> None:
        for entity in (*self.images, *self.dets):
            self.peer.destroy_publisher(entity)
        for sub in self.subs:
            self.peer.destroy_subscription(sub)


def run(peer, count: int, together: bool, frames: list, model: dict[str, object], logs: Path) -> dict[str, float]:
    """One setup: one node with ``count`` cameras (``together``) or ``count`` single-camera nodes."""
    params = {**model, "given_detections": True, "process_all_frames": True}
    if together:
        cameras = ",".join(f"/cam{k}/image" for k in range(count))
        procs = [start_node({**params, "cameras": f"[{cameras}]"}, logs / f"one_{count}.log")]
    else:
        procs = [
            start_node(params, logs / f"sep_{count}_{k}.log", name=f"masa_cam{k}", namespace=f"/cam{k}")
            for k in range(count)
        ]
    rig = Rig(peer, count)
    try:
        if not spin_until(peer, rig.connected, 300):
            raise SystemExit(f"bench_cameras: the node(s) did not start; see {logs}")
        for i in range(1, WARM_UP + 1):  # first inferences (OpenVINO compiles each batch size on first use)
            rig.trigger(i, *frames[(i - 1) % len(frames)])
            rig.wait(i)
        sent: dict[int, float] = {}
        start = time.perf_counter()
        for i, (rgb, dets) in enumerate(frames, start=WARM_UP + 1):
            sent[i] = rig.trigger(i, rgb, dets)
            rig.wait(i)
        elapsed = time.perf_counter() - start
        pss, rss = (sum(v) for v in zip(*(pss_kib(p.pid) for p in procs), strict=True))
        latency = [1000 * statistics.median(a[i] - t for i, t in sent.items()) for a in rig.arrived]
    finally:
        rig.close()
        for proc in procs:
            stop_node(proc)
    return {
        "fps": count * len(frames) / elapsed,
        "latency": statistics.mean(latency),
        "latency_max": max(latency),
        "pss": pss / 1024,
        "rss": rss / 1024,
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--frames", type=int, default=20, help="frames per camera (default 20)")
    p.add_argument("--cameras", type=int, nargs="+", default=[1, 2, 4], help="camera counts (default 1 2 4)")
    p.add_argument("--input-size", type=int, default=0, help="model.input_size (0 = the variant's, 512)")
    p.add_argument("--backend", default="auto", help="model.backend (auto = openvino on the CPU)")
    p.add_argument("--device", default="auto", help="model.device")
    p.add_argument("--max-batch", type=int, help="the node's max_batch (default: the node's, 2)")
    args = p.parse_args()
    if args.frames < 1 or min(args.cameras) < 1 or (args.max_batch is not None and args.max_batch < 1):
        print("bench_cameras: --frames, --cameras and --max-batch must be positive", file=sys.stderr)
        return 2
    frames = load(args.frames)
    model = {"model.input_size": args.input_size, "model.backend": args.backend, "model.device": args.device}
    if args.max_batch is not None:
        model["max_batch"] = args.max_batch
    logs = Path(tempfile.mkdtemp(prefix="bench_cameras_"))
    rclpy.init()
    peer = rclpy.create_node("bench_cameras_peer")
    rows = {}
    try:
        for n in args.cameras:
            for together in (True, False):
                rows[n, together] = run(peer, n, together, frames, model, logs)
    finally:
        peer.destroy_node()
        rclpy.shutdown()
    report(rows, args)
    return 0


def report(rows: dict[tuple[int, bool], dict[str, float]], args: argparse.Namespace) -> None:
    print(
        f"{args.frames} TUD-Campus frames (640x480 rgb8) per camera, GT boxes given, cameras triggered together; "
        f"model.input_size {args.input_size}, model.backend {args.backend}, model.device {args.device}, "
        f"max_batch {args.max_batch or 'default'}\n"
    )
    print(
        "| cameras | setup | frames/s (all cameras) | latency ms (mean of cameras' medians) | worst camera ms "
        "| PSS MiB | RSS MiB |"
    )
    print("|---:|---|---:|---:|---:|---:|---:|")
    for (n, together), r in rows.items():
        setup = "one node" if together else f"{n} node{'s' if n > 1 else ''}"
        print(
            f"| {n} | {setup} | {r['fps']:.2f} | {r['latency']:.0f} | {r['latency_max']:.0f} "
            f"| {r['pss']:.0f} | {r['rss']:.0f} |"
        )
    single = rows.get((1, True))
    for n in args.cameras:
        one, sep = rows[n, True], rows[n, False]
        line = f"\n{n} cameras: throughput one node / {n} nodes {one['fps'] / sep['fps']:.2f}"
        line += f", memory (PSS) one node / {n} nodes {one['pss'] / sep['pss']:.2f}"
        if single is not None:
            line += f", memory one {n}-camera node / one single-camera node {one['pss'] / single['pss']:.2f}"
        print(line)


if __name__ == "__main__":
    sys.exit(main())
