"""Tracker ablations on recorded inputs: embed once, then replay MASA-SORT variants in seconds.

``record`` runs the CPU default pipeline over the degradation protocol's box sets (or a
``masa-eval --detector-boxes`` run's ``detections.txt``) on both TUD clips and stores what the
tracker receives each frame (boxes, scores, embeddings, stamps). ``replay`` feeds those inputs to
MASA-SORT with config overrides and prints COMBINED HOTA / IDF1 / ID switches, averaged over seeds
per strength. The embeddings are the same for every variant, so only the tracker differs.

    python scripts/tracker_ablation.py record runs/ablation/protocol.pkl
    python scripts/tracker_ablation.py record runs/ablation/e2e.pkl --detections runs/e2e
    python scripts/tracker_ablation.py replay runs/ablation/protocol.pkl shipped= 'no_gate={"gate_chi2": 1e-9}'
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import pickle
import statistics
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from masa_core.config import load_config
from masa_core.eval.given_boxes import track_given_boxes
from masa_core.eval.loop import given_detections
from masa_core.eval.metrics import evaluate_mot_many
from masa_core.eval.protocol import settings
from masa_core.formats.mot import MotRows, write_mot
from masa_core.inputs import clean_detections
from masa_core.pipeline import Pipeline
from masa_core.tracking.masa_sort import MasaSortTracker
from masa_core.video_io import FrameSource

SEQUENCES = ("TUD-Campus", "TUD-Stadtmitte")
CONFIG = "config/masa_cpu.yaml"


class RecordingTracker:
    """Stands in for the pipeline's tracker: records each ``update``'s inputs, then runs it."""

    def __init__(self, inner: Any) -> None:
        object.__setattr__(self, "inner", inner)
        object.__setattr__(self, "calls", [])

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self.inner, name, value)

    def update(self, *tensors: torch.Tensor, **kwargs: Any) -> Any:
        """The pipeline's call (boxes, scores, labels, embeds, frame_id=, stamp=, camera_warp=, score_thr=)."""
        arrays = {
            k: t.cpu().numpy().copy() for k, t in zip(("boxes", "scores", "labels", "embeds"), tensors, strict=True)
        }
        self.calls.append({**arrays, **{k: kwargs.get(k) for k in ("frame_id", "stamp", "score_thr")}})
        return self.inner.update(*tensors, **kwargs)


