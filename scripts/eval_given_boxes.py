"""Evaluate association with given observations: MOTChallenge ground-truth boxes fed to MASA and to the
IoU-only baseline; prints a Markdown table (HOTA, DetA, AssA, IDF1, MOTA, IDSW, ms/frame).

    python scripts/eval_given_boxes.py [--sequences DIR ...] [--input-size 512] [--trackers masa iou]
        [--drop 0.2] [--jitter 0.05] [--fp-rate 1] [--degrade-seed 0]

--drop / --jitter / --fp-rate degrade the given boxes (seeded by --degrade-seed; see
masa_core/eval/degrade.py); the ground truth they are scored against stays as it is.
--report DIR writes per-sequence and combined tables (results.md, results.csv, with TETA) and
PNG plots (metrics.png, id_switches_<sequence>.png) there.

A sequence folder holds ``<name>.mp4`` (or ``img1/``) and ``gt/gt.txt``. Each finished run is
also printed to stderr and saved as JSON under ``--results-dir``, so a long run that is stopped
still leaves its finished rows.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")

import torch  # noqa: E402

from masa_core.config import load_config  # noqa: E402
from masa_core.eval.degrade import Degradation  # noqa: E402
from masa_core.eval.given_boxes import TRACKERS, GivenBoxesResult, track_given_boxes  # noqa: E402
from masa_core.eval.metrics import evaluate_mot_many, format_table, id_switches_per_frame  # noqa: E402
from masa_core.eval.mot_format import read_mot  # noqa: E402
from masa_core.eval.report import COMBINED, write_report  # noqa: E402
from masa_core.pipeline import Pipeline  # noqa: E402
from masa_core.tracking import TrackerConfig  # noqa: E402

DEFAULT_SEQUENCES = [REPO / "data" / "mot15" / "TUD-Campus", REPO / "data" / "mot15" / "TUD-Stadtmitte"]
COLUMNS = ("HOTA", "DetA", "AssA", "IDF1", "MOTA", "IDSW")
REPORT_COLUMNS = (*COLUMNS, "TETA", "TETA_LocA", "TETA_AssocA", "TETA_ClsA")


def sequence_inputs(folder: Path) -> tuple[Path, Path]:
    """(frames, gt file) of a MOTChallenge sequence folder."""
    video = folder / f"{folder.name}.mp4"
    frames = video if video.is_file() else folder / "img1"
    gt = folder / "gt" / "gt.txt"
    for path in (frames, gt):
        if not path.exists():
            sys.exit(f"error: {path} not found (sequence folder {folder})")
    return frames, gt


def tracker_name(tracker: str, input_size: int, masa_name: str) -> str:
    names = {
        "masa": f"MASA ({masa_name}, {input_size}px)",
        "iou": "IoU + Hungarian",
        "reid": "crop-ReID + MASA tracker",
        "bytetrack": "ByteTrack (boxmot)",
        "ocsort": "OC-SORT (boxmot)",
        "botsort": "BoT-SORT (boxmot, no ReID)",
    }
    return names[tracker]


def table_row(run: GivenBoxesResult, input_size: int, masa_name: str) -> dict[str, Any]:
    name = tracker_name(run.tracker, input_size, masa_name)
    row: dict[str, Any] = {"sequence": run.sequence, "tracker": name, "frames": run.frames}
    if not run.degradation.is_identity:
        row["given"] = run.degradation.tag
    row.update({k: run.metrics[k] for k in COLUMNS})
    row["ms/frame"] = run.ms_per_frame
    return row


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sequences", type=Path, nargs="+", default=DEFAULT_SEQUENCES, help="sequence folders")
    p.add_argument("--input-size", type=int, default=512, help="MASA model input side (multiple of 64)")
    p.add_argument("--trackers", nargs="+", choices=TRACKERS, default=list(TRACKERS))
    p.add_argument("--device", default="cpu", help="MASA device: cpu | cuda | auto")
    p.add_argument("--checkpoint", default="", help="MASA adapter checkpoint (default: untrained adapter)")
    p.add_argument("--label", default="", help="name of the MASA adapter in the table")
    p.add_argument("--max-frames", type=int, help="only the first frames of each sequence")
    p.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0: torch default)")
    p.add_argument("--results-dir", type=Path, default=Path("runs/given_boxes"), help="MOT results and JSON")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--drop", type=float, default=0.0, help="probability of removing each given box")
    p.add_argument("--jitter", type=float, default=0.0, help="box noise std, relative to the box size")
    p.add_argument("--fp-rate", type=float, default=0.0, help="mean false-positive boxes added per frame")
    p.add_argument("--degrade-seed", type=int, default=0, help="seed of the degradations")
    p.add_argument("--report", type=Path, help="folder for tables (Markdown, CSV) and PNG plots")
    args = p.parse_args(argv)
    try:
        degradation = Degradation(args.drop, args.jitter, args.fp_rate, args.degrade_seed)
    except ValueError as err:
        p.error(str(err))
    if args.threads > 0:
        torch.set_num_threads(args.threads)

    overrides = {"model": {"input_size": args.input_size, "device": args.device, "checkpoint": args.checkpoint}}
    print(
        f"torch {torch.__version__}, torch threads {torch.get_num_threads()}, input size {args.input_size}, "
        f"tracker {TrackerConfig.plug_and_play()}",
        file=sys.stderr,
    )
    masa_name = args.label or (f"adapter {args.checkpoint}" if args.checkpoint else "untrained adapter")
    rows = []
    runs: list[GivenBoxesResult] = []
    # One MASA pipeline for all sequences (reset per sequence), so the model is built once.
    pipeline = Pipeline(load_config(overrides=overrides)) if "masa" in args.trackers else None
    for folder in args.sequences:
        frames, gt = sequence_inputs(folder)
        for tracker in args.trackers:
            name = f"{tracker}_{degradation.tag}" if degradation.tag else tracker
            out = args.results_dir / folder.name / f"{name}.txt"
            run = track_given_boxes(
                frames,
                gt,
                tracker,
                overrides,
                args.max_frames,
                out,
                progress=not args.quiet,
                pipeline=pipeline,
                degradation=degradation,
            )
            row = table_row(run, args.input_size, masa_name)
            rows.append(row)
            runs.append(run)
            saved = {**row, "metrics": run.metrics, "stage_ms": run.stage_ms}
            out.with_suffix(".json").write_text(json.dumps(saved, indent=2))
            stages = ", ".join(f"{k} {v:.0f}" for k, v in run.stage_ms.items())
            print(
                f"done {run.sequence} {tracker}: HOTA {run.metrics['HOTA']:.3f} IDF1 {run.metrics['IDF1']:.3f} "
                f"IDSW {run.metrics['IDSW']:.0f}, {run.ms_per_frame:.1f} ms/frame"
                + (f" ({stages} ms)" if stages else ""),
                file=sys.stderr,
                flush=True,
            )
    print(format_table(rows))
    if args.report:
        names = {r.tracker: tracker_name(r.tracker, args.input_size, masa_name) for r in runs}
        for path in report(runs, names, args.report):
            print(f"wrote {path}", file=sys.stderr)


def report(runs: list[GivenBoxesResult], names: dict[str, str], out_dir: Path) -> list[Path]:
    """Tables with a pooled row per tracker (when there are several sequences) and the plots."""
    results: dict[str, dict[str, dict[str, float]]] = {}
    switches: dict[str, dict[str, Any]] = {}
    for run in runs:
        assert run.gt_file is not None
        results.setdefault(names[run.tracker], {})[run.sequence] = run.metrics
        gt = read_mot(run.gt_file, gt_filter=True)
        switches.setdefault(run.sequence, {})[names[run.tracker]] = id_switches_per_frame(gt, run.rows, run.frames)
    for tracker in {r.tracker for r in runs}:
        mine = [r for r in runs if r.tracker == tracker]
        if len(mine) > 1:
            pairs = {r.sequence: (r.gt_file, r.results_file) for r in mine}
            results[names[tracker]][COMBINED] = evaluate_mot_many(pairs, COMBINED, with_teta=True)[COMBINED]
    return write_report(results, out_dir, switches, REPORT_COLUMNS)


if __name__ == "__main__":
    main()
