"""INT8 against fp32 on the CPU, in one run: the default pipeline (OpenVINO, the default detector) with
``model.int8`` off and on, on the same TUD-Campus frames, alternating frame by frame so that load
from other processes falls on both alike. Prints ms/frame, fps and per-stage times of each, the
ratio, and the cosine between the two models' embeddings of the ground-truth boxes.

    python bench/bench_int8.py [--calibration-dir data/train_images] [--frames 24] [--warmup 3]
                               [--input-size 0] [--threads 2]

Calibration: the first 64 images (by name) of ``--calibration-dir``; the default is the adapter's
training images (``python scripts/fetch_train_images.py``), never a TUD frame. Quantizing happens in
the warm-up (once per calibration set, then cached in ``~/.cache/masa_core``).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from masa_core import Pipeline, load_config  # noqa: E402
from masa_core.errors import MasaError  # noqa: E402
from masa_core.formats.mot import read_mot  # noqa: E402
from masa_core.video_io import FrameSource  # noqa: E402
from tests.paths import TUD_CAMPUS_GT, TUD_CAMPUS_VIDEO  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--calibration-dir", type=Path, default=REPO / "data" / "train_images")
    p.add_argument("--frames", type=int, default=24, help="frames timed (default 24)")
    p.add_argument("--warmup", type=int, default=3, help="frames before timing (default 3)")
    p.add_argument("--input-size", type=int, default=0, help="model.input_size (0 = the variant's, 512)")
    p.add_argument("--threads", type=int, default=2, help="torch / OpenVINO threads (default 2)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    model = {"input_size": args.input_size, "device": "cpu", "backend": "openvino"}
    try:
        pipes = {
            "fp32": Pipeline(load_config(None, {"model": model})),
            "int8": Pipeline(
                load_config(None, {"model": {**model, "int8": True, "calibration_dir": str(args.calibration_dir)}})
            ),
        }
    except MasaError as e:
        print(f"bench_int8: {e}", file=sys.stderr)
        return 2
    frames = list(FrameSource(TUD_CAMPUS_VIDEO, args.warmup + args.frames))
    print(f"cosine of the embeddings (fp32, int8) on ground-truth boxes: {cosine(pipes, frames)}")
    times: dict[str, list[float]] = {name: [] for name in pipes}
    for i, frame in enumerate(frames):
        for name, pipe in pipes.items():
            if i == args.warmup:
                pipe.stats = type(pipe.stats)()
            start = time.perf_counter()
            pipe.process(frame)
            if i >= args.warmup:
                times[name].append(time.perf_counter() - start)
    for name, pipe in pipes.items():
        ms = 1000 * statistics.median(times[name])
        stages = ", ".join(f"{k} {v:.1f}" for k, v in pipe.stats.mean_ms().items())
        print(f"{name}: {ms:.1f} ms/frame median ({1000 / ms:.2f} fps); stage means ms: {stages}")
    ratio = statistics.median(times["fp32"]) / statistics.median(times["int8"])
    print(f"speed int8 / fp32: {ratio:.2f}x ({args.frames} frames, default detector, {args.threads} threads)")
    return 0


@torch.inference_mode()
def cosine(pipes: dict[str, Pipeline], frames: list[np.ndarray]) -> str:
    """Min and mean cosine over the ground-truth boxes of every fourth frame."""
    gt = read_mot(TUD_CAMPUS_GT, gt_filter=True)
    sims = []
    for i in range(0, len(frames), 4):
        boxes = torch.from_numpy(gt[i + 1].boxes.astype(np.float32))
        embeds = []
        for pipe in pipes.values():
            image, scale = pipe.model.preprocess(frames[i])
            embeds.append(torch.nn.functional.normalize(pipe.model.embed(pipe.model.features(image), boxes * scale)))
        sims.append((embeds[0] * embeds[1]).sum(1))
    all_sims = torch.cat(sims)
    return f"min {all_sims.min():.4f}, mean {all_sims.mean():.4f} over {len(all_sims)} boxes"


if __name__ == "__main__":
    sys.exit(main())
