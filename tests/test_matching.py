"""Pure matching functions checked against hand-computed numbers."""

from __future__ import annotations

import math

import pytest
import torch

from masa_core.tracking.matching import (
    bisoftmax_similarity,
    cosine_similarity,
    distance_gate,
    greedy_assign,
    match_similarity,
    softmax_similarity,
    suppress_distractors,
)

E = math.e


def test_bisoftmax_similarity_hand_computed() -> None:
    det = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    memo = torch.tensor([[1.0, 0.0]])
    # f = [[1], [0]]: row softmax is 1 everywhere, column softmax is [e, 1] / (e + 1).
    expected = torch.tensor([[(1 + E / (E + 1)) / 2], [(1 + 1 / (E + 1)) / 2]])
    torch.testing.assert_close(bisoftmax_similarity(det, memo), expected)


def test_softmax_similarity_is_row_softmax() -> None:
    det = torch.tensor([[1.0, 0.0]])
    memo = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    expected = torch.tensor([[E / (E + 1), 1 / (E + 1)]])
    torch.testing.assert_close(softmax_similarity(det, memo), expected)


def test_cosine_similarity_hand_computed() -> None:
    det = torch.tensor([[3.0, 4.0], [0.0, 0.0]])
    memo = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    expected = torch.tensor([[0.6, 0.8], [0.0, 0.0]])
    torch.testing.assert_close(cosine_similarity(det, memo), expected)


def test_match_similarity_bisoftmax_is_mean_of_bisoftmax_and_cosine() -> None:
    det = torch.tensor([[1.0, 0.0]])
    memo = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    # bisoftmax = ([e, 1] / (e + 1) + [1, 1]) / 2, cosine = [1, 0].
    bi = torch.tensor([(E / (E + 1) + 1) / 2, (1 / (E + 1) + 1) / 2])
    expected = ((bi + torch.tensor([1.0, 0.0])) / 2)[None]
    torch.testing.assert_close(match_similarity(det, memo, "bisoftmax"), expected)
    torch.testing.assert_close(match_similarity(det, memo, "cosine"), torch.tensor([[1.0, 0.0]]))


def test_match_similarity_casts_half_precision_to_float32() -> None:
    det = torch.tensor([[1.0, 0.0]], dtype=torch.float16)
    memo = torch.tensor([[1.0, 0.0]], dtype=torch.bfloat16)
    out = match_similarity(det, memo, "bisoftmax")
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, torch.tensor([[1.0]]))


def test_match_similarity_rejects_unknown_metric() -> None:
    with pytest.raises(ValueError, match="match_metric = 'dot'"):
        match_similarity(torch.ones(1, 2), torch.ones(1, 2), "dot")


def test_suppress_distractors_official_rule() -> None:
    # Sorted by score. score_thr 0.5, iou_thr 0.3.
    boxes = torch.tensor(
        [
            [0.0, 0.0, 10.0, 10.0],  # A 0.9 kept (first row)
            [0.0, 0.0, 10.0, 10.0],  # D 0.6 kept: score >= score_thr, even at IoU 1
            [5.0, 0.0, 15.0, 10.0],  # B 0.4 IoU(A) = 50/150 > 0.3 -> dropped
            [10.0, 0.0, 20.0, 10.0],  # C 0.3 IoU(A) = 0, IoU(B) = 1/3 -> dropped (B counts though dropped)
            [100.0, 100.0, 110.0, 110.0],  # E 0.1 overlaps nothing -> kept
        ]
    )
    scores = torch.tensor([0.9, 0.6, 0.4, 0.3, 0.1])
    keep = suppress_distractors(boxes, scores, score_thr=0.5, iou_thr=0.3)
    assert keep.tolist() == [True, True, False, False, True]


def test_suppress_distractors_thresholds_are_strict() -> None:
    boxes = torch.tensor([[0.0, 0.0, 10.0, 10.0], [0.0, 0.0, 10.0, 10.0], [5.0, 0.0, 15.0, 10.0]])
    # Row 1: score == score_thr is not a distractor candidate. Row 2: IoU with rows 0/1 is exactly 1/3.
    scores = torch.tensor([0.9, 0.5, 0.2])
    keep = suppress_distractors(boxes, scores, score_thr=0.5, iou_thr=1 / 3)
    assert keep.tolist() == [True, True, True]


