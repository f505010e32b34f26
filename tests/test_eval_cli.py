"""``masa-eval``: trackers on MOTChallenge sequence folders, tables and plots, clear input errors."""

from __future__ import annotations

import csv
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from masa_core.cli.eval import main
from masa_core.eval.report import COMBINED
from tests.paths import REPO, TUD_CAMPUS, TUD_CAMPUS_GT


def _img1_sequence(root: Path, frames: list[np.ndarray]) -> Path:
    """A copy of TUD-Campus's first frames in the ``img1/`` layout (PNG, lossless)."""
    folder = root / "Campus-img1"
    (folder / "img1").mkdir(parents=True)
    for i, frame in enumerate(frames):
        cv2.imwrite(str(folder / "img1" / f"{i + 1:06d}.png"), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    (folder / "gt").mkdir()
    shutil.copy(TUD_CAMPUS_GT, folder / "gt" / "gt.txt")
    return folder


def test_video_and_img1_sequences_give_tables_and_plots(tmp_path, capsys, tud_frames):
    img1 = _img1_sequence(tmp_path, tud_frames[:6])
    out = tmp_path / "out"
    argv = [str(TUD_CAMPUS), str(img1), "--trackers", "iou", "ocsort", "--max-frames", "6", "--quiet"]
    assert main([*argv, "--out", str(out)]) == 0
    table = capsys.readouterr().out
    assert "IoU + Hungarian" in table and "OC-SORT (boxmot)" in table
    for seq in ("TUD-Campus", "Campus-img1"):
        for tracker in ("iou", "ocsort"):
            assert (out / seq / f"{tracker}.txt").is_file() and (out / seq / f"{tracker}.json").is_file()
        assert (out / f"id_switches_{seq}.png").is_file()
    assert (out / "metrics.png").is_file() and (out / "results.md").is_file()
    with open(out / "results.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [(r["sequence"], r["tracker"]) for r in rows] == [
        ("TUD-Campus", "IoU + Hungarian"),
        ("TUD-Campus", "OC-SORT (boxmot)"),
        ("Campus-img1", "IoU + Hungarian"),
        ("Campus-img1", "OC-SORT (boxmot)"),
        (COMBINED, "IoU + Hungarian"),
        (COMBINED, "OC-SORT (boxmot)"),
    ]
    # the same frames and boxes from a video and from an image folder give the same scores
    metrics = ("HOTA", "IDF1", "MOTA", "IDSW", "TETA")
    for k in (0, 1):
        assert [rows[k][m] for m in metrics] == [rows[k + 2][m] for m in metrics]
    assert all(0.9 <= float(r["HOTA"]) <= 1.0 for r in rows)


def test_missing_sequence_parts_are_clear_errors(tmp_path, capsys):
    assert main([str(tmp_path / "absent"), "--trackers", "iou", "--quiet"]) == 2
    assert "absent not found" in capsys.readouterr().err
    no_frames = tmp_path / "NoFrames"
    (no_frames / "gt").mkdir(parents=True)
    assert main([str(no_frames), "--trackers", "iou", "--quiet"]) == 2
    assert "neither NoFrames.mp4 nor img1/" in capsys.readouterr().err
    no_gt = tmp_path / "NoGt"
    (no_gt / "img1").mkdir(parents=True)
    assert main([str(no_gt), "--trackers", "iou", "--quiet"]) == 2
    assert "ground truth" in capsys.readouterr().err
    (no_gt / "gt").mkdir()
    shutil.copy(TUD_CAMPUS_GT, no_gt / "gt" / "gt.txt")
    assert main([str(no_gt), "--trackers", "iou", "--quiet", "--out", str(tmp_path / "o")]) == 2  # empty img1/
    assert "no images" in capsys.readouterr().err


def test_errors_are_found_before_any_tracker_runs(tmp_path, capsys):
    out = tmp_path / "out"
    assert main([str(TUD_CAMPUS), str(tmp_path / "absent"), "--trackers", "iou", "--out", str(out)]) == 2
    assert not out.exists()
    capsys.readouterr()
    assert main([str(TUD_CAMPUS), str(TUD_CAMPUS), "--trackers", "iou", "--out", str(out)]) == 2
    assert "same name" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [[], [str(TUD_CAMPUS), "--drop", "2"], [str(TUD_CAMPUS), "--trackers", "sort"]])
def test_bad_arguments_exit_2(argv):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2


def test_module_runs_as_a_program():
    out = subprocess.run([sys.executable, "-m", "masa_core.cli.eval", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "masa-eval" in out.stdout and "bytetrack" in out.stdout


def test_the_model_size_comes_from_the_config_unless_given(tmp_path):
    from masa_core.cli.eval import masa_config, model_input_size, parse_args

    base = [str(TUD_CAMPUS), "--trackers", "masa_sort"]
    assert model_input_size(masa_config(parse_args(base))) == 512  # input_size 0: the CPU default variant's
    reference = parse_args([*base, "--config", str(REPO / "config" / "masa_reference.yaml")])
    assert model_input_size(masa_config(reference)) == 1024  # a config's size is no longer overridden by 512
    assert model_input_size(masa_config(parse_args([*base, "--input-size", "384"]))) == 384
    assert masa_config(parse_args([str(TUD_CAMPUS), "--trackers", "iou"])) is None
