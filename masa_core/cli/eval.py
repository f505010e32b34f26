"""``masa-eval``: run trackers on MOTChallenge sequences and score them (HOTA, MOTA, IDF1, TETA).

    masa-eval SEQUENCE_DIR [SEQUENCE_DIR ...] [--trackers iou bytetrack ...] [--out runs/eval]
              [--drop 0.2] [--jitter 0.05] [--fp-rate 1] [--degrade-seed 0] [--max-frames N]
              [--masa-detector] [--config FILE] [--input-size N] [--checkpoint ADAPTER.pt] [--backend B]

A sequence folder holds ``<name>.mp4`` (or ``img1/`` with images) and ``gt/gt.txt``. Every tracker
gets the same boxes: the filtered ground truth (score 1), degraded when --drop / --jitter /
--fp-rate are given (seeded; the gt they are scored against is unchanged). Trackers: masa (MASA
pipeline), iou (IoU + Hungarian), reid (crop ReID + MASA tracker), bytetrack, ocsort, botsort
(boxmot peers, motion only). With --masa-detector MASA finds its own boxes with the configured
detector instead (--config), so its row measures detection too.

Writes to --out: ``<sequence>/<tracker>[_<tag>].txt`` (MOTChallenge results) and ``.json`` (the
row, all metrics, MASA's stage times) as each run finishes, then ``results.md`` / ``results.csv``
(per sequence and, for several sequences, a pooled ``COMBINED`` row per tracker; HOTA, DetA,
AssA, IDF1, MOTA, IDSW, TETA), ``metrics.png`` and ``id_switches_<sequence>.png``. The per-run
table (with ms/frame) is printed to stdout. Exit code 2 for bad inputs or settings.

This command runs every tracker in its own process and needs no ROS. The MASA tracker *node*
(ROS 2, over DDS) is evaluated the same way by ``masa-ros-eval --live`` (docs/evaluation.md); that
command reuses :func:`run` and :func:`main` here with its own ``track`` function.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from masa_core.cli.common import OneLineParser, check_text_file, check_writable_folder, report_error
from masa_core.config import PipelineConfig, load_config
from masa_core.errors import MasaError
from masa_core.eval.degrade import Degradation
from masa_core.eval.detection_metrics import pool, score_detection_file
from masa_core.eval.given_boxes import (
    PIPELINE_TRACKERS,
    TRACKERS,
    GivenBoxesResult,
    detect_sequence,
    pedestrian_config,
    run_name,
    track_given_boxes,
)
from masa_core.eval.metrics import evaluate_mot_many, format_table, id_switches_per_frame
from masa_core.eval.protocol import run_protocol
from masa_core.eval.report import COMBINED, write_report, write_tables
from masa_core.formats.mot import read_mot
from masa_core.models.build import resolve_input_size, resolve_variant
from masa_core.video_io import FrameSource

COLUMNS = ("HOTA", "DetA", "AssA", "IDF1", "MOTA", "IDSW")
DETECTION_COLUMNS = ("AP50", "precision", "recall", "score_thr", "TP", "FP", "duplicates", "FN", "GT")
REPORT_COLUMNS = (*COLUMNS, "TETA", "TETA_LocA", "TETA_AssocA", "TETA_ClsA")
LIVE_HINT = (
    "--live is masa-ros-eval's: masa-eval runs the trackers in this process and needs no ROS; "
    "to evaluate the tracker node over DDS run masa-ros-eval --live SEQUENCE_DIR ... (docs/evaluation.md)"
)
# track(frames, gt_file, tracker, *, config, max_frames, results_file, progress, degradation, sequence,
# own_detector) -> GivenBoxesResult: how one tracker runs on one sequence (see run()).
TrackFn = Callable[..., GivenBoxesResult]


class SequenceError(MasaError, ValueError):
    """A sequence folder lacks its frames or its ground truth."""


def sequence_inputs(folder: Path) -> tuple[Path, Path]:
    """(frames, gt file) of a MOTChallenge sequence folder: ``<name>.mp4`` or ``img1/``, and ``gt/gt.txt``."""
    if not folder.is_dir():
        raise SequenceError(f"sequence folder {folder} not found (or not a folder)")
    video = folder / f"{folder.name}.mp4"
    frames = video if video.is_file() else folder / "img1"
    if not frames.exists():
        raise SequenceError(f"sequence {folder}: neither {video.name} nor img1/ found")
    gt = folder / "gt" / "gt.txt"
    if not gt.is_file():
        raise SequenceError(f"sequence {folder}: ground truth {gt} not found")
    return frames, check_text_file(gt, "ground truth")


def model_input_size(config: PipelineConfig | None) -> int:
    """The input side the MASA model of ``config`` runs at (0 without one)."""
    if config is None:
        return 0
    return resolve_input_size(dataclasses.replace(config.model, variant=resolve_variant(config.model)))


def tracker_name(tracker: str, input_size: int, masa_name: str, own_detector: bool = False, via: str = "") -> str:
    """The tracker's name in tables and plots; ``via`` names how MASA ran when not in this process."""
    details = ", ".join(d for d in (masa_name, f"{input_size}px", "own detector" if own_detector else "", via) if d)
    names = {
        "masa_sort": f"MASA-SORT ({details})",
        "masa": f"MASA ({details})",
        "iou": "IoU + Hungarian",
        "reid": "crop-ReID + MASA tracker",
        "bytetrack": "ByteTrack (boxmot)",
        "ocsort": "OC-SORT (boxmot)",
        "botsort": "BoT-SORT (boxmot, no ReID)",
    }
    return names[tracker]


