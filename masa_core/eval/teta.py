"""TETA, Track Every Thing Accuracy (Li et al., "Tracking Every Thing in the Wild", ECCV 2022).

TETA = (LocA + AssocA + ClsA) / 3, each term averaged over IoU thresholds ``alphas``:

- **Local clusters.** Every ground-truth box of the evaluated class anchors a cluster; a predicted box
  joins it when their IoU is at least ``cluster_iou`` (0.5). Predicted tracks that never join a
  cluster are ignored entirely, so unannotated objects cost nothing (TAO/BDD have incomplete labels).
  Matching is class-agnostic: the predicted label plays no part in localization or association.
- **LocA** = TP / (TP + FN + FP) per threshold. Matches come from one Hungarian assignment per frame on
  ``A * IoU`` (A: the soft global alignment score between a gt id and a predicted id, as in HOTA),
  kept where IoU >= alpha. FN: unmatched gt boxes; FP: unmatched predicted boxes *inside a cluster*.
- **AssocA** = mean over TPs of the Jaccard index of the matched id pair, TPA / (TPA + FNA + FPA),
  over all frames of both ids (HOTA's AssA on the clustered predictions).
- **ClsA** = TPC / (TPC + FNC + FPC) over matches at thresholds >= 0.5: a match is a TPC when the
  predicted label equals the gt class, else an FNC for the gt class and an FPC for the predicted one.

With class labels, each gt class is evaluated on its own (predicted boxes that the all-class matching
at IoU 0.5 gives to a gt of another class are not FPs of this class) and the three terms are averaged
over the classes present. Without labels the data is one class: every match is then a TPC, so ClsA is
1 at each threshold with at least one match and 0 at one with none (what the official code gives on
single-class data).

Facts (cluster IoU 0.5, the soft alignment score, ClsA over IoU 0.5..0.95) follow the paper and its
official implementation (github.com/SysCV/tet, ``teta/``); this code is our own. The official summary
averages LocA and AssocA over alpha = 0.0, 0.05, ..., 0.95; here the default is 0.5, 0.55, ..., 0.95 for
all three terms (pass ``alphas=OFFICIAL_ALPHAS`` for the official average).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy.optimize import linear_sum_assignment

from masa_core.boxes import box_iou
from masa_core.formats.mot import MotRows, read_mot

ALPHAS = np.round(np.arange(0.5, 0.99, 0.05), 2)
OFFICIAL_ALPHAS = np.round(np.arange(0.0, 0.99, 0.05), 2)
TETA_KEYS = ("TETA", "LocA", "AssocA", "ClsA", "LocRe", "LocPr", "AssocRe", "AssocPr", "ClsRe", "ClsPr")
_EPS = np.finfo(float).eps


@dataclass
class TetaCounts:
    """Additive TETA statistics of one class, per threshold (arrays of len(alphas)).

    ``assoc_a``, ``assoc_re`` and ``assoc_pr`` are sums over TPs (divide by ``loc_tp`` for the mean),
    so counts of several sequences combine by addition (:meth:`add`).
    """

    alphas: np.ndarray
    loc_tp: np.ndarray = field(init=False)
    loc_fn: np.ndarray = field(init=False)
    loc_fp: np.ndarray = field(init=False)
    assoc_a: np.ndarray = field(init=False)
    assoc_re: np.ndarray = field(init=False)
    assoc_pr: np.ndarray = field(init=False)
    cls_tp: np.ndarray = field(init=False)
    cls_fn: np.ndarray = field(init=False)
    cls_fp: np.ndarray = field(init=False)

    _FIELDS = ("loc_tp", "loc_fn", "loc_fp", "assoc_a", "assoc_re", "assoc_pr", "cls_tp", "cls_fn", "cls_fp")

    def __post_init__(self) -> None:
        for name in self._FIELDS:
            setattr(self, name, np.zeros(len(self.alphas)))

    def add(self, other: TetaCounts) -> TetaCounts:
        """Sum of two counts (e.g. of two sequences) over the same thresholds."""
        if not np.array_equal(self.alphas, other.alphas):
            raise ValueError("TetaCounts.add: the counts use different thresholds")
        out = TetaCounts(self.alphas)
        for name in self._FIELDS:
            setattr(out, name, getattr(self, name) + getattr(other, name))
        return out

    def is_empty(self) -> bool:
        return not (self.loc_tp + self.loc_fn + self.loc_fp).any()

    def scores(self) -> dict[str, float]:
        """TETA and its terms (keys :data:`TETA_KEYS`), each averaged over the thresholds."""
        tp = self.loc_tp
        loc_a = tp / np.maximum(1, tp + self.loc_fn + self.loc_fp)
        assoc_a = self.assoc_a / np.maximum(1, tp)
        cls = self.alphas >= 0.5 - 1e-9
        ctp, cfn, cfp = self.cls_tp[cls], self.cls_fn[cls], self.cls_fp[cls]
        cls_a = float(np.mean(ctp / np.maximum(1, ctp + cfn + cfp))) if cls.any() else 0.0
        out = {
            "LocA": float(np.mean(loc_a)),
            "AssocA": float(np.mean(assoc_a)),
            "ClsA": cls_a,
            "LocRe": float(np.mean(tp / np.maximum(1, tp + self.loc_fn))),
            "LocPr": float(np.mean(tp / np.maximum(1, tp + self.loc_fp))),
            "AssocRe": float(np.mean(self.assoc_re / np.maximum(1, tp))),
            "AssocPr": float(np.mean(self.assoc_pr / np.maximum(1, tp))),
            "ClsRe": float(np.mean(ctp / np.maximum(1, ctp + cfn))) if cls.any() else 0.0,
            "ClsPr": float(np.mean(ctp / np.maximum(1, ctp + cfp))) if cls.any() else 0.0,
        }
        out["TETA"] = (out["LocA"] + out["AssocA"] + out["ClsA"]) / 3
        return {k: out[k] for k in TETA_KEYS}


@dataclass(frozen=True)
class _Frame:
    gt_ids: np.ndarray
    gt_cls: np.ndarray
    tr_ids: np.ndarray
    tr_cls: np.ndarray
    iou: np.ndarray  # (gt, predicted)


def _frames(
    gt: Mapping[int, MotRows],
    tracker: Mapping[int, MotRows],
    gt_classes: Mapping[int, np.ndarray] | None,
    tracker_classes: Mapping[int, np.ndarray] | None,
) -> list[_Frame]:
    if (gt_classes is None) != (tracker_classes is None):
        raise ValueError("teta: give class labels for both gt and tracker, or for neither")
    out = []
    empty = MotRows.empty()
    for t in sorted({*gt, *tracker}):
        g, p = gt.get(t, empty), tracker.get(t, empty)
        for name, rows in (("gt", g), ("tracker", p)):
            if len(np.unique(rows.ids)) != len(rows):
                raise ValueError(f"teta: {name} has a repeated id in frame {t}")
        labels = []
        for name, rows, classes in (("gt", g, gt_classes), ("tracker", p, tracker_classes)):
            lab = np.zeros(len(rows), np.int64) if classes is None else np.asarray(classes.get(t, []), np.int64)
            if len(lab) != len(rows):
                raise ValueError(f"teta: frame {t} has {len(rows)} {name} boxes but {len(lab)} class labels")
            labels.append(lab)
        out.append(_Frame(g.ids, labels[0], p.ids, labels[1], box_iou(g.boxes, p.boxes)))
    return out


def _alignment(gt_ids: list[np.ndarray], tr_ids: list[np.ndarray], sims: list[np.ndarray]) -> tuple:
    """Soft global alignment score (num gt ids, num tracker ids) and each id's number of boxes.

    Ids must already be contiguous indices. Each frame adds IoU / (row sum + column sum - IoU) to the
    pair's potential-match count; the score is its Jaccard index with the two ids' box counts.
    """
    n_gt = 1 + max((int(i.max()) for i in gt_ids if len(i)), default=-1)
    n_tr = 1 + max((int(i.max()) for i in tr_ids if len(i)), default=-1)
    potential = np.zeros((n_gt, n_tr))
    gt_count, tr_count = np.zeros((n_gt, 1)), np.zeros((1, n_tr))
    for g, p, sim in zip(gt_ids, tr_ids, sims, strict=True):
        denom = sim.sum(0, keepdims=True) + sim.sum(1, keepdims=True) - sim
        potential[g[:, None], p[None, :]] += np.where(denom > _EPS, sim / np.where(denom > _EPS, denom, 1), 0)
        np.add.at(gt_count[:, 0], g, 1)
        np.add.at(tr_count[0], p, 1)
    score = potential / np.maximum(gt_count + tr_count - potential, _EPS)
    return score, gt_count, tr_count


def _match(score: np.ndarray, g: np.ndarray, p: np.ndarray, sim: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One frame's Hungarian assignment maximising alignment x IoU (rows into g, columns into p)."""
    if not len(g) or not len(p):
        return np.zeros(0, int), np.zeros(0, int)
    return linear_sum_assignment(-(score[g[:, None], p[None, :]] * sim))