def record(out: Path, detections: Path | None, score_thr: float | None, model: dict[str, Any]) -> None:
    """Run every step on both clips and pickle {(step, sequence): inputs}; with ``detections``, the
    one step ``e2e`` on that run's detector boxes, whose operating threshold is ``score_thr``;
    ``model`` overrides the CPU default's model settings (e.g. ``input_size``, ``variant``)."""
    cfg = load_config(CONFIG, {"model": model})
    pipe = Pipeline(cfg)
    steps = [("e2e", None)] if detections else settings([0, 1, 2])
    sizes = {seq: next(iter(FrameSource(f"data/mot15/{seq}/{seq}.mp4", 1))).shape[:2] for seq in SEQUENCES}
    recorded = {}
    for step, degradation in steps:
        for seq in SEQUENCES:
            recorder = RecordingTracker(pipe.tracker)
            pipe.tracker = recorder
            given_file = detections / seq / "detections.txt" if detections else None
            result = track_given_boxes(
                f"data/mot15/{seq}/{seq}.mp4", f"data/mot15/{seq}/gt/gt.txt", "masa_sort", pipeline=pipe,
                degradation=degradation, sequence=seq, given_file=given_file, given_score_thr=score_thr,
                results_file=Path(tempfile.mkdtemp()) / f"{seq}.txt",
            )  # fmt: skip
            pipe.tracker = recorder.inner
            height, width = sizes[seq]
            for call in recorder.calls:  # the given rows the pipeline kept, as it cleaned them
                call["given"] = result.given.get(call["frame_id"] + 1, MotRows.empty())
                clean = clean_detections(
                    given_detections(call["given"]), width, height, cfg.frame.min_box_size, cfg.frame.max_detections
                )
                call["rows"] = clean[1]
            recorded[(step, seq)] = {"calls": recorder.calls, "gt_file": str(result.gt_file)}
            print(f"recorded {step} {seq}: HOTA {result.metrics['HOTA']:.3f}", flush=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(pickle.dumps(recorded))


def replay_rows(calls: list[dict], config) -> dict[int, MotRows]:
    """MASA-SORT with ``config`` over one recorded sequence: the given rows it tracks, ids from 1."""
    tracker = MasaSortTracker(config)
    rows = {}
    for c in calls:
        inputs = [torch.from_numpy(c[k]) for k in ("boxes", "scores", "labels", "embeds")]
        ids = tracker.update(*inputs, c["frame_id"], c["stamp"], None, c["score_thr"]).ids.numpy()
        keep = np.flatnonzero(ids >= 0)
        if len(keep):
            given, source_rows = c["given"], c["rows"][keep]
            rows[c["frame_id"] + 1] = MotRows(given.boxes[source_rows], ids[keep] + 1, given.scores[source_rows])
    return rows


def replay(recorded: dict, overrides: dict[str, Any], work: Path, stride: int = 1) -> dict[str, dict[str, float]]:
    """{step: COMBINED metrics} of MASA-SORT with ``overrides`` over every recorded step; with
    ``stride`` k only every k-th frame is tracked and scored (a camera k times faster than the
    pipeline: the frames between are dropped, the stamps keep the real time)."""
    config = dataclasses.replace(load_config(CONFIG).tracker, **overrides)
    per_step = {}
    for step in sorted({s for s, _ in recorded}):
        pairs = {}
        for seq in SEQUENCES:
            results = work / step / f"{seq}.txt"
            results.parent.mkdir(parents=True, exist_ok=True)
            calls = recorded[(step, seq)]["calls"][::stride]
            write_mot(results, replay_rows(calls, config))
            gt = Path(recorded[(step, seq)]["gt_file"])
            pairs[seq] = (gt if stride == 1 else frames_only(gt, {c["frame_id"] + 1 for c in calls}, work), results)
        per_step[step] = evaluate_mot_many(pairs)
    return per_step


def frames_only(gt: Path, frames: set[int], work: Path) -> Path:
    """A copy of the MOT file ``gt`` with the rows of ``frames`` only (1-based)."""
    out = work / f"{gt.parent.parent.name}_gt_{len(frames)}.txt"
    lines = [line for line in gt.read_text().splitlines() if line and int(line.split(",")[0]) in frames]
    out.write_text("\n".join(lines) + "\n")
    return out


def summary(per_step: dict[str, dict[str, dict[str, float]]]) -> dict[str, list[float]]:
    """[HOTA, IDF1, IDSW] of COMBINED per strength (mean over seeds), or per clip for ``e2e``."""
    if "e2e" in per_step:
        return {seq: [round(m[k], 3) for k in ("HOTA", "IDF1", "IDSW")] for seq, m in per_step["e2e"].items()}
    out = {}
    for strength in ("clean", "light", "medium", "heavy"):
        steps = [m["COMBINED"] for s, m in per_step.items() if s.split("_")[0] == strength]
        out[strength] = [round(statistics.mean(m[k] for m in steps), 3) for k in ("HOTA", "IDF1", "IDSW")]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=("record", "replay"))
    parser.add_argument("inputs", type=Path, help="the recorded inputs (.pkl)")
    parser.add_argument(
        "variants", nargs="*", help="replay: NAME=JSON tracker overrides (NAME= for the shipped config)"
    )
    parser.add_argument("--detections", type=Path, help="record: a masa-eval --detector-boxes output folder")
    parser.add_argument("--score-thr", type=float, help="record --detections: the detector's operating threshold")
    parser.add_argument("--input-size", type=int, help="record: the model's input size (default: the CPU default's)")
    parser.add_argument("--variant", help="record: the model variant (default: the CPU default's)")
    parser.add_argument("--stride", type=int, default=1, help="replay: track and score every k-th frame only")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.mode == "record":
        model = {k: v for k, v in (("input_size", args.input_size), ("variant", args.variant)) if v}
        if args.variant and not args.input_size:
            model["input_size"] = 0  # the variant's own size
        record(args.inputs, args.detections, args.score_thr, model)
        return
    recorded = pickle.loads(args.inputs.read_bytes())
    for variant in args.variants:
        name, _, overrides = variant.partition("=")
        result = summary(replay(recorded, json.loads(overrides or "{}"), Path(tempfile.mkdtemp()), args.stride))
        print(name, json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
