"""Soak of the tracker node over real DDS: a camera-rate stream for a long time, watching memory,
latency and drops minute by minute.

    python bench/soak.py [--minutes 30] [--rate 10] [--window 60] [--warmup 60] [--input-size 256]
                         [--json soak.json]

The node runs as a robot runs it (its own process, the shipped params file, sensor-data QoS,
newest image wins) on TUD-Campus frames (640x480, looped) with their ground-truth boxes as given
detections. Per window: the node's resident memory (RSS, from /proc), latency percentiles from
publishing an image to its TrackedObjectArray arriving, images sent, tracked and dropped, and the
most images queued in the node. Ratios are against the first window after the warm-up, measured
in the same run; the summary line gives the RSS growth after warm-up.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import rclpy
from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from sensor_msgs.msg import Image
from std_msgs.msg import Header

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from masa_core.formats.mot import read_mot  # noqa: E402
from masa_ros.image_conversion import rgb_to_image  # noqa: E402
from masa_ros.msg import Detection, DetectionArray, TrackedObjectArray  # noqa: E402
from masa_ros.track_messages import stamp_ns  # noqa: E402
from tests.ros_harness import spin_until, start_node, stop_node  # noqa: E402

VIDEO = REPO / "data/mot15/TUD-Campus/TUD-Campus.mp4"
GT = REPO / "data/mot15/TUD-Campus/gt/gt.txt"
NAME = "masa_soak"


@dataclass
class Window:
    """What one window of the soak saw."""

    end_s: float
    rss_mb: float
    sent: int = 0
    tracked: int = 0
    latency_ms: list[float] = field(default_factory=list)
    max_queued: int = 0
    max_buffered: int = 0

    def summary(self) -> dict[str, float]:
        lat = np.array(self.latency_ms) if self.latency_ms else np.array([np.nan])
        return {
            "end_s": round(self.end_s, 1),
            "rss_mb": round(self.rss_mb, 1),
            "sent": self.sent,
            "tracked": self.tracked,
            "dropped": self.sent - self.tracked,
            "p50_ms": round(float(np.percentile(lat, 50)), 1),
            "p90_ms": round(float(np.percentile(lat, 90)), 1),
            "p99_ms": round(float(np.percentile(lat, 99)), 1),
            "max_queued": self.max_queued,
            "max_buffered": self.max_buffered,
        }


def rss_mb(pid: int) -> float:
    """Resident memory of process ``pid`` in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def frames() -> list[tuple[np.ndarray, np.ndarray]]:
    """(RGB frame, gt boxes) of TUD-Campus."""
    gt = read_mot(GT, gt_filter=True)
    cap = cv2.VideoCapture(str(VIDEO))
    out = []
    while True:
        ok, bgr = cap.read()
        if not ok:
            break
        rows = gt.get(len(out) + 1)
        out.append((cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), rows.boxes if rows is not None else np.zeros((0, 4))))
    cap.release()
    return out


