"""``masa-ros-eval``: ``masa-eval`` on the camera images of a rosbag2 (sqlite3 or MCAP).

    masa-ros-eval BAG --gt GT.txt [--bag-topic /camera/image_raw] [--name SEQ] [--frames-dir DIR]
                  [masa-eval options: --trackers iou bytetrack ... --out runs/eval --drop 0.2 ...]

The bag's images (``sensor_msgs/Image`` or ``CompressedImage``, in recorded order) become frames
1, 2, ... of a MOTChallenge sequence folder (``img1/`` as PNG, ``gt/gt.txt`` copied from --gt),
and ``masa-eval`` runs on it, so the gt file must number the bag's images in that order. The bag
is read with ``rosbags``: no ROS graph and no ``rclpy`` are needed. This adapter lives in
``masa_ros`` because ``masa_core`` never imports ROS code; ``masa-eval`` itself takes folders.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

import cv2

from masa_core.cli.eval import main as eval_main
from masa_ros.bag_io import IMAGE_TYPES, BagError, read_messages, typestore
from masa_ros.image_conversion import ImageConversionError, compressed_to_rgb, image_to_rgb


def bag_to_sequence(
    bag: str | Path, gt_file: str | Path, folder: str | Path, topic: str | None = None, max_frames: int | None = None
) -> int:
    """Write a bag's images as ``folder/img1/000001.png ...`` and copy ``gt_file`` to ``folder/gt/gt.txt``.

    topic: the image topic (default: every image topic, which should be one). Returns the number of
    frames written. Raises :class:`BagError` for an unreadable bag or one without images, and
    ImageConversionError for an image that cannot be decoded.
    """
    gt_file, folder = Path(gt_file), Path(folder)
    if not gt_file.is_file():
        raise FileNotFoundError(f"ground truth {gt_file} not found")
    store = typestore()
    (folder / "img1").mkdir(parents=True, exist_ok=True)
    count = 0
    for _, msgtype, _, raw in read_messages(bag, topic, IMAGE_TYPES):
        if max_frames and count >= max_frames:
            break
        msg = store.deserialize_cdr(raw, msgtype)
        rgb = compressed_to_rgb(msg) if msgtype.endswith("CompressedImage") else image_to_rgb(msg)
        count += 1
        cv2.imwrite(str(folder / "img1" / f"{count:06d}.png"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    (folder / "gt").mkdir(exist_ok=True)
    shutil.copy(gt_file, folder / "gt" / "gt.txt")
    return count


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="masa-ros-eval",
        description=__doc__.split("\n\n")[0],
        epilog="Other options go to masa-eval (see masa-eval --help).",
    )
    p.add_argument("bag", type=Path, help="rosbag2 folder (sqlite3 or MCAP)")
    p.add_argument("--gt", type=Path, required=True, help="MOTChallenge gt file, frames = the bag's images in order")
    p.add_argument("--bag-topic", help="image topic (default: the bag's only image topic)")
    p.add_argument("--name", help="sequence name in tables and result folders (default: the bag's folder name)")
    p.add_argument("--frames-dir", type=Path, help="keep the extracted sequence folder here (default: temporary)")
    p.add_argument("--max-frames", type=int, help="only the first images")
    args, rest = p.parse_known_args(argv)
    name = args.name or args.bag.resolve().name
    with tempfile.TemporaryDirectory(prefix="masa_ros_eval_") as tmp:
        folder = (args.frames_dir or Path(tmp)) / name
        try:
            frames = bag_to_sequence(args.bag, args.gt, folder, args.bag_topic, args.max_frames)
        except (BagError, ImageConversionError, FileNotFoundError) as err:
            print(f"masa-ros-eval: error: {err}", file=sys.stderr)
            return 2
        print(f"masa-ros-eval: {frames} images from {args.bag} -> {folder}", file=sys.stderr)
        max_frames = ["--max-frames", str(args.max_frames)] if args.max_frames else []
        return eval_main([str(folder), *max_frames, *rest])


if __name__ == "__main__":
    sys.exit(main())
