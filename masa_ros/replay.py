"""``masa-ros-replay``: publish a video, an image folder or a rosbag2 as a camera topic.

    masa-ros-replay SOURCE [--topic image] [--rate 1.0] [--bag-topic /camera/image_raw] ...

``--rate`` scales the recorded rate (a video's fps, a bag's timestamps); 0 publishes as fast as
the subscribers take them. Video frames are stamped from ``--start-stamp`` at the video's fps;
bag messages are republished byte for byte, headers included.
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

from masa_core.video_io import FrameSource, VideoError
from masa_ros.bag_io import IMAGE_TYPES, BagError, read_messages
from masa_ros.image_conversion import rgb_to_image


def is_bag(path: Path) -> bool:
    return path.is_dir() and (path / "metadata.yaml").is_file()


def video_messages(path: Path, frame_id: str, start_ns: int, max_frames: int | None) -> Iterator[tuple[int, Image]]:
    """(offset ns from the first frame, Image) for each frame of a video or image folder."""
    source = FrameSource(path, max_frames)
    period = int(1e9 / source.fps)
    for i, rgb in enumerate(source):
        stamp = start_ns + i * period
        header = Header(stamp=Time(sec=stamp // 1_000_000_000, nanosec=stamp % 1_000_000_000), frame_id=frame_id)
        yield i * period, rgb_to_image(rgb, header)


def bag_messages(path: Path, topic: str | None, max_frames: int | None) -> Iterator[tuple[int, bytes, str]]:
    """(offset ns, CDR bytes, msgtype) of a bag's image messages."""
    first = None
    for i, (_, msgtype, stamp, raw) in enumerate(read_messages(path, topic, IMAGE_TYPES)):
        if max_frames and i >= max_frames:
            return
        first = stamp if first is None else first
        yield stamp - first, raw, msgtype


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="masa-ros-replay", description=__doc__.split("\n\n")[0])
    p.add_argument("source", type=Path, help="video file, image folder or rosbag2 folder (sqlite3 or MCAP)")
    p.add_argument("--topic", default="image", help="topic to publish on (default: image)")
    p.add_argument("--bag-topic", help="image topic to take from a bag (default: its only image topic)")
    p.add_argument("--rate", type=float, default=1.0, help="speed factor over the recorded rate; 0 = max")
    p.add_argument("--frame-id", default="camera", help="header.frame_id of video frames")
    p.add_argument("--start-stamp", type=float, help="stamp of the first video frame in seconds (default: now)")
    p.add_argument("--max-frames", type=int, help="stop after this many frames")
    p.add_argument("--wait", type=float, default=30.0, help="seconds to wait for a subscriber before starting")
    p.add_argument("--quiet", action="store_true")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.rate < 0:
        print("masa-ros-replay: error: --rate must be >= 0", file=sys.stderr)
        return 2
    rclpy.init()
    node = rclpy.create_node("masa_replay")
    try:
        bag = is_bag(args.source)
        if bag:
            items = bag_messages(args.source, args.bag_topic, args.max_frames)
            first = next(items, None)
            if first is None:
                raise BagError(f"bag {args.source} has no image messages")
            msg_class = CompressedImage if first[2].endswith("CompressedImage") else Image
        else:
            start = int((args.start_stamp if args.start_stamp is not None else time.time()) * 1e9)
            items = video_messages(args.source, args.frame_id, start, args.max_frames)
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
        return 0
    except (VideoError, BagError) as e:
        print(f"masa-ros-replay: error: {e}", file=sys.stderr)
        return 2
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == "__main__":
    sys.exit(main())
