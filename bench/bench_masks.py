"""Box-prompted masks (one decoder call for the frame's boxes, on the MASA backbone's embedding)
against MobileSAM's automatic mask generator, on real TUD-Campus frames; and the pipeline's time and
memory per frame with masks on and off.

    python bench/bench_masks.py [--frames 0 35] [--points-per-side 16] [--threads 1]

Boxes are the frame's ground-truth boxes (no trained detection head is available). Part A, input
1024 (the MobileSAM default, what the automatic generator uses):
  * prompted: MobileSAM TinyViT via ``TinyViTBackbone`` once, then ``BoxPromptSegmenter`` on the
    GT boxes; also checked against ``mobile_sam.SamPredictor`` on the same boxes (mask IoU);
  * automatic: ``mobile_sam.SamAutomaticMaskGenerator`` (its own encoder pass, grid prompts);
  * recovery: prompted masks with an automatic mask at IoU ≥ 0.5, and vice versa.
Part B runs first, the pipeline (GT boxes) in a fresh subprocess per mode, so that the peak RSS
(``resource.getrusage``) of each mode is its own.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")

from masa_core.assets import asset_path  # noqa: E402
from masa_core.detectors.base import Detections  # noqa: E402
from masa_core.formats.mot import read_mot  # noqa: E402
from masa_core.video_io import FrameSource  # noqa: E402

SEQUENCE = REPO / "data" / "mot15" / "TUD-Campus"


def peak_rss_mib() -> float:
    """Peak RSS of this process (Linux keeps a forked parent's peak in the child: run parts in order)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def load_frames(indices: list[int]) -> dict[int, np.ndarray]:
    frames = {}
    for i, frame in enumerate(FrameSource(SEQUENCE / "TUD-Campus.mp4")):
        if i in indices:
            frames[i] = frame
        if len(frames) == len(indices):
            break
    return frames


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Mask IoU between (N, H, W) and (M, H, W) bool stacks."""
    fa = a.reshape(len(a), -1).astype(np.float32)
    fb = b.reshape(len(b), -1).astype(np.float32)
    inter = fa @ fb.T
    union = fa.sum(1)[:, None] + fb.sum(1)[None, :] - inter
    return inter / np.maximum(union, 1.0)


def part_a(frame_ids: list[int], points_per_side: int) -> dict:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from mobile_sam import SamAutomaticMaskGenerator, SamPredictor, sam_model_registry

    from masa_core.models.masa_model import MasaAdapter, MasaModel
    from masa_core.models.tinyvit_backbone import TinyViTBackbone
    from masa_core.segmentation import BoxPromptSegmenter

    backbone = TinyViTBackbone(1024)
    backbone.load_mobile_sam(asset_path("mobile_sam"))
    model = MasaModel("masa_mobilesam", backbone, MasaAdapter(backbone.out_channels), 1024).eval()
    segmenter = BoxPromptSegmenter(1024)
    sam = sam_model_registry["vit_t"](checkpoint=str(asset_path("mobile_sam"))).eval()
    generator = SamAutomaticMaskGenerator(sam, points_per_side=points_per_side)
    predictor = SamPredictor(sam)
    gt = read_mot(SEQUENCE / "gt" / "gt.txt", gt_filter=True)
    rows = []
    for index, frame in load_frames(frame_ids).items():
        boxes = gt[index + 1].boxes
        h, w = frame.shape[:2]
        t0 = time.perf_counter()
        image, scale = model.preprocess(frame)
        embedding = model.backbone(image)[-1]
        t1 = time.perf_counter()
        prompted = segmenter.segment(embedding, torch.from_numpy(boxes) * scale, (h, w), scale)
        t2 = time.perf_counter()
        auto = generator.generate(frame)
        t3 = time.perf_counter()
        auto_masks = np.stack([m["segmentation"] for m in auto]) if auto else np.zeros((0, h, w), bool)
        predictor.set_image(frame)
        ref, _, _ = predictor.predict_torch(
            None,
            None,
            boxes=predictor.transform.apply_boxes_torch(torch.from_numpy(boxes), (h, w)),
            multimask_output=False,
        )
        ref_iou = np.diag(iou_matrix(prompted, ref[:, 0].numpy()))
        iou = iou_matrix(prompted, auto_masks) if len(auto_masks) else np.zeros((len(prompted), 0))
        rows.append(
            {
                "frame": index,
                "boxes": len(boxes),
                "encoder_s": t1 - t0,
                "prompted_decoder_s": t2 - t1,
                "auto_s": t3 - t2,
                "auto_masks": len(auto_masks),
                "prompted_recovered_by_auto": int((iou.max(1, initial=0) >= 0.5).sum()),
                "auto_recovered_by_prompted": int((iou.max(0, initial=0) >= 0.5).sum()) if iou.size else 0,
                "mean_iou_vs_sampredictor": float(ref_iou.mean()),
                "min_iou_vs_sampredictor": float(ref_iou.min()),
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    return {"frames": rows, "peak_rss_mib": peak_rss_mib()}


def part_b(masks: bool, input_size: int, frame_ids: list[int], warmup: int) -> dict:
    from masa_core import Pipeline, load_config

    cfg = load_config(overrides={"model": {"input_size": input_size, "device": "cpu"}, "masks": {"enabled": masks}})
    pipe = Pipeline(cfg)
    gt = read_mot(SEQUENCE / "gt" / "gt.txt", gt_filter=True)
    frames = load_frames(sorted(set(frame_ids)))
    seconds, mask_s = [], []
    for n, index in enumerate([frame_ids[0]] * warmup + frame_ids):
        boxes = gt[index + 1].boxes
        t0 = time.perf_counter()
        result = pipe.process(frames[index], Detections(boxes, np.ones(len(boxes), np.float32)))
        if n >= warmup:
            seconds.append(time.perf_counter() - t0)
            mask_s.append(result.timings.get("masks", 0.0))
    return {
        "masks": masks,
        "input_size": input_size,
        "s_per_frame": float(np.mean(seconds)),
        "masks_s_per_frame": float(np.mean(mask_s)),
        "peak_rss_mib": peak_rss_mib(),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--frames", type=int, nargs="+", default=[0, 35], help="TUD-Campus frame indices (0-based)")
    p.add_argument("--points-per-side", type=int, default=16, help="automatic generator grid (MobileSAM default 32)")
    p.add_argument("--pipeline-size", type=int, default=512, help="pipeline input size for part B")
    p.add_argument("--warmup", type=int, default=1, help="untimed pipeline frames before timing (part B)")
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    p.add_argument("--skip-a", action="store_true", help="only part B")
    p.add_argument("--part-b", choices=["on", "off"], help=argparse.SUPPRESS)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    if args.part_b:
        print(json.dumps(part_b(args.part_b == "on", args.pipeline_size, args.frames, args.warmup)))
        return
    print(f"torch {torch.__version__}, {args.threads} thread(s), frames {args.frames}", flush=True)
    base = [sys.executable, __file__, "--threads", str(args.threads), "--pipeline-size", str(args.pipeline_size)]
    base += ["--warmup", str(args.warmup), "--frames", *map(str, args.frames)]
    for mode in ("off", "on"):
        out = subprocess.run([*base, "--part-b", mode], capture_output=True, text=True, check=True).stdout
        b = json.loads(out.strip().splitlines()[-1])
        print(
            f"B pipeline input {b['input_size']}, masks {mode}: {b['s_per_frame']:.2f} s/frame "
            f"(masks stage {b['masks_s_per_frame'] * 1000:.0f} ms), peak RSS {b['peak_rss_mib']:.0f} MiB",
            flush=True,
        )

    if not args.skip_a:
        a = part_a(args.frames, args.points_per_side)
        f = a["frames"]
        prompted = sum(r["encoder_s"] + r["prompted_decoder_s"] for r in f)
        auto = sum(r["auto_s"] for r in f)
        print(
            f"A (input 1024, points_per_side {args.points_per_side}): prompted {prompted / len(f):.2f} s/frame "
            f"(decoder only {sum(r['prompted_decoder_s'] for r in f) / len(f):.2f}), automatic {auto / len(f):.2f} "
            f"s/frame, ratio automatic/prompted {auto / prompted:.1f}; prompted recovered by automatic "
            f"{sum(r['prompted_recovered_by_auto'] for r in f)}/{sum(r['boxes'] for r in f)}, automatic recovered "
            f"by prompted {sum(r['auto_recovered_by_prompted'] for r in f)}/{sum(r['auto_masks'] for r in f)}; "
            f"peak RSS {a['peak_rss_mib']:.0f} MiB",
            flush=True,
        )


if __name__ == "__main__":
    main()