def table_row(run: GivenBoxesResult, name: str) -> dict[str, Any]:
    """One row of the printed table: sequence, tracker, frames, [given], metrics, ms/frame."""
    row: dict[str, Any] = {"sequence": run.sequence, "tracker": name, "frames": run.frames}
    if not run.degradation.is_identity:
        row["given"] = "own detector" if run.own_detector else run.degradation.tag
    row.update({k: run.metrics[k] for k in COLUMNS})
    row["ms/frame"] = run.ms_per_frame
    if run.lost_frames is not None:
        row["lost"] = len(run.lost_frames)
    return row


def report(runs: list[GivenBoxesResult], names: dict[str, str], out_dir: Path) -> list[Path]:
    """Tables with a pooled ``COMBINED`` row per tracker (when it ran on several sequences) and the plots.

    names: {tracker kind: display name}. Runs through a transport (the ROS node) add a ``lost``
    column: frames whose output never came back (summed in ``COMBINED``).
    """
    results: dict[str, dict[str, dict[str, float]]] = {}
    switches: dict[str, dict[str, Any]] = {}
    transported = any(r.lost_frames is not None for r in runs)
    for run in runs:
        assert run.gt_file is not None
        lost = {"lost": len(run.lost_frames)} if run.lost_frames is not None else {}
        results.setdefault(names[run.tracker], {})[run.sequence] = {**run.metrics, **lost}
        gt = read_mot(run.gt_file, gt_filter=True)
        switches.setdefault(run.sequence, {})[names[run.tracker]] = id_switches_per_frame(gt, run.rows, run.frames)
    for tracker in dict.fromkeys(r.tracker for r in runs):
        mine = [r for r in runs if r.tracker == tracker]
        if len(mine) > 1:
            pairs = {r.sequence: (r.gt_file, r.results_file) for r in mine}
            combined = evaluate_mot_many(pairs, COMBINED, with_teta=True)[COMBINED]
            if transported:
                combined["lost"] = sum(len(r.lost_frames or ()) for r in mine)
            results[names[tracker]][COMBINED] = combined
    return write_report(results, out_dir, switches, (*REPORT_COLUMNS, "lost") if transported else REPORT_COLUMNS)


