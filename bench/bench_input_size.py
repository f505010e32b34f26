"""The CPU default (OpenVINO) at several model input sizes in one run, TUD-Campus frames with the
ground-truth boxes given, frames alternating between the sizes so that load falls on all alike.

    python bench/bench_input_size.py [--sizes 512 384] [--frames 12] [--warmup 2] [--threads 2]

Prints, per size, the mean and fastest frame time and the mean per-stage ms, then each size's
speed-up over the first (mean and fastest frame).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from masa_core import Detections, Pipeline, load_config  # noqa: E402
from masa_core.formats.mot import read_mot  # noqa: E402
from masa_core.video_io import FrameSource  # noqa: E402


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sequence", type=Path, default=REPO / "data" / "mot15" / "TUD-Campus", help="MOT15 folder")
    p.add_argument("--sizes", type=int, nargs="+", default=[512, 384], help="model.input_size values")
    p.add_argument("--frames", type=int, default=12, help="timed frames")
    p.add_argument("--warmup", type=int, default=2, help="untimed frames first")
    p.add_argument("--threads", type=int, default=2)
    return p.parse_args()


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    gt = read_mot(args.sequence / "gt" / "gt.txt", gt_filter=True)
    frames = list(FrameSource(args.sequence / f"{args.sequence.name}.mp4", args.warmup + args.frames))
    pipes = {s: Pipeline(load_config(overrides={"model": {"device": "cpu", "input_size": s}})) for s in args.sizes}
    print(f"{args.threads} thread(s), {len(frames)} frames; load average {os.getloadavg()[0]:.1f} at start")
    seconds: dict[int, list[float]] = {s: [] for s in pipes}
    for i, frame in enumerate(frames):
        rows = gt.get(i + 1)
        dets = Detections.empty() if rows is None else Detections(rows.boxes, rows.scores.clip(0, 1))
        if i == args.warmup:
            for pipe in pipes.values():
                pipe.reset()
        for size, pipe in pipes.items():
            start = time.perf_counter()
            pipe.process(frame, dets)
            if i >= args.warmup:
                seconds[size].append(time.perf_counter() - start)
    first = args.sizes[0]
    for size, pipe in pipes.items():
        mean, fastest = statistics.mean(seconds[size]), min(seconds[size])
        stages = ", ".join(f"{k} {v:.1f}" for k, v in pipe.stats.mean_ms().items() if v)
        print(f"{size} px: mean {1000 * mean:.1f} ms, fastest {1000 * fastest:.1f} ms; {stages}")
        ratio = statistics.mean(seconds[first]) / mean, min(seconds[first]) / fastest
        print(f"  speed-up over {first} px: {ratio[0]:.2f}x mean, {ratio[1]:.2f}x fastest")


if __name__ == "__main__":
    main()
