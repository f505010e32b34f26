"""Detection metrics (``masa_core.eval.detection_metrics``) on hand-computed cases."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from masa_core.eval.detection_metrics import (
    DUPLICATE,
    FP,
    IGNORED,
    TP,
    FrameTruth,
    average_precision,
    evaluate_detections,
    match_frame,
    pool,
    read_truth,
)
from masa_core.formats.mot import MotRows

GT = FrameTruth(np.array([[0, 0, 10, 10], [20, 0, 30, 10]], np.float32), np.array([False, False]))


def _dets(boxes: list[list[float]], scores: list[float]) -> MotRows:
    return MotRows(np.array(boxes, np.float32), np.full(len(boxes), -1), np.array(scores, np.float32))


def test_a_duplicate_is_a_false_positive_and_a_poor_box_too() -> None:
    boxes = np.array([[0, 0, 10, 10], [1, 0, 10, 10], [20, 0, 25, 10], [20, 0, 29, 10]], np.float32)
    scores = np.array([0.9, 0.8, 0.7, 0.6])
    # box 1 overlaps gt 0 (IoU 0.9) but gt 0 is taken; box 2 has IoU 0.5 with gt 1: enough, VOC's >=
    assert match_frame(boxes, scores, GT).tolist() == [TP, DUPLICATE, TP, DUPLICATE]
    assert match_frame(boxes[:1] + 100, scores[:1], GT).tolist() == [FP]
    assert match_frame(np.array([[0, 0, 10, 30]], np.float32), [0.9], GT).tolist() == [FP]  # IoU 1/3
    m = evaluate_detections({1: _dets(boxes.tolist(), scores.tolist())}, {1: GT})
    assert (m.tp, m.fp, m.duplicates, m.precision) == (2, 2, 2, 0.5)


def test_all_point_ap_and_the_operating_point_by_hand() -> None:
    # ranked: TP (0.9), FP (0.8), TP (0.7): precision 1, 1/2, 2/3 at recall 1/2, 1/2, 1
    dets = {1: _dets([[0, 0, 10, 10], [50, 50, 60, 60], [20, 0, 30, 10]], [0.9, 0.8, 0.7])}
    m = evaluate_detections(dets, {1: GT}, score_thr=0.75)
    assert m.ap50 == pytest.approx(0.5 * 1 + 0.5 * 2 / 3)
    assert (m.tp, m.fp, m.fn, m.gt) == (1, 1, 1, 2)
    assert m.precision == pytest.approx(0.5) and m.recall == pytest.approx(0.5)
    at_all = evaluate_detections(dets, {1: GT}, score_thr=0.0)
    assert at_all.precision == pytest.approx(2 / 3) and at_all.recall == 1.0
    assert average_precision(np.array([0.5, 1.0]), np.array([1.0, 1.0])) == 1.0


def test_frames_without_detections_count_their_misses() -> None:
    dets = {1: _dets([[0, 0, 10, 10], [20, 0, 30, 10]], [0.9, 0.9])}
    m = evaluate_detections(dets, {1: GT, 2: GT}, frames=[1, 2])
    assert (m.tp, m.fn, m.gt) == (2, 2, 4) and m.recall == 0.5 and m.ap50 == pytest.approx(0.5)
    only_first = evaluate_detections(dets, {1: GT, 2: GT}, frames=[1])
    assert only_first.recall == 1.0 and only_first.ap50 == pytest.approx(1.0)


def test_ignored_ground_truth_counts_neither_way(tmp_path: Path) -> None:
    gt = tmp_path / "gt.txt"  # MOT16+ rows: the second has consider 0, the third is class 7 (not pedestrian)
    gt.write_text("1,1,0,0,10,10,1,1,1\n1,2,20,0,10,10,0,1,1\n1,3,40,0,10,10,1,7,1\n")
    truth = read_truth(gt)
    assert truth[1].ignored.tolist() == [False, True, True]
    dets = {1: _dets([[0, 0, 10, 10], [20, 0, 30, 10], [40, 0, 50, 10], [80, 0, 90, 10]], [0.9, 0.8, 0.7, 0.6])}
    assert match_frame(dets[1].boxes, dets[1].scores, truth[1]).tolist() == [TP, IGNORED, IGNORED, FP]
    m = evaluate_detections(dets, truth)
    assert (m.tp, m.fp, m.fn, m.gt) == (1, 1, 0, 1) and m.precision == 0.5


def test_pooled_sequences_are_ranked_together() -> None:
    a = ({1: _dets([[0, 0, 10, 10]], [0.5])}, {1: GT}, [1])  # 1 TP, 1 miss
    b = ({1: _dets([[50, 50, 60, 60], [20, 0, 30, 10]], [0.9, 0.4])}, {1: GT}, [1])  # FP above, TP below
    m = pool([a, b])
    # ranked: FP 0.9, TP 0.5, TP 0.4 of 4 gt: precision 0, 1/2, 2/3 at recall 0, 1/4, 1/2
    assert m.ap50 == pytest.approx(0.25 * 2 / 3 + 0.25 * 2 / 3)
    assert (m.tp, m.fp, m.gt) == (2, 1, 4)
