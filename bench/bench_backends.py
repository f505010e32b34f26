"""Eager torch against the optimised backend (OpenVINO on the CPU, TensorRT on CUDA), in one run: the
backbone + adapter alone, then the whole pipeline on 640x480 TUD-Campus frames with the ground-truth
boxes given and with the default detector. Prints per-stage times, fps and the ratios.

    python bench/bench_backends.py [--variant auto] [--input-size 0] [--device cpu] [--backend auto]
                                   [--frames 20] [--warmup 3] [--threads 2] [--no-detector]
                                   [--batch 4] [--only-batch]

Both models are built from the same config and weights (the shipped adapter); only ``model.backend``
differs. Frames are decoded up front; each timed frame goes through the torch model and then the
optimised one, so load from other processes falls on both alike. With the detector, the pipeline
runs it on a worker thread beside the backbone and adapter (its stage time then overlaps theirs); a
third row runs the optimised model with the detector in turn (``Pipeline.detect_beside_features``).
Conversion happens in the warm-up frames (its time is printed, not counted; a cached conversion
loads in well under a second). The largest relative difference between the two pyramids is printed
too. On CUDA the models run in fp16 (``model.fp16``), timings are synchronised and the peak GPU
memory of the whole run (``torch.cuda.max_memory_allocated``, both models loaded) is printed. Not
run on a GPU yet.

Last, batch 1 against batch ``--batch``: the optimised model with the ground-truth boxes given, on
the same frames in the same run, chunk by chunk: each chunk of ``--batch`` frames goes through one
pipeline frame by frame (``Pipeline.process``) and then through another in one
``Pipeline.process_batch`` call. The first chunks (at least one, covering ``--warmup`` frames) are
not timed: the batch's shape is converted there (OpenVINO: once per batch size, then cached on disk;
TensorRT: an engine per batch size, in memory). ``--only-batch`` runs only these rows (with
``--backend torch`` too, e.g. on a GPU without torch-tensorrt).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")

from masa_core import Detections, Pipeline, load_config  # noqa: E402
from masa_core.config import PipelineConfig  # noqa: E402
from masa_core.detectors.factory import build_detector_from_config  # noqa: E402
from masa_core.formats.mot import read_mot  # noqa: E402
from masa_core.models.backends import TORCH, describe, resolve_backend  # noqa: E402
from masa_core.models.build import build_runtime_model  # noqa: E402
from masa_core.pipeline import STAGES  # noqa: E402
from masa_core.video_io import FrameSource  # noqa: E402


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sequence", type=Path, default=REPO / "data" / "mot15" / "TUD-Campus", help="MOT15 folder")
    p.add_argument("--variant", default="auto", help="model.variant (default: what auto picks on the device)")
    p.add_argument("--input-size", type=int, default=0, help="model.input_size (0: the variant's)")
    p.add_argument("--device", default="cpu", help="cpu | cuda")
    p.add_argument("--backend", default="auto", help="the optimised backend (default: auto for the device)")
    p.add_argument("--frames", type=int, default=20, help="timed frames")
    p.add_argument("--warmup", type=int, default=3, help="untimed frames first (conversion happens here)")
    p.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    p.add_argument("--no-detector", action="store_true", help="skip the run with the default detector")
    p.add_argument("--batch", type=int, default=4, help="frames per process_batch call, timed against 1")
    p.add_argument("--only-batch", action="store_true", help="run only the batch 1 / batch N rows")
    return p.parse_args()


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def max_rel_diff(a: list[torch.Tensor], b: list[torch.Tensor]) -> float:
    return max(float((x.float() - y.float()).abs().max() / y.float().abs().max()) for x, y in zip(a, b, strict=True))


def bench_features(pipes: dict[str, Pipeline], frames: list, warmup: int, device: torch.device) -> dict[str, float]:
    """Median ms of backbone + adapter per backend on the preprocessed frames; prints the difference."""
    times: dict[str, list[float]] = {name: [] for name in pipes}
    for i, frame in enumerate(frames):
        pyramids: dict[str, list[torch.Tensor]] = {}
        for name, pipe in pipes.items():
            image = pipe.model.preprocess(frame)[0]
            start = time.perf_counter()
            with torch.inference_mode():
                pyramids[name] = pipe.model.adapter(pipe.model.backbone(image))
            sync(device)
            seconds = time.perf_counter() - start
            if i == 0:
                print(f"  first frame, {name}: {seconds:.1f} s (conversion, or loading it from the cache)")
            if i >= warmup:
                times[name].append(seconds)
        if i == warmup:
            ours, ref = list(pyramids.values())[::-1]
            print(f"  largest relative difference of the pyramids: {max_rel_diff(ours, ref):.1e}")
    return {name: 1000 * statistics.median(t) for name, t in times.items()}


def bench_pipeline(pipes: dict[str, Pipeline], frames: list, boxes: Callable[[int], Detections | None], warmup: int):
    """fps and mean stage ms per backend for whole frames (``boxes(i)``: given boxes or None)."""
    seconds = dict.fromkeys(pipes, 0.0)
    for i, frame in enumerate(frames):
        if i == warmup:
            for pipe in pipes.values():
                pipe.reset()
        for name, pipe in pipes.items():
            start = time.perf_counter()
            pipe.process(frame, boxes(i))
            if i >= warmup:
                seconds[name] += time.perf_counter() - start
    n = len(frames) - warmup
    return {name: (n / s, pipes[name].stats.mean_ms()) for name, s in seconds.items()}


def bench_batch(
    cfg: PipelineConfig,
    model: torch.nn.Module,
    frames: list,
    boxes: Callable[[int], Detections | None],
    warmup: int,
    size: int,
    device: torch.device,
) -> dict[str, tuple[float, dict[str, float]]]:
    """fps and mean stage ms of ``model`` one frame at a time against ``size`` frames per
    :meth:`Pipeline.process_batch` call: the same chunks of ``size`` frames, in turn (a shorter last
    chunk is left out: it would be another shape to convert)."""
    pipes = {1: Pipeline(cfg, model=model), size: Pipeline(cfg, model=model)}
    seconds = dict.fromkeys(pipes, 0.0)
    skip, timed = max(1, -(-warmup // size)), 0
    for c in range(len(frames) // size):
        chunk = range(c * size, (c + 1) * size)
        if c == skip:
            for pipe in pipes.values():
                pipe.reset()
        for batch, pipe in pipes.items():
            start = time.perf_counter()
            if batch == 1:
                for i in chunk:
                    pipe.process(frames[i], boxes(i))
            else:
                pipe.process_batch([frames[i] for i in chunk], [boxes(i) for i in chunk])
            sync(device)
            if c >= skip:
                seconds[batch] += time.perf_counter() - start
        timed += size if c >= skip else 0
    if not timed:
        sys.exit(f"--frames and --warmup give no timed chunk of {size} frames")
    return {f"batch {b}": (timed / s, pipes[b].stats.mean_ms()) for b, s in seconds.items()}


def print_pipeline(title: str, results: dict, baseline: str, label: str = "backend") -> None:
    shown = [s for s in STAGES if any(ms[s] for _, ms in results.values())]
    print(f"\n{title}\n| {label} | fps | ms/frame | " + " | ".join(f"{s} ms" for s in shown) + " |")
    print("|---|---|---|" + "---|" * len(shown))
    for name, (fps, ms) in results.items():
        print(f"| {name} | {fps:.2f} | {1000 / fps:.1f} | " + " | ".join(f"{ms[s]:.1f}" for s in shown) + " |")
    for name, (fps, _) in results.items():
        if name != baseline:
            print(f"ratio {name} / {baseline}: {fps / results[baseline][0]:.2f}x")


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    optimised = resolve_backend(args.backend, device)
    if optimised == TORCH and not args.only_batch:  # the batch rows alone may time torch itself
        sys.exit(f"no optimised backend for {device} here (backend {args.backend} resolves to torch)")
    model_cfg = {"variant": args.variant, "input_size": args.input_size, "device": args.device}
    configs = {b: load_config(overrides={"model": {**model_cfg, "backend": b}}) for b in (TORCH, optimised)}
    video = args.sequence / f"{args.sequence.name}.mp4"
    if args.batch < 2:
        sys.exit(f"--batch {args.batch}: must be >= 2 (it is timed against batch 1)")
    frames = list(FrameSource(video, args.warmup + args.frames))
    gt = read_mot(args.sequence / "gt" / "gt.txt", gt_filter=True)
    pipes = {}
    for name, cfg in configs.items():
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        model = build_runtime_model(cfg.model, cfg.masks.enabled)
        pipes[name] = Pipeline(cfg, model=model)
    print(
        f"torch {torch.__version__}, {args.threads} thread(s), {describe(pipes[optimised].model)}; "
        f"{args.sequence.name} {frames[0].shape[1]}x{frames[0].shape[0]}, {args.frames} frames after "
        f"{args.warmup} warm-up; load average {os.getloadavg()[0]:.1f} at start"
    )

    if not args.only_batch:
        compare_backends(args, configs, pipes, frames, gt, device)
    given = given_boxes(gt)
    results = bench_batch(configs[optimised], pipes[optimised].model, frames, given, args.warmup, args.batch, device)
    print_pipeline(
        f"{optimised}, ground-truth boxes given, one frame at a time against batches:",
        results,
        "batch 1",
        "frames per call",
    )
    if device.type == "cuda":
        print(f"\npeak GPU memory over the run: {torch.cuda.max_memory_allocated(device) / 2**30:.2f} GiB")


def given_boxes(gt: dict) -> Callable[[int], Detections]:
    """The ground-truth boxes of 0-based frame ``i`` (scores clipped to [0, 1])."""

    def given(i: int) -> Detections:
        rows = gt.get(i + 1)
        return Detections.empty() if rows is None else Detections(rows.boxes, rows.scores.clip(0, 1))

    return given


def compare_backends(
    args: argparse.Namespace, configs: dict, pipes: dict, frames: list, gt: dict, device: torch.device
) -> None:
    """Torch against the optimised backend: backbone + adapter, then whole frames (boxes given, detector)."""
    optimised, given = list(configs)[1], given_boxes(gt)
    print("\nbackbone + adapter (median ms per frame):")
    feats = bench_features(pipes, frames, args.warmup, device)
    for name, ms in feats.items():
        print(f"| {name} | {ms:.1f} ms |")
    print(f"ratio {optimised} / torch (backbone + adapter): {feats[TORCH] / feats[optimised]:.2f}x")
    per_frame = sum(len(gt.get(i + 1, [])) for i in range(args.warmup, len(frames))) / args.frames
    results = bench_pipeline(pipes, frames, given, args.warmup)
    print_pipeline(f"whole pipeline, ground-truth boxes given ({per_frame:.1f} per frame):", results, TORCH)
    if not args.no_detector:
        detector = build_detector_from_config(configs[TORCH].detector)
        with_detector = {n: Pipeline(c, detector=detector, model=pipes[n].model) for n, c in configs.items()}
        in_turn = Pipeline(configs[optimised], detector=detector, model=pipes[optimised].model)
        in_turn.detect_beside_features = False
        with_detector[f"{optimised}, detector in turn"] = in_turn
        results = bench_pipeline(with_detector, frames, lambda i: None, args.warmup)
        print_pipeline(f"whole pipeline, detector {configs[TORCH].detector.kind}:", results, TORCH)


if __name__ == "__main__":
    main()
