"""Time the trackers' ``update`` on the same synthetic frames: MASA-SORT (the default) and the MASA
tracker against two baselines, ByteTrack (boxmot, the peer MASA-SORT's cost is judged against) and
IoU + Hungarian (``masa_core.baselines.iou_tracker``).

Run: ``python bench/bench_tracker.py`` (add ``--device cuda`` to time the MASA tracker on a GPU).
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

from masa_core.baselines.iou_tracker import IouTracker
from masa_core.baselines.peers import PeerTracker
from masa_core.tracking import MasaSortTracker, MasaTracker, TrackerConfig

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


def time_masa(frames: list[Frame], warmup: int, device: torch.device, kind: str = "masa") -> float:
    """Median ms per ``update`` of MASA-SORT (``kind="masa_sort"``) or the MASA tracker, results on the host."""
    config = TrackerConfig.plug_and_play()
    tracker = MasaTracker(config) if kind == "masa" else MasaSortTracker(config)
    frames = [tuple(t.to(device) for t in f) for f in frames]
    times = []
    for i, (boxes, scores, labels, embeds) in enumerate(frames):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        res = tracker.update(boxes, scores, labels, embeds, i, stamp=i / 30)
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


def time_bytetrack(frames: list[Frame], warmup: int) -> float:
    """Median ms per boxmot ByteTrack ``update`` (numpy boxes and scores in, ids out; no image is read)."""
    tracker = PeerTracker("bytetrack", frame_rate=30)
    image = np.zeros((1080, 1920, 3), np.uint8)
    times = []
    for i, (boxes, scores, *_rest) in enumerate(frames):
        b, s = boxes.numpy(), scores.numpy()
        t0 = time.perf_counter()
        tracker.update(b, s, image)
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
    print("ms per frame (median); ratios against ByteTrack and IoU + Hungarian measured in this run")
    print("| objects | MASA-SORT | MASA | ByteTrack | IoU+Hungarian | MASA-SORT / ByteTrack | MASA / IoU |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for n in args.objects:
        frames = make_frames(n, args.frames + args.warmup)
        masa_sort = time_masa(frames, args.warmup, torch.device("cpu"), "masa_sort")  # numpy inside: CPU
        masa = time_masa(frames, args.warmup, device)
        byte = time_bytetrack(frames, args.warmup)
        base = time_baseline(frames, args.warmup)
        times = " | ".join(f"{t:.3f}" for t in (masa_sort, masa, byte, base))
        print(f"| {n} | {times} | {masa_sort / byte:.2f} | {masa / base:.2f} |")


if __name__ == "__main__":
    main()
