"""Calibrate the default detector's Person threshold: precision / recall curves on the TUD clips.

Runs the default detector (MediaPipe SSD) restricted to the Person class, with a low threshold
(0.05), on every frame of each sequence, once per ``--tile-sizes`` entry (0 = whole frame only;
1.0 = the default tiling), and scores the boxes against the ground truth at IoU 0.5
(``masa_core.eval.detection_metrics``: VOC matching, all-point AP). Prints, per tiling and clip
and pooled over the clips, AP50 and the threshold of the best F1 on the pooled curve with the
precision and recall each clip has there, and the mean detector time per frame. The rule for the
shipped ``CLASS_SCORE_THR['Person']``: that pooled best-F1 threshold of the default tiling, rounded
to two decimals. Draws the curves (the best-F1 points marked) to ``--out``.

Run: ``python scripts/calibrate_detector.py [--sequences data/mot15/TUD-Campus data/mot15/TUD-Stadtmitte]
[--tile-sizes 0 1.0] [--out docs/figures/detector_pr.png]``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from masa_core.detectors.factory import DetectorConfig, build_detector_from_config  # noqa: E402
from masa_core.eval.detection_metrics import FrameTruth, match_sequences, pool, pr_curve, read_truth  # noqa: E402
from masa_core.eval.report import save_figure  # noqa: E402
from masa_core.formats.mot import MotRows  # noqa: E402
from masa_core.inputs import clean_detections  # noqa: E402
from masa_core.video_io import FrameSource  # noqa: E402

LOW_THR = 0.05
Sequence = tuple[dict[int, MotRows], dict[int, FrameTruth], range]


def detect(folder: Path, tile_size: float) -> tuple[Sequence, float]:
    """(detections, truth, frames) of one sequence and the detector's mean ms per frame."""
    cfg = DetectorConfig(classes=("Person",), class_score_thr=(f"Person:{LOW_THR}",), tile_size=tile_size)
    detector = build_detector_from_config(cfg)
    rows, seconds, count = {}, 0.0, 0
    for index, frame in enumerate(FrameSource(folder / f"{folder.name}.mp4")):
        start = time.perf_counter()
        dets = detector(frame, index)
        seconds += time.perf_counter() - start
        dets, _ = clean_detections(dets, frame.shape[1], frame.shape[0], 2.0, 300)
        rows[index + 1] = MotRows(dets.boxes, np.full(len(dets), -1), dets.scores)
        count += 1
    return (rows, read_truth(folder / "gt" / "gt.txt"), range(1, count + 1)), 1000 * seconds / max(count, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--sequences",
        type=Path,
        nargs="+",
        default=[ROOT / "data/mot15/TUD-Campus", ROOT / "data/mot15/TUD-Stadtmitte"],
    )
    parser.add_argument("--tile-sizes", type=float, nargs="+", default=[0.0, 1.0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "figures" / "detector_pr.png")
    args = parser.parse_args()
    fig = Figure(figsize=(7, 5), layout="constrained")
    ax = fig.subplots()
    for tile_size in args.tile_sizes:
        runs = {folder.name: detect(folder, tile_size) for folder in args.sequences}
        seqs = [seq for seq, _ in runs.values()]
        thr, precision, recall = pr_curve(*match_sequences(seqs))
        f1 = 2 * precision * recall / np.maximum(precision + recall, 1e-9)
        best = int(np.argmax(f1))
        label = "whole frame" if tile_size == 0 else f"tiles {tile_size:g} + whole frame"
        ms = np.mean([m for _, m in runs.values()])
        print(f"{label}: {ms:.0f} ms/frame; pooled best F1 {f1[best]:.3f} at threshold {thr[best]:.3f}")
        for name, (seq, _) in [*runs.items(), ("pooled", (None, 0.0))]:
            m = pool(seqs if seq is None else [seq], float(thr[best]))
            print(f"  {name}: AP50 {m.ap50:.3f}, at {thr[best]:.2f}: precision {m.precision:.3f} recall {m.recall:.3f}")
        line = ax.plot(recall, precision, label=f"{label} (pooled AP50 {pool(seqs).ap50:.3f})")[0]
        ax.plot(recall[best], precision[best], "o", color=line.get_color())
        ax.annotate(f"best F1 at {thr[best]:.2f}", (recall[best], precision[best]), textcoords="offset points",
                    xytext=(-90, -15 if tile_size else 8))  # fmt: skip
    ax.plot(0.95, 0.85, "k*", markersize=10, label="issue 20's target (recall 0.95, precision 0.85)")
    ax.set(xlabel="recall (IoU 0.5)", ylabel="precision", xlim=(0, 1), ylim=(0, 1.02))
    ax.set_title("MediaPipe SSD, Person, TUD-Campus + TUD-Stadtmitte pooled")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower left")
    save_figure(fig, args.out, dpi=110)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
