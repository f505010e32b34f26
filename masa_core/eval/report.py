"""Evaluation reports: per-sequence and combined tables (Markdown, CSV) and PNG plots.

``results`` everywhere is ``{tracker: {sequence: {metric: value}}}``, a sequence named
:data:`COMBINED` holding the pooled row (e.g. from :func:`masa_core.eval.metrics.evaluate_mot_many`).
Plots use matplotlib's object API (``Figure``), never ``pyplot``, so no global backend is touched.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from masa_core.eval.metrics import format_table

COMBINED = "COMBINED"
Results = Mapping[str, Mapping[str, Mapping[str, float]]]
DEFAULT_COLUMNS = ("HOTA", "DetA", "AssA", "IDF1", "MOTA", "IDSW")


def table_rows(results: Results, columns: Sequence[str] = DEFAULT_COLUMNS) -> list[dict[str, object]]:
    """One row per (sequence, tracker): sequences in first-seen order with ``COMBINED`` last.

    A metric missing from a run is left empty.
    """
    sequences: list[str] = []
    for per_seq in results.values():
        sequences += [s for s in per_seq if s not in sequences and s != COMBINED]
    if any(COMBINED in per_seq for per_seq in results.values()):
        sequences.append(COMBINED)
    rows = []
    for seq in sequences:
        for tracker, per_seq in results.items():
            if seq in per_seq:
                metrics = per_seq[seq]
                rows.append({"sequence": seq, "tracker": tracker, **{c: metrics.get(c, "") for c in columns}})
    return rows


def write_tables(
    results: Results, out_dir: str | Path, stem: str = "results", columns: Sequence[str] = DEFAULT_COLUMNS
) -> tuple[Path, Path]:
    """Write ``<stem>.md`` (GitHub table, 3 decimals) and ``<stem>.csv`` (full precision); returns both paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = table_rows(results, columns)
    md, csv_path = out_dir / f"{stem}.md", out_dir / f"{stem}.csv"
    md.write_text(format_table(rows) + "\n")
    with open(csv_path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["sequence", "tracker", *columns])
        writer.writeheader()
        writer.writerows({k: repr(v) if isinstance(v, float) else v for k, v in row.items()} for row in rows)
    return md, csv_path


def metrics_figure(results: Results, metrics: Sequence[str] = ("HOTA", "AssA", "IDF1", "MOTA")) -> Figure:
    """Grouped bars: one panel per metric, one group per sequence (``COMBINED`` last), one bar per tracker."""
    rows = table_rows(results, metrics)
    sequences = list(dict.fromkeys(r["sequence"] for r in rows))
    trackers = list(results)
    fig = Figure(figsize=(max(6.0, 1.6 * len(sequences) * len(metrics) / 2), 3.2 * ((len(metrics) + 1) // 2)))
    width = 0.8 / max(len(trackers), 1)
    x = np.arange(len(sequences))
    for k, metric in enumerate(metrics):
        ax = fig.add_subplot((len(metrics) + 1) // 2, min(len(metrics), 2), k + 1)
        for j, tracker in enumerate(trackers):
            values = [float(results[tracker].get(s, {}).get(metric, np.nan)) for s in sequences]
            ax.bar(x + (j - (len(trackers) - 1) / 2) * width, values, width, label=tracker)
        ax.set_title(metric)
        ax.set_xticks(x, sequences, rotation=20, fontsize=8)
        ax.grid(axis="y", alpha=0.3)
        if k == 0:
            ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def id_switch_figure(curves: Mapping[str, np.ndarray], title: str = "") -> Figure:
    """Cumulative ID switches over frames, one line per tracker; ``curves[tracker]`` = switches per frame."""
    fig = Figure(figsize=(6.0, 3.2))
    ax = fig.add_subplot(1, 1, 1)
    for tracker, per_frame in curves.items():
        per_frame = np.asarray(per_frame)
        ax.step(np.arange(1, len(per_frame) + 1), np.cumsum(per_frame), where="post", label=tracker)
    ax.set_xlabel("frame")
    ax.set_ylabel("cumulative ID switches")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def save_figure(fig: Figure, path: str | Path, dpi: int = 100) -> Path:
    """Save a figure as PNG (parent folders created)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi, format="png")
    return path


def write_report(
    results: Results,
    out_dir: str | Path,
    id_switches: Mapping[str, Mapping[str, np.ndarray]] | None = None,
    columns: Sequence[str] = DEFAULT_COLUMNS,
) -> list[Path]:
    """Tables (``results.md``, ``results.csv``), ``metrics.png`` and ``id_switches_<sequence>.png``.

    id_switches: ``{sequence: {tracker: switches per frame}}`` (e.g. from
    :func:`masa_core.eval.metrics.id_switches_per_frame`); one plot per sequence. Returns the files.
    """
    out_dir = Path(out_dir)
    written = [*write_tables(results, out_dir, "results", columns)]
    plotted = [c for c in ("HOTA", "AssA", "IDF1", "MOTA") if c in columns] or list(columns)[:4]
    written.append(save_figure(metrics_figure(results, plotted), out_dir / "metrics.png"))
    for seq, curves in (id_switches or {}).items():
        written.append(save_figure(id_switch_figure(curves, f"{seq}: ID switches"), out_dir / f"id_switches_{seq}.png"))
    return written
