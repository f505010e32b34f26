"""Detection metrics against MOTChallenge ground truth: AP50, and precision / recall at a threshold.

PASCAL VOC's rules (devkit ``VOCevaldet``), at IoU 0.5: the detections of all frames are ranked by
score; each is matched to the ground-truth box of its frame it overlaps most; it is a true positive
if that IoU is at least ``iou_thr`` and the box is not yet taken, a false positive otherwise; a
false positive on a box already taken is also counted as a *duplicate* (what tiled inference and
NMS must keep down). A detection whose best box is an *ignored*
ground-truth row (VOC's "difficult") counts as neither. AP is the all-point interpolated area under
the precision / recall curve (VOC 2010 on). IoU is :func:`torchvision.ops.box_iou`. No COCO /
torchmetrics implementation is installed here, hence this short one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torchvision.ops import box_iou

from masa_core.formats.mot import MotRows, read_mot

# Outcomes of a detection. The VOC rule leaves one on an ignored gt box out of the ranking; a
# duplicate (its best gt box already taken) is a false positive.
TP, FP, DUPLICATE, IGNORED = 1, 0, 2, -1


@dataclass(frozen=True)
class FrameTruth:
    """The gt boxes of one frame: (N, 4) float32 x1y1x2y2 and (N,) bool, True for an ignored row."""

    boxes: np.ndarray
    ignored: np.ndarray


@dataclass(frozen=True)
class DetectionMetrics:
    """AP50 over all scores; precision / recall and counts at ``score_thr`` (``duplicates``: the false
    positives on a gt box already found); ``gt``: boxes not ignored."""

    ap50: float
    precision: float
    recall: float
    score_thr: float
    tp: int
    fp: int
    duplicates: int
    fn: int
    gt: int

    def as_dict(self) -> dict[str, float | int]:
        """The table's columns: AP50, precision, recall, score_thr, TP, FP, duplicates, FN, GT."""
        upper = {"ap50": "AP50", "tp": "TP", "fp": "FP", "fn": "FN", "gt": "GT"}
        return {upper.get(k, k): v for k, v in asdict(self).items()}


def read_truth(gt_file: str | Path) -> dict[int, FrameTruth]:
    """{1-based frame: FrameTruth} of a MOTChallenge gt file: rows the MOT gt filter drops (flag 0,
    or in MOT16+ files a class other than pedestrian) are ignored rather than removed."""
    every, kept = read_mot(gt_file), read_mot(gt_file, gt_filter=True)
    truth = {}
    for frame, rows in every.items():
        kept_ids = set(kept[frame].ids.tolist()) if frame in kept else set()
        truth[frame] = FrameTruth(rows.boxes, np.array([i not in kept_ids for i in rows.ids.tolist()], dtype=bool))
    return truth


def score_detection_file(
    det_file: str | Path, gt_file: str | Path, frames: int, score_thr: float = 0.0
) -> tuple[DetectionMetrics, tuple[dict[int, MotRows], dict[int, FrameTruth], range]]:
    """The metrics of a MOTChallenge det file on the first ``frames`` frames of ``gt_file``, and the
    (detections, truth, frames) they came from, for :func:`pool`."""
    sequence = (read_mot(det_file), read_truth(gt_file), range(1, frames + 1))
    return pool([sequence], score_thr), sequence


def match_frame(boxes: np.ndarray, scores: np.ndarray, truth: FrameTruth, iou_thr: float = 0.5) -> np.ndarray:
    """(N,) outcome of each detection of one frame: ``TP``, ``FP``, ``DUPLICATE`` or ``IGNORED`` (VOC's greedy rule)."""
    outcome = np.full(len(boxes), FP, dtype=np.int64)
    if len(boxes) == 0 or len(truth.boxes) == 0:
        return outcome
    iou = box_iou(torch.from_numpy(np.asarray(boxes, np.float32)), torch.from_numpy(truth.boxes)).numpy()
    taken = np.zeros(len(truth.boxes), dtype=bool)
    for i in np.argsort(-np.asarray(scores), kind="stable"):
        best = int(np.argmax(iou[i]))
        if iou[i, best] < iou_thr:
            continue
        if truth.ignored[best]:
            outcome[i] = IGNORED
        elif not taken[best]:
            outcome[i], taken[best] = TP, True
        else:
            outcome[i] = DUPLICATE
    return outcome


