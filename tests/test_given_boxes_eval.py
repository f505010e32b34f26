"""Tracking with given observations on the bundled TUD-Campus clip."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from masa_core.eval.given_boxes import track_given_boxes
from masa_core.formats.mot import read_mot
from tests.paths import TUD_CAMPUS_GT, TUD_CAMPUS_VIDEO


def test_iou_baseline_first_30_frames(tmp_path: Path) -> None:
    out = tmp_path / "iou.txt"
    run = track_given_boxes(TUD_CAMPUS_VIDEO, TUD_CAMPUS_GT, "iou", max_frames=30, results_file=out)
    assert run.frames == 30 and run.sequence == "TUD-Campus"
    for key in ("HOTA", "IDF1", "AssA", "DetA"):
        assert math.isfinite(run.metrics[key]) and 0.0 < run.metrics[key] <= 1.0, key
    rows = read_mot(out)
    assert rows and min(rows) >= 1 and max(rows) <= 30
    assert all((r.ids >= 1).all() for r in rows.values())
    assert sum(len(r) for r in rows.values()) == run.metrics["num_tracker_dets"]
    # the given boxes come back unchanged, so detection is perfect and only ids can differ
    gt = read_mot(TUD_CAMPUS_GT, gt_filter=True)
    assert sum(len(gt[f]) for f in gt if f <= 30) == run.metrics["num_gt_dets"] == run.metrics["num_tracker_dets"]


@pytest.fixture
def one_thread() -> Iterator[None]:
    """One torch thread: on a shared 2-core machine two busy threads can run many times slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.mark.usefixtures("one_thread")
def test_masa_small_input_gives_ids(tmp_path: Path) -> None:
    out = tmp_path / "masa.txt"
    run = track_given_boxes(
        TUD_CAMPUS_VIDEO,
        TUD_CAMPUS_GT,
        "masa",
        overrides={"model": {"input_size": 128, "device": "cpu"}},
        max_frames=8,
        results_file=out,
    )
    assert run.frames == 8
    assert len(run.rows) == 8 and all(len(r) and (r.ids >= 1).all() for r in run.rows.values())
    assert read_mot(out).keys() == run.rows.keys()
    assert math.isfinite(run.metrics["HOTA"]) and 0.0 < run.metrics["IDF1"] <= 1.0
    assert run.ms_per_frame > 0 and run.stage_ms["backbone"] > 0


def test_unknown_tracker_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="tracker"):
        track_given_boxes(TUD_CAMPUS_VIDEO, TUD_CAMPUS_GT, "sort", results_file=tmp_path / "x.txt")  # type: ignore[arg-type]


def test_own_detector_is_for_masa_only(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="own_detector"):
        track_given_boxes(TUD_CAMPUS_VIDEO, TUD_CAMPUS_GT, "iou", results_file=tmp_path / "x.txt", own_detector=True)


@pytest.mark.usefixtures("one_thread")
def test_masa_with_its_own_detector_gets_no_given_boxes(tmp_path: Path) -> None:
    run = track_given_boxes(
        TUD_CAMPUS_VIDEO,
        TUD_CAMPUS_GT,
        "masa",
        overrides={"model": {"input_size": 128, "device": "cpu"}},
        max_frames=2,
        results_file=tmp_path / "masa_det.txt",
        own_detector=True,
    )
    assert run.own_detector and run.given == {} and run.frames == 2
    assert run.stage_ms["detector"] > 0  # the pipeline's detector ran
    # the detector's boxes are not the ground truth's, so they cannot all coincide with it
    gt = read_mot(TUD_CAMPUS_GT, gt_filter=True)
    boxes = np.concatenate([r.boxes for r in run.rows.values()]) if run.rows else np.zeros((0, 4))
    assert not np.array_equal(boxes, np.concatenate([gt[1].boxes, gt[2].boxes]))