def _contiguous(ids: list[np.ndarray]) -> list[np.ndarray]:
    unique = np.unique(np.concatenate(ids)) if ids else np.zeros(0, np.int64)
    return [np.searchsorted(unique, i) for i in ids]


def _all_class_assignment(frames: list[_Frame], cluster_iou: float) -> list[set[tuple[int, int]]]:
    """Per frame, (gt class, predicted id) of the pairs the all-class matching keeps at IoU >= cluster_iou."""
    kept = {int(i) for f in frames for i in f.tr_ids[(f.iou >= cluster_iou).any(0)]}
    masks = [np.isin(f.tr_ids, list(kept)) for f in frames]
    gt_ids = _contiguous([f.gt_ids for f in frames])
    tr_ids = _contiguous([f.tr_ids[m] for f, m in zip(frames, masks, strict=True)])
    sims = [f.iou[:, m] for f, m in zip(frames, masks, strict=True)]
    score, _, _ = _alignment(gt_ids, tr_ids, sims)
    out = []
    for f, m, g, p, sim in zip(frames, masks, gt_ids, tr_ids, sims, strict=True):
        rows, cols = _match(score, g, p, sim)
        ok = sim[rows, cols] >= cluster_iou - _EPS
        out.append({(int(f.gt_cls[r]), int(f.tr_ids[m][c])) for r, c in zip(rows[ok], cols[ok], strict=True)})
    return out


