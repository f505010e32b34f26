"""Retrieval accuracy between augmented views, on hand-made views with known answers."""

from __future__ import annotations

import numpy as np
import torch

from masa_core.eval.retrieval import retrieval_accuracy
from masa_core.train.augment import View


def view(ids: list[int]) -> View:
    boxes = np.array([[10 * i, 0, 10 * i + 5, 5] for i in ids], np.float32)
    return View(np.zeros((32, 32, 3), np.uint8), boxes, np.array(ids), np.zeros((32, 32), np.uint16))


def oracle(image: np.ndarray, boxes: np.ndarray) -> torch.Tensor:
    """One-hot of the instance ID, read back from the box position."""
    return torch.nn.functional.one_hot(torch.as_tensor(boxes[:, 0] // 10, dtype=torch.long), 8).float()


def constant(image: np.ndarray, boxes: np.ndarray) -> torch.Tensor:
    return torch.ones(len(boxes), 4)


def test_perfect_embedding_retrieves_every_shared_instance() -> None:
    r = retrieval_accuracy(oracle, [(view([1, 2, 3]), view([2, 3, 4]))])
    assert (r.accuracy, r.queries, r.pairs, r.gallery) == (1.0, 4, 1, 3.0)


def test_constant_embedding_only_hits_by_chance_of_order() -> None:
    # ties go to the first candidate: a→b finds 2 (hit for 2, miss for 3); b→a finds 1 (two misses)
    r = retrieval_accuracy(constant, [(view([1, 2, 3]), view([2, 3, 4]))])
    assert r.accuracy == 0.25 and r.queries == 4


def test_pairs_without_shared_instances_or_with_one_candidate_are_skipped() -> None:
    r = retrieval_accuracy(oracle, [(view([1, 2]), view([3, 4])), (view([1]), view([1, 2]))])
    assert (r.queries, r.pairs, r.accuracy) == (0, 0, 0.0)