def offline_track(config: PipelineConfig | None, cache_frames: int = 0) -> TrackFn:
    """:func:`track_given_boxes` in this process, with one MASA pipeline (built here from ``config``
    when given, reset per sequence) for all sequences: the model is built once. cache_frames: the
    pipeline keeps the features of this many frames, so runs over the same frames with other boxes
    (trackers, degradations) skip the backbone."""
    pipeline = None
    if config is not None:
        from masa_core.pipeline import Pipeline

        pipeline = Pipeline(config)
        pipeline.feature_cache_size = cache_frames

    def track(*args: Any, config: PipelineConfig | None = None, **kwargs: Any) -> GivenBoxesResult:
        return track_given_boxes(*args, pipeline=pipeline, **kwargs)

    return track


def parse_args(
    argv: list[str] | None, default_sequences: list[Path] | None = None, prog: str = "masa-eval"
) -> argparse.Namespace:
    p = OneLineParser(prog=prog, description=__doc__.split("\n\n")[0])
    nargs = "*" if default_sequences else "+"
    p.add_argument("sequences", type=Path, nargs=nargs, help="MOTChallenge sequence folders")
    p.add_argument("--sequences", dest="sequences_opt", type=Path, nargs="+", help=argparse.SUPPRESS)
    p.add_argument("--trackers", nargs="+", choices=TRACKERS, default=list(TRACKERS), help="default: all")
    p.add_argument("--out", "--results-dir", dest="out", type=Path, default=Path("runs/eval"), help="output folder")
    p.add_argument("--report", type=Path, help="tables and plots here instead of --out")
    p.add_argument("--max-frames", type=int, help="only the first frames of each sequence (and their gt)")
    p.add_argument("--drop", type=float, default=0.0, help="probability of removing each given box")
    p.add_argument("--jitter", type=float, default=0.0, help="box noise std, relative to the box size")
    p.add_argument("--fp-rate", type=float, default=0.0, help="mean false-positive boxes added per frame")
    p.add_argument("--degrade-seed", type=int, default=0, help="seed of the degradations")
    p.add_argument(
        "--protocol",
        action="store_true",
        help="clean boxes, then the light / medium / heavy degradations with each of --seeds (docs/evaluation.md)",
    )
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="--protocol: degradation seeds")
    p.add_argument("--masa-detector", action="store_true", help="MASA uses its own detector, not the given boxes")
    p.add_argument(
        "--detector-boxes",
        action="store_true",
        help="every tracker gets the configured detector's boxes (--config), not the ground truth",
    )
    p.add_argument("--config", type=Path, help="MASA pipeline YAML config (detector, model, tracker)")
    p.add_argument(
        "--input-size", type=int, help="MASA model input side (multiple of 64); default: the config's (CPU default 512)"
    )
    p.add_argument("--device", default="cpu", help="MASA device: cpu | cuda | auto")
    p.add_argument("--backend", help="MASA backbone + adapter runtime: auto (default) | torch | openvino | tensorrt")
    p.add_argument(
        "--checkpoint",
        default="",
        help="MASA adapter: a file, 'untrained', or '' for the shipped adapter (default)",
    )
    p.add_argument("--label", default="", help="name of the MASA adapter in the table")
    p.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0: torch default)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--live", action="store_true", help="not here: the ROS node is evaluated by masa-ros-eval --live")
    args = p.parse_args(argv)
    if args.live:
        p.error(LIVE_HINT)
    args.sequences = [*args.sequences, *(args.sequences_opt or [])] or list(default_sequences or [])
    if not args.sequences:
        p.error("no sequence folders given")
    if args.detector_boxes and (args.masa_detector or args.drop or args.jitter or args.fp_rate or args.protocol):
        p.error("--detector-boxes gives every tracker the detector's boxes: not with --masa-detector or degradations")
    if args.max_frames is not None and args.max_frames < 1:
        p.error(f"--max-frames {args.max_frames}: must be >= 1")
    try:
        args.degradation = Degradation(args.drop, args.jitter, args.fp_rate, args.degrade_seed)
    except ValueError as err:
        p.error(str(err))
    return args


def masa_config(args: argparse.Namespace) -> PipelineConfig | None:
    """The MASA pipeline's config from --config and the model flags; None when no pipeline tracker runs."""
    if not set(PIPELINE_TRACKERS) & set(args.trackers):
        return None
    overrides = {"model": {"device": args.device, "checkpoint": args.checkpoint}}
    if args.input_size is not None:
        overrides["model"]["input_size"] = args.input_size
    if args.backend:
        overrides["model"]["backend"] = args.backend
    return load_config(args.config, overrides)


