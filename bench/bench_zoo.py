"""Time per frame of each model-zoo variant at its default input size, random weights in the
official layout, on the first TUD-Campus frame with its ground-truth boxes; on the CPU or on CUDA
(fp16, synchronised timings, peak GPU memory).

    python bench/bench_zoo.py [--variants masa_r50 masa_sam_b masa_sam_h] [--input-size 1024]
                              [--repeats 2] [--warmup 1] [--threads 1] [--device cpu|cuda]
                              [--backbone-checkpoint mobile_sam.pt]

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

from masa_core.formats.mot import read_mot  # noqa: E402
from masa_core.models.build import ModelConfig, build_model  # noqa: E402
from masa_core.video_io import FrameSource  # noqa: E402

SEQUENCE = REPO / "data" / "mot15" / "TUD-Campus"


def clock(device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter()


def run_once(model, frame, boxes) -> dict[str, float]:
    times: dict[str, float] = {}
    dev = model.device
    t0 = clock(dev)
    image, scale = model.preprocess(frame)
    t1 = clock(dev)
    with torch.inference_mode():
        taps = model.backbone(image)
        t2 = clock(dev)
        pyramid = model.adapter(taps)
        t3 = clock(dev)
        model.embed(pyramid, torch.as_tensor(boxes, dtype=torch.float32) * scale)
    t4 = clock(dev)
    times.update(preprocess=t1 - t0, backbone=t2 - t1, adapter=t3 - t2, embed=t4 - t3, total=t4 - t0)
    return times


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--variants", nargs="+", default=["masa_r50", "masa_sam_b", "masa_sam_h"])
    p.add_argument("--input-size", type=int, default=1024)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--device", default="cpu", help="cpu | cuda (fp16 on CUDA)")
    p.add_argument("--backbone-checkpoint", default="", help="masa_mobilesam: MobileSAM weights (default: asset)")
    args = p.parse_args()
    cuda = args.device.startswith("cuda")
    torch.set_num_threads(args.threads)
    frame = next(iter(FrameSource(SEQUENCE / "TUD-Campus.mp4", 1)))
    gt = read_mot(SEQUENCE / "gt" / "gt.txt", gt_filter=True)
    boxes = gt[min(gt)].boxes
    where = torch.cuda.get_device_name() + ", fp16" if cuda else f"{args.threads} thread(s)"
    print(f"torch {torch.__version__}, {where}, input {args.input_size}, {len(boxes)} boxes")
    print("| variant | params | weights fp16 | s/frame | backbone | adapter | embed | peak GPU memory |")
    print("|---|---|---|---|---|---|---|---|")
    for variant in args.variants:
        backbone = args.backbone_checkpoint if variant == "masa_mobilesam" else ""
        cfg = ModelConfig(
            variant=variant,
            input_size=args.input_size,
            device=args.device,
            backbone_checkpoint=backbone,
            checkpoint="untrained",
        )
        model = build_model(cfg)
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        params = sum(p.numel() for p in model.parameters())
        for _ in range(args.warmup):
            run_once(model, frame, boxes)
        runs = [run_once(model, frame, boxes) for _ in range(args.repeats)]
        last = runs[-1]
        memory = f"{torch.cuda.max_memory_allocated() / 2**30:.2f} GiB" if cuda else "–"
        print(
            f"| {variant} | {params / 1e6:.1f} M | {params * 2 / 2**30:.2f} GiB | "
            f"{statistics.median(r['total'] for r in runs):.3f} | {last['backbone']:.3f} | "
            f"{last['adapter']:.3f} | {last['embed']:.3f} | {memory} |",
            flush=True,
        )
        del model
        if cuda:
            torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
