"""``masa-ros-replay``: publish a video, an image folder or a rosbag2 as a camera topic.

    masa-ros-replay SOURCE [--topic image] [--rate 1.0] [--bag-topic /camera/image_raw] ...

``--rate`` scales the recorded rate (a video's fps, a bag's timestamps); 0 publishes as fast as
the subscribers take them. Video frames are stamped from ``--start-stamp`` at the video's fps;
bag messages are republished byte for byte, headers included. A bag message that is empty or does
not deserialize as its type is skipped and counted, never sent (one malformed sample can stall a
reliable reader); the exit code is then 1, as for a video that ends before the frame count its
container declares. User errors exit with code 2 and one line.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import rclpy
from builtin_interfaces.msg import Time
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Header

from masa_core.cli.common import OneLineParser, finite_float, positive_int
from masa_core.errors import MasaError
from masa_core.video_io import FrameSource
from masa_ros.image_conversion import rgb_to_image
from masa_ros.tools.bag_io import IMAGE_TYPES, BagError, read_messages, typestore


def is_bag(path: Path) -> bool:
    return path.is_dir() and (path / "metadata.yaml").is_file()


def video_messages(source: FrameSource, frame_id: str, start_ns: int) -> Iterator[tuple[int, Image]]:
    """(offset ns from the first frame, Image) for each frame of a video or image folder."""
    period = int(1e9 / source.fps)
    for i, rgb in enumerate(source):
        stamp = start_ns + i * period
        header = Header(stamp=Time(sec=stamp // 1_000_000_000, nanosec=stamp % 1_000_000_000), frame_id=frame_id)
        yield i * period, rgb_to_image(rgb, header)


def bag_messages(
    path: Path, topic: str | None, max_frames: int | None, skipped: list[int]
) -> Iterator[tuple[int, bytes, str]]:
    """(offset ns, CDR bytes, msgtype) of a bag's image messages that deserialize; the index of each
    one that is empty or does not is appended to ``skipped`` instead."""
    store = typestore()
    first = None
    for i, (_, msgtype, stamp, raw) in enumerate(read_messages(path, topic, IMAGE_TYPES)):
        if max_frames and i >= max_frames:
            return
        if not deserializes(store, raw, msgtype):
            skipped.append(i)
            continue
        first = stamp if first is None else first
        yield stamp - first, raw, msgtype


def deserializes(store: object, raw: bytes, msgtype: str) -> bool:
    """Whether ``raw`` is a non-empty CDR message of ``msgtype``."""
    if not raw:
        return False
    try:
        store.deserialize_cdr(raw, msgtype)  # type: ignore[attr-defined]
    except Exception:
        return False
    return True


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = OneLineParser(prog="masa-ros-replay", description=__doc__.split("\n\n")[0])
    p.add_argument("source", type=Path, help="video file, image folder or rosbag2 folder (sqlite3 or MCAP)")
    p.add_argument("--topic", default="image", help="topic to publish on (default: image)")
    p.add_argument("--bag-topic", help="image topic to take from a bag (default: its only image topic)")
    p.add_argument("--rate", type=finite_float(0.0), default=1.0, help="speed factor over the recorded rate; 0 = max")
    p.add_argument("--frame-id", default="camera", help="header.frame_id of video frames")
    p.add_argument(
        "--start-stamp", type=finite_float(0.0), help="stamp of the first video frame in seconds (default: now)"
    )
    p.add_argument("--max-frames", type=positive_int, help="stop after this many frames")
    p.add_argument(
        "--wait", type=finite_float(0.0), default=30.0, help="seconds to wait for a subscriber before starting"
    )
    p.add_argument("--quiet", action="store_true")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    rclpy.init()
    node = rclpy.create_node("masa_replay")
    try:
        skipped: list[int] = []
        source = None
        if is_bag(args.source):
            items = bag_messages(args.source, args.bag_topic, args.max_frames, skipped)
            first = next(items, None)
            if first is None:
                raise BagError(f"bag {args.source} has no image messages that deserialize ({len(skipped)} skipped)")
            msg_class = CompressedImage if first[2].endswith("CompressedImage") else Image
        else:
            start = int((args.start_stamp if args.start_stamp is not None else time.time()) * 1e9)
            source = FrameSource(args.source, args.max_frames)
            items = video_messages(source, args.frame_id, start)
            first = next(items, None)
            msg_class = Image
        qos = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
        pub = node.create_publisher(msg_class, args.topic, qos)
        deadline = time.monotonic() + args.wait
        while pub.get_subscription_count() == 0 and time.monotonic() < deadline:
            rclpy.spin_once(node, timeout_sec=0.05)
        count = 0
        t0 = time.monotonic()
        item = first
        while item is not None:
            offset, payload = item[0], item[1]
            if args.rate > 0:
                delay = offset / 1e9 / args.rate - (time.monotonic() - t0)
                if delay > 0:
                    time.sleep(delay)
            pub.publish(payload)
            count += 1
            item = next(items, None)
        time.sleep(0.5)  # let the middleware hand over the last messages
        if not args.quiet:
            print(f"masa-ros-replay: published {count} images on {pub.topic_name}")
        return report_problems(skipped, source)
    except MasaError as e:
        print(f"masa-ros-replay: error: {e}", file=sys.stderr)
        return 2
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


def report_problems(skipped: list[int], source: FrameSource | None) -> int:
    """Print what was not replayed as it should have been; exit code 1 if anything, else 0."""
    problems = []
    if skipped:
        shown = ", ".join(map(str, skipped[:10])) + (", ..." if len(skipped) > 10 else "")
        problems.append(f"skipped {len(skipped)} bag messages that are empty or do not deserialize (indices {shown})")
    short = source.shortfall() if source is not None else None
    if short:
        problems.append(short)
    for problem in problems:
        print(f"masa-ros-replay: error: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
