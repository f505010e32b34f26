"""The end-to-end demo: a video replayed as a camera topic through the real tracker node over DDS,
its tracks recorded to an MCAP bag, then turned into MOTChallenge results, metrics and an MP4.

    python -m masa_ros.tools.demo [--video V] [--gt GT] [--out runs/ros_demo] [--config FILE]

Every piece runs as its own process, as on a robot: ``tracker_node`` (the installed executable with
``config/tracker.yaml``), ``masa-ros-record`` and ``masa-ros-replay``. ``--out`` must be new, empty,
or a folder an earlier demo made (marked by a ``.masa_ros_demo`` file): only those are replaced.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from pathlib import Path

import torch

from masa_core.cli.common import OneLineParser, positive_int
from masa_core.eval.metrics import evaluate_mot
from masa_core.formats.mot import MotRows, write_mot
from masa_core.video_io import FrameSource, VideoError, VideoWriter
from masa_core.visualize import TrackPainter
from masa_ros.tools.bag_io import read_tracks
from masa_ros.tools.processes import NODE, REPO, stop_process
from masa_ros.track_messages import msg_to_tracks

START_STAMP = 1000.0  # seconds: replay stamps are START_STAMP + i / fps, so stamps give frame indices
MARKER = ".masa_ros_demo"  # marks a folder the demo made, the only kind it replaces


def prepare_out(out: Path) -> None:
    """Empty ``out`` for a new run: a folder an earlier demo made is replaced; any other existing
    path (a file, a folder with other things in it) is refused with ValueError, never deleted."""
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file; give a folder")
    if out.is_dir() and any(out.iterdir()):
        if not (out / MARKER).is_file():
            raise ValueError(f"--out {out} is a folder the demo did not make and is not empty; refusing to delete it")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / MARKER).write_text("made by python -m masa_ros.tools.demo; replaced by the next run\n")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = OneLineParser(prog="masa_ros.tools.demo", description=__doc__.split("\n\n")[0])
    p.add_argument("--video", type=Path, default=REPO / "data/mot15/TUD-Campus/TUD-Campus.mp4")
    p.add_argument("--gt", type=Path, default=REPO / "data/mot15/TUD-Campus/gt/gt.txt")
    p.add_argument("--out", type=Path, default=Path("runs/ros_demo"))
    p.add_argument("--config", type=Path, help="masa_core config (default: masa.yaml on CUDA, else masa_cpu.yaml)")
    p.add_argument("--classes", default="Person", help="detector classes to track, comma-separated ('' = all)")
    p.add_argument("--max-frames", type=positive_int)
    return p.parse_args(argv)


def run(args: argparse.Namespace) -> dict:
    config = args.config or REPO / "config" / ("masa.yaml" if torch.cuda.is_available() else "masa_cpu.yaml")
    frames = len(FrameSource(args.video, args.max_frames))
    bag = args.out / "tracks_bag"
    node_cmd = [str(NODE), "--ros-args", "--params-file", str(REPO / "config" / "tracker.yaml")]
    node_cmd += ["-p", f"config_file:={config}", "-p", "process_all_frames:=true", "-p", f"queue_size:={frames + 10}"]
    if args.classes:
        node_cmd += ["-p", f"detector.classes:=[{args.classes}]"]
    record_cmd = [sys.executable, "-m", "masa_ros.tools.record", str(bag), "--count", str(frames), "--quiet"]
    replay_cmd = [sys.executable, "-m", "masa_ros.tools.replay", str(args.video), "--rate", "0", "--wait", "300"]
    replay_cmd += ["--start-stamp", str(START_STAMP), "--frame-id", "camera", "--quiet"]
    if args.max_frames:
        replay_cmd += ["--max-frames", str(args.max_frames)]
    log = (args.out / "node.log").open("w")
    print(
        f"[demo] tracker_node with {config.relative_to(REPO) if config.is_relative_to(REPO) else config}; "
        f"replaying {frames} frames of {args.video.name}"
    )
    node = subprocess.Popen(node_cmd, stdout=log, stderr=subprocess.STDOUT)
    record = subprocess.Popen(record_cmd)
    start = time.perf_counter()
    try:
        subprocess.run(replay_cmd, check=True)
        while record.poll() is None:
            if node.poll() is not None:
                raise RuntimeError(f"tracker_node exited with {node.returncode}; see {args.out / 'node.log'}")
            time.sleep(0.5)
    finally:
        elapsed = time.perf_counter() - start
        for proc in (record, node):
            stop_process(proc, timeout=30)
        log.close()
    messages = read_tracks(bag)
    fps = FrameSource(args.video).fps
    by_frame = {
        round(((m.header.stamp.sec + m.header.stamp.nanosec * 1e-9) - START_STAMP) * fps): msg_to_tracks(m)
        for m in messages
    }
    rows = {i: MotRows.from_tracks(ts) for i, ts in by_frame.items()}
    results = args.out / "results.txt"
    write_mot(results, rows, zero_based=True)
    painter = TrackPainter()
    with VideoWriter(args.out / "tracks.mp4", fps) as writer:
        for i, frame in enumerate(FrameSource(args.video, args.max_frames)):
            writer.write(painter.draw(frame, by_frame.get(i, [])))
    metrics = evaluate_mot(args.gt, results, num_frames=frames)
    return {
        "frames": frames,
        "messages": len(messages),
        "seconds": elapsed,
        "ids": len({t.id for ts in by_frame.values() for t in ts}),
        "metrics": metrics,
        "out": args.out,
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not NODE.is_file():
        print(f"masa_ros.tools.demo: error: {NODE} not built; run scripts/setup.sh", file=sys.stderr)
        return 2
    try:
        FrameSource(args.video, args.max_frames)
        prepare_out(args.out)
    except (ValueError, VideoError) as e:
        print(f"masa_ros.tools.demo: error: {e}", file=sys.stderr)
        return 2
    s = run(args)
    m = s["metrics"]
    print(
        f"[demo] {s['messages']}/{s['frames']} TrackedObjectArray messages over DDS in {s['seconds']:.1f} s "
        f"({s['messages'] / s['seconds']:.2f} fps end to end), {s['ids']} track ids\n"
        f"[demo] HOTA {m['HOTA']:.3f}  IDF1 {m['IDF1']:.3f}  MOTA {m['MOTA']:.3f}  IDSW {int(m['IDSW'])} "
        f"against {args.gt}\n"
        f"[demo] bag: {s['out'] / 'tracks_bag'}  results: {s['out'] / 'results.txt'}  video: {s['out'] / 'tracks.mp4'}"
    )
    return 0 if s["messages"] == s["frames"] else 1


if __name__ == "__main__":
    sys.exit(main())
