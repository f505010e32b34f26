"""``masa-eval --protocol`` and ``--detector-boxes``, and the given boxes every tracker writes."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch

from masa_core.cli.eval import main as eval_main
from masa_core.eval.detection_metrics import pool, score_detection_file
from masa_core.eval.given_boxes import track_given_boxes
from masa_core.eval.protocol import STRENGTHS, settings, summarise
from masa_core.formats.mot import read_mot
from tests.paths import TUD_CAMPUS, TUD_CAMPUS_GT, TUD_CAMPUS_VIDEO, TUD_STADTMITTE


def test_protocol_runs_every_strength_and_seed_and_summarises_them(tmp_path: Path) -> None:
    argv = [str(TUD_CAMPUS), "--trackers", "iou", "bytetrack", "--max-frames", "4", "--quiet"]
    assert eval_main([*argv, "--protocol", "--seeds", "0", "1", "--out", str(tmp_path)]) == 0
    steps = {p.name for p in tmp_path.iterdir() if p.is_dir()}
    assert steps == {"clean", *(f"{s}_s{seed}" for s in STRENGTHS for seed in (0, 1))}
    table = (tmp_path / "protocol.md").read_text()
    assert "IoU + Hungarian" in table and "ByteTrack (boxmot)" in table and "heavy HOTA" in table
    assert " ± " in table
    heavy = read_mot(tmp_path / "heavy_s1" / "TUD-Campus" / "iou_drop0.3_jit0.1_fp2_s1.txt")
    assert heavy  # the degraded boxes were tracked and written


def test_summary_is_the_mean_and_spread_over_seeds() -> None:
    per_step = {
        "clean": {"t": {"HOTA": 1.0, "IDF1": 1.0}},
        "light_s0": {"t": {"HOTA": 0.5, "IDF1": 0.6}},
        "light_s1": {"t": {"HOTA": 0.7, "IDF1": 0.8}},
    }
    (row,) = summarise(per_step)
    assert row["clean HOTA"] == "1.000 ± 0.000" and row["light HOTA"] == "0.600 ± 0.141"
    assert row["heavy HOTA"] == ""
    assert [name for name, _ in settings([0])] == ["clean", "light_s0", "medium_s0", "heavy_s0"]


def test_detector_boxes_are_given_to_every_tracker_with_their_scores(tmp_path: Path) -> None:
    argv = [str(TUD_CAMPUS), "--trackers", "iou", "--max-frames", "3", "--quiet", "--detector-boxes"]
    assert eval_main([*argv, "--out", str(tmp_path)]) == 0
    dets = read_mot(tmp_path / "TUD-Campus" / "detections.txt")
    scores = np.concatenate([r.scores for r in dets.values()])
    assert len(scores) and (scores >= 0.36).all() and (scores < 1).any()  # the SSD's own scores, Person's threshold
    tracked = np.concatenate([r.boxes for r in read_mot(tmp_path / "TUD-Campus" / "iou.txt").values()])
    given = np.concatenate([r.boxes for r in dets.values()])
    assert {tuple(b) for b in tracked} <= {tuple(b) for b in given}
    with pytest.raises(SystemExit, match="2"):  # not with degradations
        eval_main([*argv, "--drop", "0.2", "--out", str(tmp_path / "x")])


def test_the_pipeline_trackers_write_the_given_box_not_the_clipped_one(tmp_path: Path) -> None:
    torch.set_num_threads(1)
    run = track_given_boxes(
        TUD_CAMPUS_VIDEO,
        TUD_CAMPUS_GT,
        "masa_sort",
        overrides={"model": {"input_size": 128, "device": "cpu", "backend": "torch"}},
        max_frames=25,
        results_file=tmp_path / "masa_sort.txt",
    )
    gt = read_mot(TUD_CAMPUS_GT, gt_filter=True)
    crossing = set()
    for f, rows in run.rows.items():
        given = {tuple(b) for b in gt[f].boxes}
        written = {tuple(b) for b in rows.boxes}
        assert written <= given  # every written box is a given box, unchanged
        crossing |= {b for b in written if b[0] < 0 or b[2] > 640 or b[3] > 480}
    assert crossing  # frame 22 has a box beyond the image's right edge: written as given, not clipped
    assert run.metrics["DetA"] > 0.95


def test_detector_boxes_print_and_write_detection_metrics_per_sequence_and_pooled(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [str(TUD_CAMPUS), str(TUD_STADTMITTE), "--trackers", "iou", "--max-frames", "3", "--quiet"]
    assert eval_main([*argv, "--detector-boxes", "--out", str(tmp_path)]) == 0
    out, err = capsys.readouterr()
    assert "keeps its person class only" in err and "AP50" in out and "COMBINED" in out
    with open(tmp_path / "detection.csv") as f:
        rows = {r["sequence"]: r for r in csv.DictReader(f)}
    assert set(rows) == {"TUD-Campus", "TUD-Stadtmitte", "COMBINED"}
    assert "person" in rows["COMBINED"]["tracker"] and "tiles" in rows["COMBINED"]["tracker"]
    sequences = []
    for name, folder in (("TUD-Campus", TUD_CAMPUS), ("TUD-Stadtmitte", TUD_STADTMITTE)):
        dets = read_mot(tmp_path / name / "detections.txt")
        assert dets and all(len(r) for r in dets.values())
        metrics, seq = score_detection_file(tmp_path / name / "detections.txt", folder / "gt" / "gt.txt", 3, 0.36)
        sequences.append(seq)
        row = rows[name]
        assert float(row["score_thr"]) == pytest.approx(0.36)
        assert int(row["GT"]) == sum(len(read_mot(folder / "gt" / "gt.txt")[f]) for f in (1, 2, 3))
        assert int(row["TP"]) + int(row["FN"]) == int(row["GT"]) and int(row["TP"]) > 0
        assert 0 <= int(row["duplicates"]) <= int(row["FP"]) and int(row["duplicates"]) == metrics.duplicates
        assert float(row["recall"]) == pytest.approx(metrics.recall) and 0 < float(row["AP50"]) <= 1
    combined = pool(sequences, 0.36)
    assert int(rows["COMBINED"]["TP"]) == rows_sum(rows, "TP") == combined.tp
    assert float(rows["COMBINED"]["AP50"]) == pytest.approx(combined.ap50)


def rows_sum(rows: dict[str, dict[str, str]], key: str) -> int:
    return sum(int(rows[s][key]) for s in ("TUD-Campus", "TUD-Stadtmitte"))