def run_protocol_steps(args: argparse.Namespace, track: TrackFn | None = None, via: str = "") -> Path:
    """``--protocol``: clean boxes and every strength x seed, one pipeline (and feature cache) for all."""
    frames = sum(len(FrameSource(sequence_inputs(f)[0], args.max_frames)) for f in args.sequences)
    track = track or offline_track(masa_config(args), cache_frames=frames)
    out = args.out

    def step(degradation: Degradation, step_dir: Path) -> Path:
        args.degradation, args.out, args.report = degradation, step_dir, None
        run(args, track, via)
        return step_dir / "results.csv"

    rows, path = run_protocol(args.seeds, out, step)
    print(format_table(rows))
    return path


def run(
    args: argparse.Namespace, track: TrackFn | None = None, via: str = ""
) -> tuple[list[dict[str, Any]], list[GivenBoxesResult], list[Path]]:
    """Every tracker on every sequence; returns the printed rows, the runs and the report files.

    track: how each run is made (default: :func:`track_given_boxes` in this process, with one MASA
    pipeline for all sequences); ``masa-ros-eval --live`` passes the ROS node's, and ``via`` for
    the names in the tables. It gets the validated MASA config as ``config`` (None without MASA).
    """
    inputs = [(folder, *sequence_inputs(folder)) for folder in args.sequences]  # check all before running
    for folder in {args.out, args.report or args.out}:
        check_writable_folder(folder, "output folder")
    names = {folder.name for folder in args.sequences}
    if len(names) < len(args.sequences):
        raise SequenceError("two sequence folders have the same name; results would overwrite each other")
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    masa_name = args.label or (f"adapter {args.checkpoint}" if args.checkpoint else "shipped adapter")
    config = masa_config(args)
    size = model_input_size(config)
    display = {t: tracker_name(t, size, masa_name, args.masa_detector, via) for t in args.trackers}
    track = track or offline_track(config, cache_frames=sum(len(FrameSource(f, args.max_frames)) for _, f, _ in inputs))
    rows: list[dict[str, Any]] = []
    runs: list[GivenBoxesResult] = []
    detected: dict[str, tuple] = {}
    if args.detector_boxes and pedestrian_config(load_config(args.config))[1]:
        print(
            "masa-eval: --detector-boxes: the detector keeps its person class only (MOTChallenge ground "
            "truth holds pedestrians; set detector.classes in --config to choose)",
            file=sys.stderr,
        )
    for folder, frames, gt in inputs:
        given_file, given_score_thr = None, None
        if args.detector_boxes:
            given_file, given_score_thr, detected[folder.name] = run_detector(args, folder.name, frames, gt)
        for tracker in args.trackers:
            own = args.masa_detector and tracker in PIPELINE_TRACKERS
            out = args.out / folder.name / f"{run_name(tracker, args.degradation, own)}.txt"
            result = track(
                frames,
                gt,
                tracker,
                config=config,
                max_frames=args.max_frames,
                results_file=out,
                progress=not args.quiet,
                degradation=args.degradation,
                sequence=folder.name,
                own_detector=own,
                given_file=given_file,
                given_score_thr=given_score_thr,
            )
            row = table_row(result, display[tracker])
            rows.append(row)
            runs.append(result)
            record_run(result, row, out.with_suffix(".json"))
    files = report(runs, display, args.report or args.out)
    if detected:
        files += detection_report(detected, detector_label(args), args.report or args.out)
    return rows, runs, files