class Stream:
    """The camera side: publishes images with their boxes, times the tracks coming back."""

    def __init__(self, node) -> None:
        self.node = node
        self.images = node.create_publisher(Image, "image", qos_profile_sensor_data)
        reliable = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
        self.detections = node.create_publisher(DetectionArray, "detections_in", reliable)
        self.sent_at: dict[int, float] = {}
        self.latencies: list[float] = []
        self.tracked = 0
        self.diag: dict[str, str] = {}
        node.create_subscription(TrackedObjectArray, "tracks", self._on_tracks, reliable)
        node.create_subscription(DiagnosticArray, "/diagnostics", self._on_diag, 10)

    def _on_tracks(self, msg: TrackedObjectArray) -> None:
        sent = self.sent_at.pop(stamp_ns(msg.header), None)
        if sent is not None:
            self.tracked += 1
            self.latencies.append(1000.0 * (time.perf_counter() - sent))

    def _on_diag(self, msg: DiagnosticArray) -> None:
        if msg.status and msg.status[0].name.startswith(NAME):
            self.diag = {kv.key: kv.value for kv in msg.status[0].values}

    def send(self, index: int, rgb: np.ndarray, boxes: np.ndarray) -> None:
        stamp = 1_000_000_000 + index * 1_000_000
        header = Header(stamp=Time(sec=stamp // 10**9, nanosec=stamp % 10**9), frame_id="camera")
        dets = [Detection(box=[float(v) for v in b], score=1.0, class_id=-1, label="") for b in boxes]
        self.detections.publish(DetectionArray(header=header, detections=dets))
        self.sent_at[stamp] = time.perf_counter()
        if len(self.sent_at) > 1000:  # images the node dropped never come back
            self.sent_at.pop(next(iter(self.sent_at)))
        self.images.publish(rgb_to_image(rgb, header))


def soak(args: argparse.Namespace, log: Path) -> dict:
    """Run the soak; the per-window table and the summary as a dict."""
    data = frames()
    params = {
        "given_detections": True,
        "diagnostics_period": 1.0,
        "model.input_size": args.input_size,
        "model.device": args.device,
    }
    proc = start_node(params, log, name=NAME)
    rclpy.init()
    node = rclpy.create_node("masa_soak_camera")
    stream = Stream(node)
    try:
        ready = lambda: stream.images.get_subscription_count() > 0 and node.count_publishers("tracks") > 0  # noqa: E731
        if not spin_until(node, ready, 300):
            raise RuntimeError(f"the node never got ready; see {log}")
        windows = run_windows(args, proc, node, stream, data)
    finally:
        stop_node(proc)
        node.destroy_node()
        rclpy.shutdown()
    return report(args, windows)


def run_windows(args, proc, node, stream: Stream, data) -> list[Window]:
    """Stream at ``args.rate`` for ``args.minutes``, closing a window every ``args.window`` seconds."""
    start = time.perf_counter()
    duration = args.minutes * 60.0
    windows: list[Window] = []
    current = Window(end_s=args.window, rss_mb=0.0)
    sent_before = tracked_before = 0
    index = 0
    while (now := time.perf_counter() - start) < duration:
        if proc.poll() is not None:
            raise RuntimeError(f"the node exited with {proc.returncode} after {now:.0f} s")
        rgb, boxes = data[index % len(data)]
        stream.send(index, rgb, boxes)
        index += 1
        next_send = start + index / args.rate
        while time.perf_counter() < next_send:
            rclpy.spin_once(node, timeout_sec=max(0.0, next_send - time.perf_counter()))
        current.max_queued = max(current.max_queued, int(stream.diag.get("images queued", 0)))
        current.max_buffered = max(current.max_buffered, int(stream.diag.get("detections buffered", 0)))
        if time.perf_counter() - start >= current.end_s:
            current.rss_mb = rss_mb(proc.pid)
            current.sent, current.tracked = index - sent_before, stream.tracked - tracked_before
            current.latency_ms, stream.latencies = stream.latencies, []
            sent_before, tracked_before = index, stream.tracked
            windows.append(current)
            print(f"[soak] {json.dumps(current.summary())}", flush=True)
            current = Window(end_s=current.end_s + args.window, rss_mb=0.0)
    return windows


def report(args: argparse.Namespace, windows: list[Window]) -> dict:
    """Per-window rows with ratios to the first window after warm-up, and the RSS growth."""
    rows = [w.summary() for w in windows]
    after = [r for r in rows if r["end_s"] > args.warmup] or rows
    base = after[0]
    for r in rows:
        r["rss_ratio"] = round(r["rss_mb"] / base["rss_mb"], 3)
        r["p50_ratio"] = round(r["p50_ms"] / base["p50_ms"], 2) if base["p50_ms"] else float("nan")
    growth = after[-1]["rss_mb"] / base["rss_mb"] - 1.0
    return {
        "settings": {k: v for k, v in vars(args).items() if k not in ("json", "log")},
        "windows": rows,
        "rss_growth_after_warmup": round(growth, 4),
        "max_queued": max(r["max_queued"] for r in rows),
        "max_buffered": max(r["max_buffered"] for r in rows),
        "sent": sum(r["sent"] for r in rows),
        "tracked": sum(r["tracked"] for r in rows),
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--minutes", type=float, default=30.0)
    p.add_argument("--rate", type=float, default=10.0, help="images per second")
    p.add_argument("--window", type=float, default=60.0, help="seconds per reported window")
    p.add_argument("--warmup", type=float, default=60.0, help="seconds before the baseline window")
    p.add_argument("--input-size", type=int, default=256)
    p.add_argument("--device", default="cpu")
    p.add_argument("--json", type=Path, help="also write the report here")
    p.add_argument("--log", type=Path, help="the node's log (default /tmp/masa_soak_<time>.log)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    out = soak(args, args.log or Path(f"/tmp/{NAME}_{int(time.time())}.log"))
    print("end_s  rss_mb  rss_ratio  p50_ms  p90_ms  p99_ms  p50_ratio  sent  tracked  dropped  max_queued")
    for r in out["windows"]:
        print(
            f"{r['end_s']:>5.0f}  {r['rss_mb']:>6.1f}  {r['rss_ratio']:>9.3f}  {r['p50_ms']:>6.1f}  "
            f"{r['p90_ms']:>6.1f}  {r['p99_ms']:>6.1f}  {r['p50_ratio']:>9.2f}  {r['sent']:>4}  {r['tracked']:>7}  "
            f"{r['dropped']:>7}  {r['max_queued']:>10}"
        )
    print(
        f"RSS growth after warm-up: {100 * out['rss_growth_after_warmup']:+.2f} %; "
        f"{out['tracked']}/{out['sent']} images tracked; most images queued in the node: {out['max_queued']}"
    )
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