def test_suppress_distractors_empty() -> None:
    assert suppress_distractors(torch.zeros(0, 4), torch.zeros(0), 0.5, 0.3).shape == (0,)


def test_distance_gate_hand_computed() -> None:
    det = torch.tensor([[-5.0, -5.0, 5.0, 5.0]])  # centre (0, 0)
    memo = torch.tensor([[95.0, -5.0, 105.0, 5.0], [15.0, -5.0, 25.0, 5.0]])  # centres (100, 0), (20, 0)
    # fps 6: growth factor 1, smoothing 100 / 6. Gap 0 -> radius 50.
    gate = distance_gate(det, memo, torch.tensor([0, 0]), max_distance=50.0, fps=6)
    torch.testing.assert_close(gate, torch.tensor([[math.exp(-3.0), 1.0]]))
    # Gap 1 -> radius 50 * e > 100: inside.
    gate = distance_gate(det, memo, torch.tensor([1, 0]), max_distance=50.0, fps=6)
    torch.testing.assert_close(gate, torch.tensor([[1.0, 1.0]]))


def test_greedy_assign_earlier_row_wins_its_best_column() -> None:
    sim = torch.tensor([[0.9, 0.8], [0.95, 0.1]])
    cols, conf = greedy_assign(sim, torch.tensor([True, True]), 0.5)
    assert cols.tolist() == [0, -1]  # row 1's remaining best (0.1) is below threshold
    torch.testing.assert_close(conf, torch.tensor([0.9, 0.0]))


def test_greedy_assign_falls_back_to_next_best_column() -> None:
    sim = torch.tensor([[0.9, 0.8], [0.95, 0.7]])
    cols, conf = greedy_assign(sim, torch.tensor([True, True]), 0.5)
    assert cols.tolist() == [0, 1]
    torch.testing.assert_close(conf, torch.tensor([0.9, 0.7]))


def test_greedy_assign_ineligible_row_takes_nothing() -> None:
    sim = torch.tensor([[0.9, 0.1], [0.9, 0.1]])
    cols, _ = greedy_assign(sim, torch.tensor([False, True]), 0.5)
    assert cols.tolist() == [-1, 0]


def test_greedy_assign_threshold_is_strict() -> None:
    cols, _ = greedy_assign(torch.tensor([[0.5]]), torch.tensor([True]), 0.5)
    assert cols.tolist() == [-1]


def test_greedy_assign_empty_inputs() -> None:
    cols, conf = greedy_assign(torch.zeros(3, 0), torch.ones(3, dtype=torch.bool), 0.5)
    assert cols.tolist() == [-1, -1, -1] and conf.tolist() == [0.0, 0.0, 0.0]
    cols, _ = greedy_assign(torch.zeros(0, 2), torch.ones(0, dtype=torch.bool), 0.5)
    assert cols.shape == (0,)


def _sequential_greedy(sim: torch.Tensor, eligible: torch.Tensor, thr: float) -> list[int]:
    """Literal row-by-row loop of the official tracker, for comparison."""
    work = sim.clone()
    out = [-1] * sim.shape[0]
    for i in range(sim.shape[0]):
        conf, j = torch.max(work[i], dim=0)
        if conf > thr and eligible[i]:
            out[i] = int(j)
            work[:i, j] = 0
            work[i + 1 :, j] = 0
    return out


def test_greedy_assign_equals_sequential_loop_on_conflicting_matrices() -> None:
    gen = torch.Generator().manual_seed(0)
    for trial in range(200):
        n, m = int(torch.randint(1, 12, (1,), generator=gen)), int(torch.randint(1, 6, (1,), generator=gen))
        # Few columns and correlated rows -> many conflicts; negative values as with cosine.
        sim = torch.rand(n, m, generator=gen) * 2 - 0.5
        eligible = torch.rand(n, generator=gen) > 0.2
        cols, conf = greedy_assign(sim, eligible, 0.3)
        assert cols.tolist() == _sequential_greedy(sim, eligible, 0.3), trial
        taken = cols[cols >= 0]
        assert taken.unique().numel() == taken.numel()
        torch.testing.assert_close(conf[cols >= 0], sim[cols >= 0, taken])
