"""Pure tensor functions used by the MASA tracker.

Every function works on any device and returns tensors on the device of its inputs.
Similarities are computed in float32 whatever the input float dtype.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor
from torchvision.ops import box_iou

MATCH_METRICS: tuple[str, ...] = ("bisoftmax", "softmax", "cosine")


def bisoftmax_similarity(det_embeds: Tensor, memo_embeds: Tensor) -> Tensor:
    """Bi-directional softmax similarity (QDTrack style).

    ``f = det @ memo.T``; result is ``(softmax(f, dim=1) + softmax(f, dim=0)) / 2``.

    Args:
        det_embeds: (N, D) detection embeddings.
        memo_embeds: (M, D) track embeddings.

    Returns:
        (N, M) float32 similarities in [0, 1].
    """
    feats = det_embeds.float() @ memo_embeds.float().t()
    return (feats.softmax(dim=1) + feats.softmax(dim=0)) / 2


def softmax_similarity(det_embeds: Tensor, memo_embeds: Tensor) -> Tensor:
    """Detection-to-track softmax similarity ``softmax(det @ memo.T, dim=1)``.

    Args:
        det_embeds: (N, D); memo_embeds: (M, D).

    Returns:
        (N, M) float32, each row sums to 1.
    """
    return (det_embeds.float() @ memo_embeds.float().t()).softmax(dim=1)


def cosine_similarity(det_embeds: Tensor, memo_embeds: Tensor) -> Tensor:
    """Pairwise cosine similarity of L2-normalised embeddings.

    Args:
        det_embeds: (N, D); memo_embeds: (M, D).

    Returns:
        (N, M) float32 in [-1, 1] (0 for an all-zero embedding).
    """
    return F.normalize(det_embeds.float(), p=2, dim=1) @ F.normalize(memo_embeds.float(), p=2, dim=1).t()


def match_similarity(det_embeds: Tensor, memo_embeds: Tensor, metric: str = "bisoftmax") -> Tensor:
    """Similarity used for association, as in the official MASA trackers.

    ``"bisoftmax"``: ``(bisoftmax + cosine) / 2`` (``MasaTaoTracker``, the plug-and-play tracker);
    ``"softmax"``: detection-to-track softmax; ``"cosine"``: cosine similarity
    (the latter two as in ``MasaBDDTracker``).

    Args:
        det_embeds: (N, D); memo_embeds: (M, D); metric: one of ``MATCH_METRICS``.

    Returns:
        (N, M) float32 similarities.
    """
    if metric == "bisoftmax":
        return (bisoftmax_similarity(det_embeds, memo_embeds) + cosine_similarity(det_embeds, memo_embeds)) / 2
    if metric == "softmax":
        return softmax_similarity(det_embeds, memo_embeds)
    if metric == "cosine":
        return cosine_similarity(det_embeds, memo_embeds)
    raise ValueError(f"match_metric = {metric!r}: must be one of {list(MATCH_METRICS)}")


def suppress_distractors(boxes: Tensor, scores: Tensor, score_thr: float, iou_thr: float) -> Tensor:
    """Official MASA distractor removal (``remove_distractor`` with ``nms="inter"``).

    Rows must already be sorted by descending score. A row ``i`` with ``scores[i] < score_thr``
    is dropped when its IoU with ANY earlier row ``j < i`` (kept or dropped, any class) is
    ``> iou_thr``. Rows with ``scores[i] >= score_thr`` are always kept.

    Args:
        boxes: (N, 4) x1y1x2y2 boxes, sorted by descending score.
        scores: (N,) scores in the same order.
        score_thr: detections scoring below this are candidate distractors.
        iou_thr: IoU above which a candidate is dropped.

    Returns:
        (N,) bool keep mask.
    """
    n = boxes.shape[0]
    if n == 0:
        return torch.ones(0, dtype=torch.bool, device=boxes.device)
    ious = box_iou(boxes.float(), boxes.float())
    earlier = torch.ones(n, n, dtype=torch.bool, device=boxes.device).tril(diagonal=-1)
    overlaps_earlier = ((ious > iou_thr) & earlier).any(dim=1)
    return ~(overlaps_earlier & (scores < score_thr))


def distance_gate(det_boxes: Tensor, memo_boxes: Tensor, frame_gaps: Tensor, max_distance: float, fps: float) -> Tensor:
    """Soft spatial gate of the official ``MasaTaoTracker.compute_distance_mask``.

    With centre distance ``d``, ``r = max_distance * exp(gap / (fps / 6))`` per track and
    ``s = 100 / fps``: the gate is 1 where ``d <= r``, else ``exp(-(d - r) / s)``.

    Args:
        det_boxes: (N, 4) x1y1x2y2 detection boxes.
        memo_boxes: (M, 4) last boxes of the tracks.
        frame_gaps: (M,) frames since each track was last seen (>= 0).
        max_distance: base radius in pixels (> 0).
        fps: frame rate of the stream (> 0).

    Returns:
        (N, M) float32 multiplicative gate in (0, 1].
    """
    det_c = (det_boxes[:, :2].float() + det_boxes[:, 2:].float()) / 2
    memo_c = (memo_boxes[:, :2].float() + memo_boxes[:, 2:].float()) / 2
    dist = torch.cdist(det_c, memo_c)
    growth = fps / 6.0
    radius = max_distance * torch.exp(frame_gaps.abs().float() / growth)[None, :]
    smoothing = 100.0 / fps
    soft = torch.exp(-(dist - radius) / smoothing)
    return torch.where(dist <= radius, torch.ones_like(dist), soft)


def greedy_assign(similarity: Tensor, eligible: Tensor, match_thr: float) -> tuple[Tensor, Tensor]:
    """Official MASA greedy one-to-one assignment, in row order.

    Equivalent to: for each row ``i`` in order, take ``conf, j = max(similarity[i])``; if
    ``conf > match_thr`` and ``eligible[i]``, assign ``i -> j`` and zero column ``j`` for all
    other rows. Computed in rounds: each round resolves every row up to the first
    column conflict, so the loop runs (number of conflicts + 1) times, not once per row.
    ``match_thr`` must be >= 0 (a zeroed column can then never be taken again).

    Args:
        similarity: (N, M) detection-to-track similarities, rows in priority order.
        eligible: (N,) bool, rows allowed to take a track (score > obj_score_thr).
        match_thr: strict lower bound on the similarity of a match.

    Returns:
        ``(cols, conf)``: (N,) int64 matched column or -1, and (N,) float32 similarity of the
        match (0 where unmatched).
    """
    n, m = similarity.shape
    device = similarity.device
    cols = torch.full((n,), -1, dtype=torch.long, device=device)
    conf_out = torch.zeros(n, dtype=torch.float32, device=device)
    if n == 0 or m == 0:
        return cols, conf_out
    work = similarity.float().clone()
    pending = torch.nonzero(eligible, as_tuple=False).squeeze(1)
    while pending.numel() > 0:
        conf, best = work[pending].max(dim=1)
        accept = conf > match_thr
        rows, best, conf = pending[accept], best[accept], conf[accept]
        k = rows.numel()
        if k == 0:
            break  # rejected rows stay rejected: taking columns only lowers a row's maximum
        pos = torch.arange(k, device=device)
        first = torch.full((m,), k, dtype=torch.long, device=device)
        first = first.scatter_reduce(0, best, pos, reduce="amin")
        conflict = torch.nonzero(first[best] != pos, as_tuple=False)
        cut = int(conflict[0, 0]) if conflict.numel() > 0 else k
        cols[rows[:cut]] = best[:cut]
        conf_out[rows[:cut]] = conf[:cut]
        work[:, best[:cut]] = 0.0
        pending = rows[cut:]
    return cols, conf_out
