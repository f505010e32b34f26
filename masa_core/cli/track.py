"""``masa-track``: track a video file or an image folder and write MOTChallenge results and an
annotated MP4.

    masa-track INPUT [--detections MOTFILE] [--output RESULTS.txt] [--video OUT.mp4] [--config FILE]
               [--masks] [--variant masa_r50 --checkpoint masa_r50.pth] [--backend torch] [--batch N]

With no options on a CPU it runs ``masa_mnv2_lite`` at 512 px through OpenVINO (the fast
settings, docs/benchmarks.md); ``--config config/masa_reference.yaml`` runs the most accurate CPU
settings instead (``masa_mnv2`` at 1024 px in torch, about 13 s per frame). ``--batch N`` reads N
frames at a time and runs the backbone and adapter once on all of them (``Pipeline.process_batch``;
the same tracks as one at a time, docs/benchmarks.md for what it buys).

With ``--masks`` each track also gets a SAM box-prompted instance mask: they are drawn in the MP4
and written as a MOTS file (``frame id class_id img_h img_w rle``) next to the results, named
``<results stem>.mots.txt``; see docs/masks.md.

Outputs are checked to be writable before the run, written under temporary names and moved into
place only when the whole run succeeds. A video that ends before the frame count its container
declares is an error unless ``--accept-short-video``. User errors exit with code 2 and one line.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from masa_core.cli.common import (
    AtomicOutput,
    OneLineParser,
    UsageError,
    check_text_file,
    positive_int,
    report_error,
)
from masa_core.config import PipelineConfig, load_config
from masa_core.errors import MasaError
from masa_core.formats.mot import MotRows, write_mot
from masa_core.formats.rle import MOTS_PEDESTRIAN, MotsObject, remove_overlaps, write_mots
from masa_core.models.backends import describe
from masa_core.pipeline import STAGES, Pipeline, Track
from masa_core.segmentation.box_prompt import paste_mask
from masa_core.video_io import FrameSource, VideoError, VideoWriter
from masa_core.visualize import TrackPainter


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = OneLineParser(prog="masa-track", description=__doc__.split("\n\n")[0])
    p.add_argument("input", type=Path, help="video file or folder of images")
    p.add_argument("--detections", type=Path, help="MOTChallenge det/gt file: track these boxes (given observations)")
    p.add_argument("--output", type=Path, help="MOTChallenge results file (default runs/<input>/results.txt)")
    p.add_argument("--video", type=Path, help="annotated MP4 (default runs/<input>/tracks.mp4)")
    p.add_argument("--no-video", action="store_true", help="do not write the annotated MP4")
    p.add_argument("--config", type=Path, help="YAML config (default: the built-in one, see config/masa.yaml)")
    p.add_argument("--detector", help="detector kind: mediapipe_ssd (default), hog, yolo, grounding_dino")
    p.add_argument("--device", help="auto | cpu | cuda")
    p.add_argument(
        "--input-size",
        type=int,
        help="model input side in pixels, a multiple of 64 (of 32 for masa_mnv2*); 0 = the variant's (512 or 1024)",
    )
    p.add_argument(
        "--variant",
        help="model: auto (default: masa_mobilesam on CUDA or with --masks, masa_mnv2_lite on the CPU), "
        "masa_mobilesam, masa_mnv2, masa_mnv2_lite, masa_r50, masa_sam_b, masa_sam_h",
    )
    p.add_argument(
        "--backend",
        help="backbone + adapter runtime: auto (default: openvino on the CPU, tensorrt on CUDA where installed, "
        "else torch) | torch | openvino | tensorrt",
    )
    p.add_argument("--checkpoint", help="MASA weights: an official MASA checkpoint or one saved by masa_core")
    p.add_argument("--backbone-checkpoint", help="backbone weights: SAM's sam_vit_{b,h}_*.pth for masa_sam_{b,h}")
    p.add_argument("--masks", action="store_true", help="segment each track (SAM box prompts); write a MOTS file")
    p.add_argument("--max-frames", type=positive_int, help="stop after this many frames")
    p.add_argument(
        "--batch",
        type=positive_int,
        default=1,
        help="frames per backbone + adapter call (default 1; the tracks are the same, docs/benchmarks.md)",
    )
    p.add_argument(
        "--accept-short-video",
        action="store_true",
        help="track a video that ends before the frame count its container declares (else an error)",
    )
    p.add_argument("--gt", type=Path, help="MOTChallenge ground truth: print HOTA / IDF1 / MOTA at the end")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p.parse_args(argv)


def overrides_from(args: argparse.Namespace) -> dict[str, Any]:
    """Nested config overrides for the options given on the command line."""
    model: dict[str, Any] = {}
    detector: dict[str, Any] = {}
    if args.device:
        model["device"] = args.device
    if args.input_size is not None:
        model["input_size"] = args.input_size
    if getattr(args, "variant", None):
        model["variant"] = args.variant
    if getattr(args, "backend", None):
        model["backend"] = args.backend
    if args.checkpoint:
        model["checkpoint"] = args.checkpoint
    if getattr(args, "backbone_checkpoint", None):
        model["backbone_checkpoint"] = args.backbone_checkpoint
    if args.detector:
        detector["kind"] = args.detector
    overrides: dict[str, Any] = {"model": model, "detector": detector}
    if getattr(args, "masks", False):
        overrides["masks"] = {"enabled": True}
    if args.detections:
        # the file's boxes as they are: no tiles, no SSD thresholds from the config
        detector.update(kind="given", detections_file=str(args.detections), tile_size=None, class_score_thr=[])
    return overrides


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Track ``args.input``; returns the summary that :func:`main` prints."""
    for path, what in ((args.detections, "detections file"), (args.gt, "ground truth file")):
        if path is not None:
            check_text_file(path, what)
    cfg: PipelineConfig = load_config(args.config, overrides_from(args))
    source = FrameSource(args.input, args.max_frames)
    outputs = prepare_outputs(args, cfg)
    try:
        summary = track(args, cfg, source, outputs)
        for out in outputs.values():
            out.commit()
    finally:
        for out in outputs.values():
            out.discard()
    if args.gt:
        from masa_core.eval.metrics import evaluate_mot

        summary["metrics"] = evaluate_mot(args.gt, outputs["results"].path, num_frames=summary["frames"])
    return summary


