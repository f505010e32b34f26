"""Time ``MasaTracker.update`` against the IoU + Hungarian baseline (``masa_core.tracking.iou_tracker``) on
the same synthetic frames.

Run: ``python bench/bench_tracker.py`` (add ``--device cuda`` to time MASA on a GPU).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from masa_core.tracking import MasaTracker, TrackerConfig
from masa_core.tracking.iou_tracker import IouTracker

Frame = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]


def make_frames(num_objects: int, num_frames: int, dim: int = 256, seed: int = 0) -> list[Frame]:
    """Objects moving at constant velocity in a 1920x1080 image, noisy 256-d embeddings, random scores."""
    gen = torch.Generator().manual_seed(seed)
    proto = torch.randn(num_objects, dim, generator=gen)
    pos = torch.rand(num_objects, 2, generator=gen) * torch.tensor([1880.0, 1040.0])
    vel = torch.randn(num_objects, 2, generator=gen) * 3
    frames = []
    for _ in range(num_frames):
        pos = pos + vel
        order = torch.randperm(num_objects, generator=gen)  # detector output order is arbitrary
        xy = pos[order]
        boxes = torch.cat([xy, xy + 40.0], dim=1)
        scores = 0.5 + 0.5 * torch.rand(num_objects, generator=gen)
        labels = torch.zeros(num_objects, dtype=torch.long)
        embeds = proto[order] + 0.3 * torch.randn(num_objects, dim, generator=gen)
        frames.append((boxes, scores, labels, embeds))
    return frames


def time_masa(frames: list[Frame], warmup: int, device: torch.device) -> float:
    tracker = MasaTracker(TrackerConfig.plug_and_play())
    frames = [tuple(t.to(device) for t in f) for f in frames]
    times = []
    for i, (boxes, scores, labels, embeds) in enumerate(frames):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        res = tracker.update(boxes, scores, labels, embeds, i)
        res.ids.cpu()  # results are needed on the host by the caller
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


def time_baseline(frames: list[Frame], warmup: int) -> float:
    tracker = IouTracker(iou_thr=0.3, max_age=10)
    times = []
    for i, (boxes, *_rest) in enumerate(frames):
        b = boxes.numpy().astype(np.float64)
        t0 = time.perf_counter()
        tracker.update(b, None, i)
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--objects", type=int, nargs="+", default=[10, 100, 300])
    parser.add_argument("--frames", type=int, default=50, help="timed frames per run")
    parser.add_argument("--warmup", type=int, default=5, help="untimed leading frames")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0: torch default)")
    args = parser.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    print(f"torch {torch.__version__}, device {device}, torch threads {torch.get_num_threads()}")
    print("| objects/frame | MASA ms/frame | IoU+Hungarian ms/frame | MASA / baseline |")
    print("|---:|---:|---:|---:|")
    for n in args.objects:
        frames = make_frames(n, args.frames + args.warmup)
        masa = time_masa(frames, args.warmup, device)
        base = time_baseline(frames, args.warmup)
        print(f"| {n} | {masa:.3f} | {base:.3f} | {masa / base:.2f} |")


if __name__ == "__main__":
    main()
