"""``masa-ros-eval``: ``masa-eval`` on rosbag2 images, and on the live tracker node over DDS.

    masa-ros-eval INPUT [INPUT ...] [--gt GT.txt ...] [--bag-topic /camera/image_raw] [--name SEQ]
                  [--frames-dir DIR] [--live [--frame-timeout 60] [--ready-timeout 300]]
                  [masa-eval options: --trackers iou bytetrack ... --out runs/eval --drop 0.2 ...]

An INPUT is a MOTChallenge sequence folder (``img1/`` or ``<name>.mp4``, and ``gt/gt.txt``) or a
rosbag2 (sqlite3 or MCAP). A bag's images (``sensor_msgs/Image`` or ``CompressedImage``, in
recorded order) become frames 1, 2, ... of a sequence folder (``img1/`` as PNG, ``gt/gt.txt``
copied from its --gt: one --gt per bag, in the bags' order), so the gt file must number the bag's
images in that order. Bags are read with ``rosbags``: without --live no ROS graph and no ``rclpy``
are needed. This adapter lives in ``masa_ros`` because ``masa_core`` never imports ROS code.

--live: MASA runs as the real tracker node, a fresh one per sequence, fed over DDS in lockstep
(each frame sent when the previous frame's tracks came back: lossless and deterministic, so the
results equal the offline Pipeline's) and scored by the same code as offline
(:mod:`masa_ros.tools.eval_live`). Frames whose tracks never come back within --frame-timeout are lost:
counted in the ``lost`` column and the run's ``.json``, and the exit code is 1. A node that
cannot start (bad parameter, missing weights) or dies is an error, exit code 2.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

import cv2

from masa_core.cli.common import OneLineParser, check_text_file, positive_int
from masa_core.cli.eval import main as eval_main
from masa_core.errors import MasaError
from masa_core.eval.given_boxes import PIPELINE_TRACKERS, TRACKERS
from masa_ros.image_conversion import ImageConversionError, compressed_to_rgb, image_to_rgb
from masa_ros.tools.bag_io import IMAGE_TYPES, BagError, read_messages, typestore


def bag_to_sequence(
    bag: str | Path, gt_file: str | Path, folder: str | Path, topic: str | None = None, max_frames: int | None = None
) -> int:
    """Write a bag's images as ``folder/img1/000001.png ...`` and copy ``gt_file`` to ``folder/gt/gt.txt``.

    topic: the image topic (default: every image topic, which should be one). Returns the number of
    frames written. Raises :class:`BagError` for an unreadable bag or one without images, and
    ImageConversionError for an image that cannot be decoded.
    """
    gt_file, folder = check_text_file(Path(gt_file), "ground truth"), Path(folder)
    store = typestore()
    (folder / "img1").mkdir(parents=True, exist_ok=True)
    count = 0
    for _, msgtype, _, raw in read_messages(bag, topic, IMAGE_TYPES):
        if max_frames and count >= max_frames:
            break
        try:
            msg = store.deserialize_cdr(raw, msgtype)
        except Exception as e:
            raise BagError(f"bag {bag}: image {count + 1} cannot be deserialized ({type(e).__name__}: {e})") from None
        try:
            rgb = compressed_to_rgb(msg) if msgtype.endswith("CompressedImage") else image_to_rgb(msg)
        except ImageConversionError as e:
            raise ImageConversionError(f"bag {bag}: image {count + 1}: {e}") from None
        count += 1
        cv2.imwrite(str(folder / "img1" / f"{count:06d}.png"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    if count == 0:
        raise BagError(f"bag {bag} has no image messages{f' on {topic}' if topic else ''}")
    (folder / "gt").mkdir(exist_ok=True)
    shutil.copy(gt_file, folder / "gt" / "gt.txt")
    return count


def is_sequence_folder(path: Path) -> bool:
    """A MOTChallenge sequence folder (``img1/`` or ``<name>.mp4``); anything else is taken for a bag."""
    return (path / "img1").is_dir() or (path / f"{path.name}.mp4").is_file()


def parse_args(argv: list[str] | None) -> tuple[argparse.Namespace, list[str]]:
    p = OneLineParser(
        prog="masa-ros-eval",
        description=__doc__.split("\n\n")[0],
        epilog="Other options go to masa-eval (see masa-eval --help).",
    )
    p.add_argument("inputs", type=Path, nargs="+", help="rosbag2 folders (sqlite3 or MCAP) or MOTChallenge folders")
    p.add_argument("--gt", type=Path, action="append", default=[], help="MOTChallenge gt file of a bag (one per bag)")
    p.add_argument("--bag-topic", help="image topic (default: the bag's only image topic)")
    p.add_argument("--name", help="sequence name of a single bag (default: the bag's folder name)")
    p.add_argument("--frames-dir", type=Path, help="keep the sequence folders extracted from bags here")
    p.add_argument("--max-frames", type=positive_int, help="only the first images")
    p.add_argument("--trackers", nargs="+", choices=TRACKERS, help="as masa-eval's (--live: masa only, the default)")
    p.add_argument("--live", action="store_true", help="MASA runs as the tracker node, fed over DDS in lockstep")
    p.add_argument("--frame-timeout", type=float, help="--live: seconds to wait for a frame's tracks (default 60)")
    p.add_argument("--ready-timeout", type=float, help="--live: seconds for the node to get ready (default 300)")
    args, rest = p.parse_known_args(argv)
    bags = [i for i in args.inputs if not is_sequence_folder(i)]
    if len(args.gt) != len(bags):
        p.error(f"each bag needs its --gt file, in order: {len(bags)} bag(s), {len(args.gt)} --gt")
    if args.name and len(bags) != 1:
        p.error("--name names the sequence of a single bag")
    if args.live:
        args.trackers = args.trackers or ["masa_sort"]
        if not set(args.trackers) <= set(PIPELINE_TRACKERS):
            p.error(
                "--live evaluates the tracker node, which runs MASA: --trackers masa_sort and/or masa "
                "(other trackers run offline)"
            )
    elif args.frame_timeout is not None or args.ready_timeout is not None:
        p.error("--frame-timeout and --ready-timeout are for --live")
    for name in ("frame_timeout", "ready_timeout"):
        if getattr(args, name) is not None and getattr(args, name) <= 0:
            p.error(f"--{name.replace('_', '-')} must be > 0")
    return args, rest


def main(argv: list[str] | None = None) -> int:
    args, rest = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="masa_ros_eval_") as tmp:
        folders: list[Path] = []
        gts = iter(args.gt)
        for source in args.inputs:
            if is_sequence_folder(source):
                folders.append(source)
                continue
            folder = (args.frames_dir or Path(tmp)) / (args.name or source.resolve().name)
            try:
                frames = bag_to_sequence(source, next(gts), folder, args.bag_topic, args.max_frames)
            except (MasaError, OSError) as err:  # BagError, ImageConversionError, UsageError, ...
                print(f"masa-ros-eval: error: {err}", file=sys.stderr)
                return 2
            print(f"masa-ros-eval: {frames} images from {source} -> {folder}", file=sys.stderr)
            folders.append(folder)
        forwarded = [str(f) for f in folders]
        if args.max_frames:
            forwarded += ["--max-frames", str(args.max_frames)]
        if args.trackers:
            forwarded += ["--trackers", *args.trackers]
        forwarded += rest
        if not args.live:
            return eval_main(forwarded, prog="masa-ros-eval")
        try:
            from masa_ros.tools.eval_live import LiveNode
        except ImportError as err:
            print(f"masa-ros-eval: error: --live needs ROS 2 and the built package: {err}", file=sys.stderr)
            return 2
        timeouts = {"frame_timeout": args.frame_timeout, "ready_timeout": args.ready_timeout}
        node = LiveNode(**{k: v for k, v in timeouts.items() if v is not None})
        try:
            return eval_main(forwarded, track=node, via="live node", prog="masa-ros-eval")
        except MasaError as err:
            print(f"masa-ros-eval: error: {err}", file=sys.stderr)
            return 2


if __name__ == "__main__":
    sys.exit(main())
