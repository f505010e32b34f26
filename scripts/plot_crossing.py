"""Draw docs/figures/masa_sort_crossing.png: MASA-SORT through one crossing of two look-alike people.

The scene is the ``crossing`` scene of the tests (tests/synthetic_scenes.py): two people with
nearly the same appearance walk towards each other and their boxes overlap for about ten frames.
Top: the box centre's x of every detection against time, in the colour of the id it was given,
with each track's Kalman prediction for that frame (made before the frame's boxes were seen) as a
line, and the frames where the two boxes overlap shaded. Bottom: each id's match score per frame
(1 - cost: IoU with the predicted box, or (1 + cos) / 2 when appearance decided).

Run: ``python scripts/plot_crossing.py [--out docs/figures/masa_sort_crossing.png]``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from masa_core.eval.report import save_figure  # noqa: E402
from masa_core.tracking import MasaSortTracker, TrackerConfig, kalman  # noqa: E402
from tests.synthetic_scenes import SCENES  # noqa: E402

COLOURS = ("tab:blue", "tab:orange", "tab:green", "tab:red")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "figures" / "masa_sort_crossing.png")
    args = parser.parse_args()
    frames = SCENES["crossing"]()
    tracker = MasaSortTracker(TrackerConfig.plug_and_play())
    fig = Figure(figsize=(9, 6), layout="constrained")
    top, bottom = fig.subplots(2, 1, height_ratios=(3, 2), sharex=True)
    scores: dict[int, list[tuple[float, float]]] = {}
    predicted: dict[int, list[tuple[float, float]]] = {}
    overlap = []
    for f, frame in enumerate(frames):
        if len(tracker._tracks):
            dt = frame.stamp - frames[f - 1].stamp
            ahead = kalman.predict(tracker._tracks.mean, tracker._tracks.cov, dt)[0]
            for i, cx in zip(tracker._tracks.ids.tolist(), ahead[:, 0], strict=True):
                predicted.setdefault(i, []).append((frame.stamp, cx))
        n = len(frame.boxes)
        result = tracker.update(
            torch.from_numpy(frame.boxes), torch.from_numpy(frame.scores), torch.zeros(n, dtype=torch.long),
            torch.from_numpy(frame.embeds), f, stamp=frame.stamp,
        )  # fmt: skip
        if n == 2 and min(frame.boxes[:, 2]) > max(frame.boxes[:, 0]):
            overlap.append(frame.stamp)
        for box, i, m in zip(frame.boxes, result.ids.tolist(), result.match_scores.tolist(), strict=True):
            colour = COLOURS[i % len(COLOURS)] if i >= 0 else "grey"
            top.plot(frame.stamp, (box[0] + box[2]) / 2, "o", ms=3, color=colour)
            if i >= 0 and f > 0:
                scores.setdefault(i, []).append((frame.stamp, m))
    for i, series in predicted.items():
        t, x = np.array(series).T
        top.plot(t, x, "-", lw=1, color=COLOURS[i % len(COLOURS)], label=f"id {i}: prediction")
    for axis in (top, bottom):
        axis.axvspan(min(overlap), max(overlap), color="0.9", zorder=0)
    top.set(ylabel="box centre x (px)")
    top.set_title("MASA-SORT through a crossing of two look-alike people (shaded: boxes overlap)")
    top.legend(loc="upper center")
    for i, series in scores.items():
        t, m = np.array(series).T
        bottom.plot(t, m, color=COLOURS[i % len(COLOURS)], label=f"id {i}")
    bottom.set(xlabel="time (s)", ylabel="match score", ylim=(0, 1.05))
    bottom.legend(loc="lower left")
    save_figure(fig, args.out, dpi=110)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