def _class_counts(
    frames: list[_Frame],
    cls: int,
    assigned: list[set[tuple[int, int]]],
    alphas: np.ndarray,
    cluster_iou: float,
    cls_fp: dict[int, np.ndarray],
) -> TetaCounts:
    """Counts of gt class ``cls``; adds this class's wrong-label matches to ``cls_fp`` of the predicted class."""
    counts = TetaCounts(alphas)
    gt_masks = [f.gt_cls == cls for f in frames]
    # Predicted boxes in a cluster of this class, minus those matched to a gt of another class.
    overlap = []
    for f, gm, pairs in zip(frames, gt_masks, assigned, strict=True):
        elsewhere = {tid for c, tid in pairs if c != cls}
        inside = (f.iou[gm] >= cluster_iou).any(0) & ~np.isin(f.tr_ids, list(elsewhere))
        overlap.append(inside)
    kept = {int(i) for f, o in zip(frames, overlap, strict=True) for i in f.tr_ids[o]}
    tr_masks = [np.isin(f.tr_ids, list(kept)) for f in frames]
    gt_ids = _contiguous([f.gt_ids[m] for f, m in zip(frames, gt_masks, strict=True)])
    tr_ids = _contiguous([f.tr_ids[m] for f, m in zip(frames, tr_masks, strict=True)])
    sims = [f.iou[gm][:, tm] for f, gm, tm in zip(frames, gt_masks, tr_masks, strict=True)]
    score, gt_count, tr_count = _alignment(gt_ids, tr_ids, sims)
    pair_counts = np.zeros((len(alphas), *score.shape))
    for f, tm, o, g, p, sim in zip(frames, tr_masks, overlap, gt_ids, tr_ids, sims, strict=True):
        if not len(g):
            continue  # no cluster in this frame: nothing to count
        rows, cols = _match(score, g, p, sim)
        labels = f.tr_cls[tm]
        in_cluster = o[tm]
        for a, alpha in enumerate(alphas):
            ok = sim[rows, cols] >= alpha - _EPS
            r, c = rows[ok], cols[ok]
            counts.loc_tp[a] += len(r)
            counts.loc_fn[a] += len(g) - len(r)
            unmatched = in_cluster.copy()
            unmatched[c] = False
            counts.loc_fp[a] += unmatched.sum()
            np.add.at(pair_counts[a], (g[r], p[c]), 1)
            right = labels[c] == cls
            counts.cls_tp[a] += right.sum()
            counts.cls_fn[a] += (~right).sum()
            for wrong in labels[c][~right]:
                if int(wrong) in cls_fp:
                    cls_fp[int(wrong)][a] += 1
    for a in range(len(alphas)):
        m = pair_counts[a]
        counts.assoc_a[a] = np.sum(m * m / np.maximum(1, gt_count + tr_count - m))
        counts.assoc_re[a] = np.sum(m * m / np.maximum(1, gt_count))
        counts.assoc_pr[a] = np.sum(m * m / np.maximum(1, tr_count))
    return counts