def prepare_outputs(args: argparse.Namespace, cfg: PipelineConfig) -> dict[str, AtomicOutput]:
    """The output files (results, MOTS with masks, video unless --no-video), checked writable now."""
    run_dir = Path("runs") / args.input.stem
    results = args.output or run_dir / "results.txt"
    paths = {"results": (results, "results file")}
    if cfg.masks.enabled:
        paths["mots"] = (results.with_suffix(".mots.txt"), "MOTS file")
    if not args.no_video:
        paths["video"] = (args.video or run_dir / "tracks.mp4", "video")
    outputs: dict[str, AtomicOutput] = {}
    try:
        for key, (path, what) in paths.items():
            outputs[key] = AtomicOutput(path, what)
    except UsageError:
        for out in outputs.values():
            out.discard()
        raise
    return outputs


def track(
    args: argparse.Namespace, cfg: PipelineConfig, source: FrameSource, outputs: dict[str, AtomicOutput]
) -> dict[str, Any]:
    """Run the pipeline over ``source``, writing into the outputs' temporary files; the summary."""
    pipeline = Pipeline(cfg)
    if not args.quiet:
        print(f"masa-track: {describe(pipeline.model)}", file=sys.stderr, flush=True)
    painter = TrackPainter()
    rows: dict[int, MotRows] = {}
    ids: set[int] = set()
    mots: list[MotsObject] = []
    writer = VideoWriter(outputs["video"].tmp, source.fps) if "video" in outputs else None
    start = time.perf_counter()
    try:
        progress = tqdm(total=len(source), unit="frame", disable=args.quiet, desc="masa-track")
        for frames in batched(source, args.batch):
            # a shorter last batch goes frame by frame: no conversion for another batch size
            results = pipeline.process_batch(frames) if len(frames) == args.batch else map(pipeline.process, frames)
            for frame, result in zip(frames, results, strict=True):
                tracks = result.tracks
                ids.update(t.id for t in tracks)
                rows[result.frame_index] = MotRows.from_tracks(tracks)
                if "mots" in outputs:
                    mots.extend(mots_objects(result.frame_index + 1, tracks, frame.shape[0], frame.shape[1]))
                if writer:
                    writer.write(painter.draw(frame, tracks))
            progress.update(len(frames))
        progress.close()
    finally:
        if writer:
            writer.close()
    elapsed = time.perf_counter() - start
    short = source.shortfall()
    if short and not args.accept_short_video:
        raise VideoError(f"{short}; nothing written (--accept-short-video tracks the frames there are)")
    if short:
        print(f"masa-track: warning: {short}", file=sys.stderr)
    write_mot(outputs["results"].tmp, rows, zero_based=True)
    if "mots" in outputs:
        write_mots(outputs["mots"].tmp, mots)
    stats = pipeline.stats
    return {
        "frames": stats.frames,
        "seconds": elapsed,
        "fps": stats.frames / elapsed if elapsed else 0.0,
        "tracks": len(ids),
        "boxes_in": stats.boxes_in,
        "boxes_dropped": stats.boxes_dropped,
        "ms_per_frame": stats.mean_ms(),
        "results": str(outputs["results"].path),
        "video": str(outputs["video"].path) if "video" in outputs else None,
        "mots": str(outputs["mots"].path) if "mots" in outputs else None,
        "device": str(pipeline.model.device),
        "input_size": pipeline.model.input_size,
        "runtime": describe(pipeline.model),
    }


