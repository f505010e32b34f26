"""``masa-eval``: run trackers on MOTChallenge sequences and score them (HOTA, MOTA, IDF1, TETA).

    masa-eval SEQUENCE_DIR [SEQUENCE_DIR ...] [--trackers iou bytetrack ...] [--out runs/eval]
              [--drop 0.2] [--jitter 0.05] [--fp-rate 1] [--degrade-seed 0] [--max-frames N]
              [--masa-detector] [--config FILE] [--input-size 512] [--checkpoint ADAPTER.pt]

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
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import torch

from masa_core.assets import AssetError
from masa_core.config import ConfigError, load_config
from masa_core.eval.degrade import Degradation
from masa_core.eval.given_boxes import TRACKERS, GivenBoxesResult, run_name, track_given_boxes
from masa_core.eval.metrics import evaluate_mot_many, format_table, id_switches_per_frame
from masa_core.eval.mot_format import MotFormatError, read_mot
from masa_core.eval.report import COMBINED, write_report
from masa_core.models.checkpoint import CheckpointError
from masa_core.video_io import VideoError

COLUMNS = ("HOTA", "DetA", "AssA", "IDF1", "MOTA", "IDSW")
REPORT_COLUMNS = (*COLUMNS, "TETA", "TETA_LocA", "TETA_AssocA", "TETA_ClsA")
USER_ERRORS = (ConfigError, VideoError, AssetError, CheckpointError, MotFormatError, ImportError)


class SequenceError(ValueError):
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
    return frames, gt


def tracker_name(tracker: str, input_size: int, masa_name: str, own_detector: bool = False) -> str:
    """The tracker's name in tables and plots."""
    names = {
        "masa": f"MASA ({masa_name}, {input_size}px{', own detector' if own_detector else ''})",
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
    return row


def report(runs: list[GivenBoxesResult], names: dict[str, str], out_dir: Path) -> list[Path]:
    """Tables with a pooled ``COMBINED`` row per tracker (when it ran on several sequences) and the plots.

    names: {tracker kind: display name}.
    """
    results: dict[str, dict[str, dict[str, float]]] = {}
    switches: dict[str, dict[str, Any]] = {}
    for run in runs:
        assert run.gt_file is not None
        results.setdefault(names[run.tracker], {})[run.sequence] = run.metrics
        gt = read_mot(run.gt_file, gt_filter=True)
        switches.setdefault(run.sequence, {})[names[run.tracker]] = id_switches_per_frame(gt, run.rows, run.frames)
    for tracker in dict.fromkeys(r.tracker for r in runs):
        mine = [r for r in runs if r.tracker == tracker]
        if len(mine) > 1:
            pairs = {r.sequence: (r.gt_file, r.results_file) for r in mine}
            results[names[tracker]][COMBINED] = evaluate_mot_many(pairs, COMBINED, with_teta=True)[COMBINED]
    return write_report(results, out_dir, switches, REPORT_COLUMNS)


def parse_args(argv: list[str] | None, default_sequences: list[Path] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="masa-eval", description=__doc__.split("\n\n")[0])
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
    p.add_argument("--masa-detector", action="store_true", help="MASA uses its own detector, not the given boxes")
    p.add_argument("--config", type=Path, help="MASA pipeline YAML config (detector, model, tracker)")
    p.add_argument("--input-size", type=int, default=512, help="MASA model input side (multiple of 64)")
    p.add_argument("--device", default="cpu", help="MASA device: cpu | cuda | auto")
    p.add_argument(
        "--checkpoint",
        default="",
        help="MASA adapter: a file, 'untrained', or '' for the shipped adapter (default)",
    )
    p.add_argument("--label", default="", help="name of the MASA adapter in the table")
    p.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0: torch default)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    args = p.parse_args(argv)
    args.sequences = [*args.sequences, *(args.sequences_opt or [])] or list(default_sequences or [])
    if not args.sequences:
        p.error("no sequence folders given")
    if args.max_frames is not None and args.max_frames < 1:
        p.error(f"--max-frames {args.max_frames}: must be >= 1")
    try:
        args.degradation = Degradation(args.drop, args.jitter, args.fp_rate, args.degrade_seed)
    except ValueError as err:
        p.error(str(err))
    return args


def run(args: argparse.Namespace) -> tuple[list[dict[str, Any]], list[GivenBoxesResult], list[Path]]:
    """Every tracker on every sequence; returns the printed rows, the runs and the report files."""
    inputs = [(folder, *sequence_inputs(folder)) for folder in args.sequences]  # check all before running
    names = {folder.name for folder in args.sequences}
    if len(names) < len(args.sequences):
        raise SequenceError("two sequence folders have the same name; results would overwrite each other")
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    overrides = {"model": {"input_size": args.input_size, "device": args.device, "checkpoint": args.checkpoint}}
    masa_name = args.label or (f"adapter {args.checkpoint}" if args.checkpoint else "shipped adapter")
    display = {t: tracker_name(t, args.input_size, masa_name, args.masa_detector) for t in args.trackers}
    pipeline = None
    if "masa" in args.trackers:  # one pipeline for all sequences (reset per sequence): the model is built once
        from masa_core.pipeline import Pipeline

        pipeline = Pipeline(load_config(args.config, overrides))
    rows: list[dict[str, Any]] = []
    runs: list[GivenBoxesResult] = []
    for folder, frames, gt in inputs:
        for tracker in args.trackers:
            own = args.masa_detector and tracker == "masa"
            out = args.out / folder.name / f"{run_name(tracker, args.degradation, own)}.txt"
            result = track_given_boxes(
                frames,
                gt,
                tracker,
                max_frames=args.max_frames,
                results_file=out,
                progress=not args.quiet,
                pipeline=pipeline,
                degradation=args.degradation,
                sequence=folder.name,
                own_detector=own,
            )
            row = table_row(result, display[tracker])
            rows.append(row)
            runs.append(result)
            saved = {**row, "metrics": result.metrics, "stage_ms": result.stage_ms}
            out.with_suffix(".json").write_text(json.dumps(saved, indent=2))
            stages = ", ".join(f"{k} {v:.0f}" for k, v in result.stage_ms.items())
            print(
                f"done {result.sequence} {tracker}: HOTA {result.metrics['HOTA']:.3f} "
                f"IDF1 {result.metrics['IDF1']:.3f} IDSW {result.metrics['IDSW']:.0f}, "
                f"{result.ms_per_frame:.1f} ms/frame" + (f" ({stages} ms)" if stages else ""),
                file=sys.stderr,
                flush=True,
            )
    files = report(runs, display, args.report or args.out)
    return rows, runs, files


def main(argv: list[str] | None = None, default_sequences: list[Path] | None = None) -> int:
    args = parse_args(argv, default_sequences)
    try:
        rows, _, files = run(args)
    except (SequenceError, *USER_ERRORS) as err:
        print(f"masa-eval: error: {err}", file=sys.stderr)
        return 2
    print(format_table(rows))
    for path in files:
        print(f"wrote {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
