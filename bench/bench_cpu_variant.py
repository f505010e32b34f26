"""Frames per second of the whole pipeline (detector + backbone + adapter + embeddings + tracker) on the
CPU for ``masa_mnv2`` and ``masa_mnv2_lite`` (frozen ImageNet MobileNetV2) against the default
``masa_mobilesam``, same frames, same run, same detector, same input size.

    python bench/bench_cpu_variant.py [--sequence data/mot15/TUD-Campus] [--frames 20] [--warmup 2]
                                      [--config config/masa.yaml] [--input-size N] [--threads 2]
                                      [--variants masa_mnv2 masa_mnv2_lite] [--square]

Frames are decoded up front (decoding is not timed); each timed frame goes through both pipelines in
turn (``Pipeline.process``, ``time.perf_counter``), so load from other processes on a shared machine
falls on both alike. The detector is the config's (default ``mediapipe_ssd``, the default config's);
if it cannot be built (asset or runtime missing) the sequence's ground-truth boxes are given instead
and the output says so. Adapters are untrained (seeded): time does not depend on the weights. Prints
per-stage mean milliseconds, fps of each variant and each one's speed-up over ``masa_mobilesam``.
The MobileNetV2 variants pad the resized frame to a multiple of 32 (``MasaModel.pad_multiple``);
``--square`` adds each of them once more padded to the S×S square as ``masa_mobilesam`` is, to show
how much of the speed-up that padding gives.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")

from masa_core import Detections, Pipeline, load_config  # noqa: E402
from masa_core.detectors.factory import build_detector_from_config  # noqa: E402
from masa_core.formats.mot import read_mot  # noqa: E402
from masa_core.pipeline import STAGES  # noqa: E402
from masa_core.video_io import FrameSource  # noqa: E402

BASELINE = "masa_mobilesam"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sequence", type=Path, default=REPO / "data" / "mot15" / "TUD-Campus", help="MOT15 folder")
    p.add_argument("--frames", type=int, default=20, help="timed frames")
    p.add_argument("--warmup", type=int, default=2, help="untimed frames before them")
    p.add_argument("--config", type=Path, default=None, help="pipeline YAML (default: the built-in config/masa.yaml)")
    p.add_argument("--input-size", type=int, default=None, help="model input side (default: the config's)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--variants", nargs="+", default=["masa_mnv2", "masa_mnv2_lite"], help="compared with the baseline")
    p.add_argument("--square", action="store_true", help="also time each variant on the S×S square input")
    args = p.parse_args()
    torch.set_num_threads(args.threads)

    seq = args.sequence
    video = seq / f"{seq.name}.mp4"
    frames = list(FrameSource(video, args.warmup + args.frames))
    if len(frames) < args.warmup + args.frames:
        sys.exit(f"{video} has only {len(frames)} frames, {args.warmup + args.frames} needed")
    gt = read_mot(seq / "gt" / "gt.txt", gt_filter=True)

    model = {"device": "cpu", "checkpoint": "untrained"}
    if args.input_size is not None:
        model["input_size"] = args.input_size
    configs = {v: load_config(args.config, {"model": {**model, "variant": v}}) for v in (BASELINE, *args.variants)}
    config = configs[BASELINE]
    detector = None
    try:  # one detector object for both pipelines
        detector = build_detector_from_config(config.detector)
        source = f"detector {config.detector.kind} ({type(detector).__name__})"
    except Exception as e:  # any failure to build it means: give the ground-truth boxes instead
        source = f"ground-truth boxes given (detector {config.detector.kind} unavailable: {e})"
    given = detector is None
    pipes = {v: Pipeline(c, detector=detector) for v, c in configs.items()}
    compared = list(args.variants)
    if args.square:
        for v in args.variants:
            pipe = Pipeline(configs[v], detector=detector)
            pipe.model.pad_multiple = None
            pipes[f"{v}, square input"] = pipe
            compared.append(f"{v}, square input")

    def boxes_of(index: int) -> Detections | None:
        if not given:
            return None
        rows = gt.get(index + 1)
        return Detections.empty() if rows is None else Detections(rows.boxes, rows.scores.clip(0, 1))

    seconds = dict.fromkeys(pipes, 0.0)
    tracks = dict.fromkeys(pipes, 0)
    for i, frame in enumerate(frames):
        if i == args.warmup:
            for pipe in pipes.values():
                pipe.stats = type(pipe.stats)()
        for name, pipe in pipes.items():
            start = time.perf_counter()
            result = pipe.process(frame, boxes_of(i))
            if i >= args.warmup:
                seconds[name] += time.perf_counter() - start
                tracks[name] += len(result.tracks)

    print(
        f"torch {torch.__version__}, {args.threads} thread(s), input {config.model.input_size} px, "
        f"{seq.name} frames {args.warmup + 1}-{args.warmup + args.frames} after {args.warmup} warm-up, "
        f"{source}, untrained adapters"
    )
    shown = [s for s in STAGES if any(pipe.stats.seconds[s] for pipe in pipes.values())]
    print("| variant | fps | s/frame | tracks/frame | " + " | ".join(f"{s} ms" for s in shown) + " |")
    print("|---|---|---|---|" + "---|" * len(shown))
    fps = {}
    for name, pipe in pipes.items():
        fps[name] = args.frames / seconds[name]
        stages = pipe.stats.mean_ms()
        print(
            f"| {name} | {fps[name]:.2f} | {seconds[name] / args.frames:.3f} | {tracks[name] / args.frames:.1f} | "
            + " | ".join(f"{stages[s]:.1f}" for s in shown)
            + " |"
        )
    for name in compared:
        print(f"speed-up {name} / {BASELINE}: {fps[name] / fps[BASELINE]:.1f}x (target >= 10x)")


if __name__ == "__main__":
    main()