def batched(frames: Iterable[np.ndarray], size: int) -> Iterator[list[np.ndarray]]:
    """``frames`` in lists of ``size`` (the last one shorter), read as they are needed."""
    it = iter(frames)
    while chunk := list(itertools.islice(it, size)):
        yield chunk


def mots_objects(frame: int, tracks: list[Track], height: int, width: int) -> list[MotsObject]:
    """MOTS rows (1-based ``frame``, id = track id + 1, class 2) for the tracks that have a mask,
    overlaps given to the higher-scoring track as MOTS requires."""
    masked = [t for t in tracks if t.mask is not None]
    full = [paste_mask(t.mask, t.box, height, width) for t in masked if t.mask is not None]
    disjoint = remove_overlaps(full, [t.score for t in masked])
    return [MotsObject(frame, t.id + 1, MOTS_PEDESTRIAN, m) for t, m in zip(masked, disjoint, strict=True)]


def format_summary(s: dict[str, Any]) -> str:
    lines = [
        f"frames: {s['frames']} in {s['seconds']:.1f} s ({s['fps']:.2f} fps) on {s['device']}, "
        f"input {s['input_size']} px",
        f"{s['runtime']}",
        f"tracks: {s['tracks']}; boxes in: {s['boxes_in']}, dropped as invalid: {s['boxes_dropped']}",
        "ms per frame: "
        + ", ".join(f"{k} {s['ms_per_frame'][k]:.1f}" for k in STAGES)
        + f"; total {1000 / s['fps'] if s['fps'] else 0.0:.1f}",
        f"results: {s['results']}"
        + (f"; masks (MOTS): {s['mots']}" if s.get("mots") else "")
        + (f"; video: {s['video']}" if s["video"] else ""),
    ]
    if "metrics" in s:
        m = s["metrics"]
        lines.append(f"HOTA {m['HOTA']:.3f}  IDF1 {m['IDF1']:.3f}  MOTA {m['MOTA']:.3f}  IDSW {int(m['IDSW'])}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        summary = run(args)
    except MasaError as e:
        return report_error("masa-track", e)
    print(format_summary(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
