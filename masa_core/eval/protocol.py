"""The degradation protocol: every tracker on clean boxes and on three strengths of degraded boxes,
several seeds each, summarised as the mean and spread of the pooled (``COMBINED``) HOTA and IDF1.

The strengths are fixed here, not tuned: ``medium`` is the project's earlier single setting (20 %
of boxes dropped, 5 % jitter, one false box per frame on average), ``light`` halves the drops and
false boxes, ``heavy`` adds half as many drops again and doubles the jitter and false boxes.
"""

from __future__ import annotations

import csv
import statistics
from collections.abc import Callable, Sequence
from pathlib import Path

from masa_core.eval.degrade import Degradation
from masa_core.eval.metrics import format_table
from masa_core.eval.report import COMBINED

STRENGTHS: dict[str, tuple[float, float, float]] = {  # drop, jitter, false boxes per frame
    "light": (0.1, 0.05, 0.5),
    "medium": (0.2, 0.05, 1.0),
    "heavy": (0.3, 0.1, 2.0),
}
METRICS = ("HOTA", "IDF1")


def settings(seeds: Sequence[int]) -> list[tuple[str, Degradation]]:
    """(step name, degradation) for clean boxes, then each strength with each seed."""
    steps = [("clean", Degradation())]
    for name, (drop, jitter, fp_rate) in STRENGTHS.items():
        steps += [(f"{name}_s{seed}", Degradation(drop, jitter, fp_rate, seed)) for seed in seeds]
    return steps


def combined_rows(results_csv: Path) -> dict[str, dict[str, float]]:
    """{tracker: {metric: value}} of the ``COMBINED`` rows (or the only sequence's rows) of a results.csv."""
    with results_csv.open() as f:
        rows = list(csv.DictReader(f))
    pooled = [r for r in rows if r["sequence"] == COMBINED] or rows
    return {r["tracker"]: {m: float(r[m]) for m in METRICS} for r in pooled}


def summarise(per_step: dict[str, dict[str, dict[str, float]]]) -> list[dict[str, object]]:
    """One row per tracker: clean HOTA / IDF1, then the mean ± standard deviation over seeds per strength."""
    trackers = list(dict.fromkeys(t for step in per_step.values() for t in step))
    rows = []
    for tracker in trackers:
        row: dict[str, object] = {"tracker": tracker}
        for strength in ("clean", *STRENGTHS):
            steps = [s for s in per_step if s == strength or s.startswith(f"{strength}_s")]
            for metric in METRICS:
                values = [per_step[s][tracker][metric] for s in steps if tracker in per_step[s]]
                spread = statistics.stdev(values) if len(values) > 1 else 0.0
                row[f"{strength} {metric}"] = f"{statistics.mean(values):.3f} ± {spread:.3f}" if values else ""
        rows.append(row)
    return rows


def run_protocol(
    seeds: Sequence[int], out_dir: Path, run_step: Callable[[Degradation, Path], Path]
) -> tuple[list[dict[str, object]], Path]:
    """Run every step (``run_step(degradation, step_dir) -> results.csv``), write ``protocol.md``
    and return its rows and path."""
    per_step = {}
    for name, degradation in settings(seeds):
        per_step[name] = combined_rows(run_step(degradation, out_dir / name))
    rows = summarise(per_step)
    path = out_dir / "protocol.md"
    strengths = ", ".join(
        f"{k}: drop {d:g}, jitter {j:g}, {f:g} false boxes/frame" for k, (d, j, f) in STRENGTHS.items()
    )
    path.write_text(
        f"# Degradation protocol (COMBINED; mean ± std over seeds {', '.join(map(str, seeds))})\n\n"
        f"{strengths}\n\n{format_table(rows)}\n"
    )
    return rows, path
