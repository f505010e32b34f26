"""CPU time per frame of each model-zoo variant at its default input size, random weights in the
official layout, on the first TUD-Campus frame with its ground-truth boxes.

    python bench/bench_zoo.py [--variants masa_r50 masa_sam_b masa_sam_h] [--input-size 1024]
                              [--repeats 2] [--warmup 1] [--threads 1]

Per variant: preprocess + backbone + adapter (the fused pyramid) + embeddings of the frame's boxes,
the median of ``--repeats`` timed runs after ``--warmup`` untimed ones (``time.perf_counter``), the
stage split of the last run, the parameter count and the weights' size in fp16. Prints a Markdown table.
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
os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")

from masa_core.eval.mot_format import read_mot  # noqa: E402
from masa_core.models.build import ModelConfig, build_model  # noqa: E402
from masa_core.video_io import FrameSource  # noqa: E402

SEQUENCE = REPO / "data" / "mot15" / "TUD-Campus"


def run_once(model, frame, boxes) -> dict[str, float]:
    times: dict[str, float] = {}
    t0 = time.perf_counter()
    image, scale = model.preprocess(frame)
    t1 = time.perf_counter()
    with torch.inference_mode():
        taps = model.backbone(image)
        t2 = time.perf_counter()
        pyramid = model.adapter(taps)
        t3 = time.perf_counter()
        model.embed(pyramid, torch.as_tensor(boxes, dtype=torch.float32) * scale)
    t4 = time.perf_counter()
    times.update(preprocess=t1 - t0, backbone=t2 - t1, adapter=t3 - t2, embed=t4 - t3, total=t4 - t0)
    return times


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--variants", nargs="+", default=["masa_r50", "masa_sam_b", "masa_sam_h"])
    p.add_argument("--input-size", type=int, default=1024)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    frame = next(iter(FrameSource(SEQUENCE / "TUD-Campus.mp4", 1)))
    gt = read_mot(SEQUENCE / "gt" / "gt.txt", gt_filter=True)
    boxes = gt[min(gt)].boxes
    print(f"torch {torch.__version__}, {args.threads} thread(s), input {args.input_size}, {len(boxes)} boxes")
    print("| variant | params | weights fp16 | s/frame | backbone | adapter | embed |")
    print("|---|---|---|---|---|---|---|")
    for variant in args.variants:
        model = build_model(ModelConfig(variant=variant, input_size=args.input_size, device="cpu"))
        params = sum(p.numel() for p in model.parameters())
        for _ in range(args.warmup):
            run_once(model, frame, boxes)
        runs = [run_once(model, frame, boxes) for _ in range(args.repeats)]
        last = runs[-1]
        print(
            f"| {variant} | {params / 1e6:.1f} M | {params * 2 / 2**30:.2f} GiB | "
            f"{statistics.median(r['total'] for r in runs):.2f} | {last['backbone']:.2f} | "
            f"{last['adapter']:.2f} | {last['embed']:.3f} |",
            flush=True,
        )
        del model


if __name__ == "__main__":
    main()