def teta_counts(
    gt: Mapping[int, MotRows],
    tracker: Mapping[int, MotRows],
    gt_classes: Mapping[int, np.ndarray] | None = None,
    tracker_classes: Mapping[int, np.ndarray] | None = None,
    alphas: np.ndarray = ALPHAS,
    cluster_iou: float = 0.5,
) -> dict[int, TetaCounts]:
    """Additive TETA statistics of one sequence, {gt class: TetaCounts} ({0: ...} without labels).

    gt, tracker: {frame: MotRows} as :func:`masa_core.formats.mot.read_mot` returns (gt already
    filtered). gt_classes, tracker_classes: {frame: (N,) int labels in row order}, both or neither.
    """
    alphas = np.asarray(alphas, float)
    frames = _frames(gt, tracker, gt_classes, tracker_classes)
    classes = sorted({int(c) for f in frames for c in f.gt_cls})
    assigned = _all_class_assignment(frames, cluster_iou)
    cls_fp = {c: np.zeros(len(alphas)) for c in classes}
    out = {c: _class_counts(frames, c, assigned, alphas, cluster_iou, cls_fp) for c in classes}
    for c in classes:
        out[c].cls_fp += cls_fp[c]
    return out


def combine_teta(per_sequence: list[dict[int, TetaCounts]]) -> dict[int, TetaCounts]:
    """Pool several sequences' counts class by class (sums, as the official combination)."""
    out: dict[int, TetaCounts] = {}
    for counts in per_sequence:
        for c, value in counts.items():
            out[c] = out[c].add(value) if c in out else value
    return out


def teta_scores(counts: Mapping[int, TetaCounts]) -> dict[str, float]:
    """TETA and its terms averaged over the classes with any gt or clustered prediction (zeros if none)."""
    scored = [c.scores() for c in counts.values() if not c.is_empty()]
    if not scored:
        return dict.fromkeys(TETA_KEYS, 0.0)
    return {k: float(np.mean([s[k] for s in scored])) for k in TETA_KEYS}


def teta(
    gt: Mapping[int, MotRows],
    tracker: Mapping[int, MotRows],
    gt_classes: Mapping[int, np.ndarray] | None = None,
    tracker_classes: Mapping[int, np.ndarray] | None = None,
    alphas: np.ndarray = ALPHAS,
    cluster_iou: float = 0.5,
) -> dict[str, float]:
    """TETA, LocA, AssocA, ClsA (and their recalls/precisions) of one sequence; see :func:`teta_counts`."""
    return teta_scores(teta_counts(gt, tracker, gt_classes, tracker_classes, alphas, cluster_iou))


def table_keys(scores: Mapping[str, float]) -> dict[str, float]:
    """TETA, TETA_LocA, TETA_AssocA, TETA_ClsA: names that do not clash with HOTA's LocA in one table."""
    return {"TETA": scores["TETA"], **{f"TETA_{k}": scores[k] for k in ("LocA", "AssocA", "ClsA")}}


def evaluate_teta(gt_file: str | Path, results_file: str | Path, alphas: np.ndarray = ALPHAS) -> dict[str, float]:
    """Class-agnostic TETA of a MOTChallenge results file against its gt file (gt rows filtered)."""
    return teta(read_mot(gt_file, gt_filter=True), read_mot(results_file), alphas=alphas)