def average_precision(recall: np.ndarray, precision: np.ndarray) -> float:
    """All-point interpolated AP: the area under the precision envelope (recall ascending)."""
    r = np.concatenate([[0.0], recall, [1.0]])
    p = np.concatenate([[0.0], precision, [0.0]])
    p = np.maximum.accumulate(p[::-1])[::-1]
    steps = np.flatnonzero(r[1:] != r[:-1])
    return float(np.sum((r[steps + 1] - r[steps]) * p[steps + 1]))


def pr_curve(scores: np.ndarray, outcome: np.ndarray, num_gt: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(thresholds, precision, recall), one point per detection ranked by score (ignored ones left out)."""
    counted = outcome != IGNORED
    scores, tp = np.asarray(scores)[counted], outcome[counted] == TP
    order = np.argsort(-scores, kind="stable")
    scores, tp = scores[order], tp[order]
    tps, fps = np.cumsum(tp), np.cumsum(~tp)
    precision = tps / np.maximum(tps + fps, 1)
    recall = tps / max(num_gt, 1)
    return scores, precision, recall


def evaluate_detections(
    detections: Mapping[int, MotRows],
    truth: Mapping[int, FrameTruth],
    score_thr: float = 0.0,
    iou_thr: float = 0.5,
    frames: Iterable[int] | None = None,
) -> DetectionMetrics:
    """AP at ``iou_thr`` and the operating point ``score_thr`` of ``detections`` against ``truth``.

    detections: {1-based frame: MotRows}. ``frames``: the frames scored (default: every frame with
    ground truth or detections). To pool several sequences, call :func:`pool` instead.
    """
    frames = set(frames) if frames is not None else set(truth) | set(detections)
    return pool([(detections, truth, frames)], score_thr, iou_thr)


def pool(
    sequences: Iterable[tuple[Mapping[int, MotRows], Mapping[int, FrameTruth], Iterable[int]]],
    score_thr: float = 0.0,
    iou_thr: float = 0.5,
) -> DetectionMetrics:
    """The metrics of several sequences' (detections, truth, frames) ranked together."""
    return _metrics(*match_sequences(sequences, iou_thr), score_thr)


def match_sequences(
    sequences: Iterable[tuple[Mapping[int, MotRows], Mapping[int, FrameTruth], Iterable[int]]], iou_thr: float = 0.5
) -> tuple[np.ndarray, np.ndarray, int]:
    """(scores, outcomes, number of gt boxes not ignored) of every detection of the sequences'
    frames; pass the first three to :func:`pr_curve` for their precision / recall curve."""
    matched = [_match_all(d, t, sorted(f), iou_thr) for d, t, f in sequences]
    scores = np.concatenate([np.zeros(0, np.float32)] + [m[0] for m in matched])
    outcomes = np.concatenate([np.zeros(0, np.int64)] + [m[1] for m in matched])
    return scores, outcomes, sum(m[2] for m in matched)


def _match_all(
    detections: Mapping[int, MotRows], truth: Mapping[int, FrameTruth], frames: list[int], iou_thr: float
) -> tuple[np.ndarray, np.ndarray, int]:
    empty = FrameTruth(np.zeros((0, 4), np.float32), np.zeros(0, bool))
    scores, outcomes, num_gt = [np.zeros(0, np.float32)], [np.zeros(0, np.int64)], 0
    for frame in frames:
        dets, gt = detections.get(frame, MotRows.empty()), truth.get(frame, empty)
        scores.append(dets.scores)
        outcomes.append(match_frame(dets.boxes, dets.scores, gt, iou_thr))
        num_gt += int((~gt.ignored).sum())
    return np.concatenate(scores), np.concatenate(outcomes), num_gt


def _metrics(scores: np.ndarray, outcomes: np.ndarray, num_gt: int, score_thr: float) -> DetectionMetrics:
    _, precision, recall = pr_curve(scores, outcomes, num_gt)
    at = (scores >= score_thr) & (outcomes != IGNORED)
    tp = int((outcomes[at] == TP).sum())
    fp = int(at.sum()) - tp
    return DetectionMetrics(
        ap50=average_precision(recall, precision),
        precision=tp / max(tp + fp, 1),
        recall=tp / max(num_gt, 1),
        score_thr=float(score_thr),
        tp=tp,
        fp=fp,
        duplicates=int((outcomes[at] == DUPLICATE).sum()),
        fn=num_gt - tp,
        gt=num_gt,
    )
