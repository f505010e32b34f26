"""``masa-ros-record``: write tracks (and optionally images) to an MCAP rosbag2.

    masa-ros-record OUT_BAG [--tracks-topic tracks] [--image-topic image] [--count N] [--idle S]

Messages are stored as they arrive on the wire (CDR), stamped with their receive time; the bag
carries the full message definitions, so ``rosbags`` and ROS 2 tools read it.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from pathlib import Path

import rclpy
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image

from masa_core.cli.common import OneLineParser, finite_float, positive_int
from masa_ros.msg import TrackedObjectArray
from masa_ros.tools.bag_io import TRACKS_TYPE, BagError, open_writer, typestore


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = OneLineParser(prog="masa-ros-record", description=__doc__.split("\n\n")[0])
    p.add_argument("bag", type=Path, help="output rosbag2 folder (must not exist)")
    p.add_argument("--tracks-topic", default="tracks")
    p.add_argument("--image-topic", help="also record sensor_msgs/Image from this topic")
    p.add_argument("--storage", choices=("mcap", "sqlite3"), default="mcap")
    p.add_argument("--count", type=positive_int, help="stop after this many tracks messages")
    p.add_argument("--duration", type=finite_float(0.0, strict=True), help="stop after this many seconds")
    p.add_argument(
        "--idle",
        type=finite_float(0.0, strict=True),
        help="stop when no tracks arrive for this many seconds (after the first)",
    )
    p.add_argument("--quiet", action="store_true")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        writer = open_writer(args.bag, args.storage)
        writer.open()
    except (BagError, OSError, ValueError) as e:
        print(f"masa-ros-record: error: {e}", file=sys.stderr)
        return 2
    store = typestore()
    rclpy.init()
    node = rclpy.create_node("masa_record")
    counts = {"tracks": 0, "images": 0}
    last = [time.monotonic()]
    qos = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)

    def recorder(key: str, conn):
        def write(raw: bytes) -> None:
            writer.write(conn, time.time_ns(), raw)
            counts[key] += 1
            last[0] = time.monotonic()

        return write

    tracks_topic = node.resolve_topic_name(args.tracks_topic)
    conn = writer.add_connection(tracks_topic, TRACKS_TYPE, typestore=store)
    node.create_subscription(TrackedObjectArray, args.tracks_topic, recorder("tracks", conn), qos, raw=True)
    if args.image_topic:
        image_conn = writer.add_connection(
            node.resolve_topic_name(args.image_topic), "sensor_msgs/msg/Image", typestore=store
        )
        node.create_subscription(Image, args.image_topic, recorder("images", image_conn), qos, raw=True)
    stop = [False]
    signal.signal(signal.SIGTERM, lambda *_: stop.__setitem__(0, True))
    start = time.monotonic()
    try:
        while not stop[0]:
            rclpy.spin_once(node, timeout_sec=0.05)
            now = time.monotonic()
            if args.count and counts["tracks"] >= args.count:
                break
            if args.duration and now - start >= args.duration:
                break
            if args.idle and counts["tracks"] and now - last[0] >= args.idle:
                break
    except KeyboardInterrupt:
        pass
    finally:
        writer.close()
        node.destroy_node()
        rclpy.try_shutdown()
    if not args.quiet:
        print(f"masa-ros-record: wrote {counts['tracks']} tracks and {counts['images']} images to {args.bag}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
