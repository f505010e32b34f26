"""``masa-track`` from the command line: outputs a metrics library accepts, and clear errors."""

from __future__ import annotations

import subprocess
import sys

import cv2
import pytest

from masa_core.cli.track import main
from masa_core.eval.metrics import evaluate_mot
from masa_core.formats.mot import read_mot
from masa_core.video_io import FrameSource
from tests.paths import TUD_CAMPUS_GT, TUD_CAMPUS_VIDEO


def test_tud_campus_with_given_gt_boxes_gives_results_trackeval_accepts(tmp_path, capsys):
    results, video = tmp_path / "results.txt", tmp_path / "tracks.mp4"
    argv = [str(TUD_CAMPUS_VIDEO), "--detections", str(TUD_CAMPUS_GT), "--output", str(results)]
    argv += ["--video", str(video), "--input-size", "256", "--device", "cpu", "--quiet", "--gt", str(TUD_CAMPUS_GT)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "frames: 71" in out and "HOTA" in out and "ms per frame: detector" in out
    rows = read_mot(results)
    assert min(rows) == 1 and max(rows) <= 71
    metrics = evaluate_mot(TUD_CAMPUS_GT, results, num_frames=71)
    assert 0.5 < metrics["HOTA"] <= 1.0
    assert 0.5 < metrics["IDF1"] <= 1.0
    assert len(FrameSource(video)) == 71


def test_image_folder_with_the_default_detector(tmp_path, tud_frames):
    folder = tmp_path / "frames"
    folder.mkdir()
    for i, frame in enumerate(tud_frames[:3]):
        cv2.imwrite(str(folder / f"{i:06d}.png"), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    results = tmp_path / "r.txt"
    argv = [str(folder), "--output", str(results), "--no-video", "--input-size", "128", "--device", "cpu", "--quiet"]
    assert main(argv) == 0
    rows = read_mot(results)
    assert sum(len(r) for r in rows.values()) >= 3  # the SSD finds people in each frame


def test_unreadable_video_is_a_clear_error(tmp_path, capsys):
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"not a video at all" * 50)
    assert main([str(bad), "--quiet"]) == 2
    assert "cannot read video" in capsys.readouterr().err
    assert main([str(tmp_path / "absent.mp4"), "--quiet"]) == 2
    assert "input not found" in capsys.readouterr().err


def test_empty_image_folder_is_a_clear_error(tmp_path, capsys):
    assert main([str(tmp_path), "--quiet"]) == 2
    assert "no images" in capsys.readouterr().err


def test_bad_config_and_bad_detections_file_are_clear_errors(tmp_path, capsys):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("tracker:\n  match_score_thr: 2\n")
    assert main([str(TUD_CAMPUS_VIDEO), "--config", str(cfg), "--quiet"]) == 2
    assert "tracker.match_score_thr = 2" in capsys.readouterr().err
    dets = tmp_path / "dets.txt"
    dets.write_text("1,1,10,10,20,20,1,-1,-1,-1\nthis,is,not,a,row\n")
    assert main([str(TUD_CAMPUS_VIDEO), "--detections", str(dets), "--quiet", "--no-video"]) == 2
    assert "dets.txt:2" in capsys.readouterr().err


@pytest.mark.parametrize("flag", ["--help"])
def test_console_script_is_installed(flag):
    out = subprocess.run([sys.executable, "-m", "masa_core.cli.track", flag], capture_output=True, text=True)
    assert out.returncode == 0 and "masa-track" in out.stdout