def record_run(result: GivenBoxesResult, row: dict[str, Any], json_file: Path) -> None:
    """Write one run's row, metrics and stage times to ``json_file`` and say it is done on stderr."""
    saved = {**row, "metrics": result.metrics, "stage_ms": result.stage_ms}
    if result.lost_frames is not None:
        saved["lost_frames"] = result.lost_frames
    json_file.write_text(json.dumps(saved, indent=2))
    stages = ", ".join(f"{k} {v:.0f}" for k, v in result.stage_ms.items())
    print(
        f"done {result.sequence} {result.tracker}: HOTA {result.metrics['HOTA']:.3f} "
        f"IDF1 {result.metrics['IDF1']:.3f} IDSW {result.metrics['IDSW']:.0f}, "
        f"{result.ms_per_frame:.1f} ms/frame"
        + (f" ({stages} ms)" if stages else "")
        + (f", {len(result.lost_frames)} frames lost" if result.lost_frames else ""),
        file=sys.stderr,
        flush=True,
    )


def detector_label(args: argparse.Namespace) -> str:
    """The detector's name in the detection table: kind, classes kept, tiles."""
    cfg = pedestrian_config(load_config(args.config))[0].detector
    tiles = f"tiles {cfg.tiles():g}" if cfg.tiles() else "whole frame"
    return ", ".join([cfg.kind, *cfg.classes, tiles])


def run_detector(args: argparse.Namespace, name: str, frames: Path, gt: Path) -> tuple[Path, float | None, tuple]:
    """``--detector-boxes``: the configured detector (kept to the person class, as the ground truth
    is pedestrians) on one sequence; returns its det file, its operating threshold and
    (detection metrics, the sequence for pooling)."""
    config = pedestrian_config(load_config(args.config, {"model": {"device": args.device}}))[0]
    det_file, score_thr = detect_sequence(frames, config, args.out / name / "detections.txt", args.max_frames)
    count = len(FrameSource(frames, args.max_frames))
    metrics, sequence = score_detection_file(det_file, gt, count, score_thr or 0.0)
    print(
        f"done {name} detector: AP50 {metrics.ap50:.3f}, at its threshold {metrics.score_thr:.2f}: "
        f"precision {metrics.precision:.3f} recall {metrics.recall:.3f}",
        file=sys.stderr,
        flush=True,
    )
    return det_file, score_thr, (metrics, sequence)


def detection_report(detected: dict[str, tuple], label: str, out_dir: Path) -> list[Path]:
    """``detection.md`` / ``.csv``: AP50, precision and recall at the operating threshold per
    sequence and, for several, pooled (``COMBINED``); the table is printed too."""
    per_seq = {name: metrics.as_dict() for name, (metrics, _) in detected.items()}
    if len(detected) > 1:
        thr = next(iter(detected.values()))[0].score_thr
        per_seq[COMBINED] = pool([seq for _, seq in detected.values()], thr).as_dict()
    md, csv_path = write_tables({label: per_seq}, out_dir, "detection", DETECTION_COLUMNS)
    print(md.read_text(), end="")
    return [md, csv_path]


def main(
    argv: list[str] | None = None,
    default_sequences: list[Path] | None = None,
    track: TrackFn | None = None,
    via: str = "",
    prog: str = "masa-eval",
) -> int:
    """Exit code 0; 2 for bad inputs or settings; 1 when frames were lost (a ``track`` through a
    transport got no output for them: they are scored as missed and listed in the .json)."""
    args = parse_args(argv, default_sequences, prog)
    if args.protocol:
        try:
            print(f"wrote {run_protocol_steps(args, track, via)}", file=sys.stderr)
        except MasaError as err:
            return report_error(prog, err)
        return 0
    try:
        rows, runs, files = run(args, track, via)
    except MasaError as err:
        return report_error(prog, err)
    print(format_table(rows))
    for path in files:
        print(f"wrote {path}", file=sys.stderr)
    lossy = [r for r in runs if r.lost_frames]
    for r in lossy:
        shown = ", ".join(map(str, r.lost_frames[:20])) + (", ..." if len(r.lost_frames) > 20 else "")
        print(
            f"{prog}: error: {r.sequence} {r.tracker}: {len(r.lost_frames)} of {r.frames} frames lost "
            f"(no tracks came back; scored as missed): frames {shown}",
            file=sys.stderr,
        )
    return 1 if lossy else 0


if __name__ == "__main__":
    sys.exit(main())
