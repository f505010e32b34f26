"""Evaluation reports: tables parse back to the numbers, plots are real PNGs with the right bars."""

from __future__ import annotations

import csv
import importlib.util
from pathlib import Path

import numpy as np
from matplotlib.image import imread

from masa_core.eval.report import (
    COMBINED,
    id_switch_figure,
    metrics_figure,
    table_rows,
    write_report,
    write_tables,
)
from tests.paths import REPO

RESULTS = {
    "MASA": {
        "seq-a": {"HOTA": 0.5, "AssA": 0.25, "IDF1": 0.75, "MOTA": -0.125, "IDSW": 3.0},
        "seq-b": {"HOTA": 0.6, "AssA": 0.5, "IDF1": 0.8, "MOTA": 0.5, "IDSW": 1.0},
        COMBINED: {"HOTA": 0.55, "AssA": 0.4, "IDF1": 0.78, "MOTA": 0.3, "IDSW": 4.0},
    },
    "IoU": {
        "seq-a": {"HOTA": 1 / 3, "AssA": 0.2, "IDF1": 0.7, "MOTA": 0.1, "IDSW": 5.0},
        COMBINED: {"HOTA": 1 / 3, "AssA": 0.2, "IDF1": 0.7, "MOTA": 0.1, "IDSW": 5.0},
    },
}
COLUMNS = ("HOTA", "AssA", "IDF1", "MOTA", "IDSW")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def test_rows_put_combined_last_and_skip_missing_runs() -> None:
    rows = table_rows(RESULTS, COLUMNS)
    assert [(r["sequence"], r["tracker"]) for r in rows] == [
        ("seq-a", "MASA"),
        ("seq-a", "IoU"),
        ("seq-b", "MASA"),
        (COMBINED, "MASA"),
        (COMBINED, "IoU"),
    ]


def test_tables_are_written_and_parse_back(tmp_path: Path) -> None:
    md, csv_path = write_tables(RESULTS, tmp_path, "t", COLUMNS)
    with open(csv_path, newline="") as f:
        parsed = list(csv.DictReader(f))
    assert len(parsed) == 5 and list(parsed[0]) == ["sequence", "tracker", *COLUMNS]
    for row in parsed:
        expected = RESULTS[row["tracker"]][row["sequence"]]
        assert {k: float(row[k]) for k in COLUMNS} == expected  # full precision (1/3 included)
    lines = md.read_text().splitlines()
    assert len(lines) == 2 + 5
    cells = [[c.strip() for c in line.strip("|").split("|")] for line in lines]
    assert cells[0] == ["sequence", "tracker", *COLUMNS]
    assert all(len(c) == len(cells[0]) for c in cells)
    assert cells[2][:3] == ["seq-a", "MASA", "0.500"] and cells[2][-2:] == ["-0.125", "3"]
    assert cells[3][2] == "0.333"


def test_metrics_figure_has_a_bar_per_tracker_and_sequence() -> None:
    fig = metrics_figure(RESULTS, ("HOTA", "MOTA"))
    assert [ax.get_title() for ax in fig.axes] == ["HOTA", "MOTA"]
    for ax, metric in zip(fig.axes, ("HOTA", "MOTA"), strict=True):
        heights = [p.get_height() for p in ax.patches]
        assert len(heights) == 2 * 3  # 2 trackers x (seq-a, seq-b, COMBINED)
        # bars are drawn tracker by tracker: MASA's three, then IoU's (NaN where it has no run)
        assert heights[:3] == [RESULTS["MASA"][s][metric] for s in ("seq-a", "seq-b", COMBINED)]
        assert np.isnan(heights[4])
        assert [t.get_text() for t in ax.get_xticklabels()] == ["seq-a", "seq-b", COMBINED]


def test_id_switch_figure_is_cumulative() -> None:
    fig = id_switch_figure({"MASA": np.array([0, 1, 0, 2, 0]), "IoU": np.zeros(5, int)})
    lines = fig.axes[0].get_lines()
    assert [line.get_label() for line in lines] == ["MASA", "IoU"]
    assert list(lines[0].get_ydata()) == [0, 1, 1, 3, 3]
    assert list(lines[0].get_xdata()) == [1, 2, 3, 4, 5]


def test_write_report_writes_pngs(tmp_path: Path) -> None:
    switches = {"seq-a": {"MASA": np.array([0, 1, 1]), "IoU": np.array([1, 0, 0])}}
    files = write_report(RESULTS, tmp_path, switches, COLUMNS)
    names = sorted(p.name for p in files)
    assert names == ["id_switches_seq-a.png", "metrics.png", "results.csv", "results.md"]
    for png in (tmp_path / "metrics.png", tmp_path / "id_switches_seq-a.png"):
        assert png.read_bytes()[:8] == PNG_SIGNATURE
        image = imread(png)
        assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100
        assert image[..., :3].std() > 0  # not a blank canvas


def test_script_report(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("eval_given_boxes", REPO / "scripts" / "eval_given_boxes.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    args = ["--trackers", "iou", "--max-frames", "6", "--quiet", "--results-dir", str(tmp_path / "runs")]
    script.main([*args, "--drop", "0.3", "--report", str(tmp_path / "report")])
    with open(tmp_path / "report" / "results.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["sequence"] for r in rows] == ["TUD-Campus", "TUD-Stadtmitte", COMBINED]
    assert all(0 < float(r["TETA"]) <= 1 for r in rows)
    assert float(rows[2]["IDSW"]) == float(rows[0]["IDSW"]) + float(rows[1]["IDSW"])
    for seq in ("TUD-Campus", "TUD-Stadtmitte"):
        assert (tmp_path / "report" / f"id_switches_{seq}.png").read_bytes()[:8] == PNG_SIGNATURE
