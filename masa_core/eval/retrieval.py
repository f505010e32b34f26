"""Instance retrieval between two augmented views: how often an instance's embedding in one view is
nearest (cosine) to the same instance's among every instance of the other view. This is the
training signal of MASA measured directly, on pairs the model was not trained on.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from masa_core.train.augment import View

Embedder = Callable[[np.ndarray, np.ndarray], Tensor]  # (RGB image, (N, 4) boxes) → (N, D)


@dataclass(frozen=True)
class RetrievalResult:
    """top-1 accuracy over ``queries`` (instances seen in both views, each view queried against the
    other); ``gallery`` is the mean number of candidates a query is ranked among."""

    accuracy: float
    queries: int
    pairs: int
    gallery: float


def retrieval_accuracy(embed: Embedder, pairs: Iterable[tuple[View, View]]) -> RetrievalResult:
    """Top-1 retrieval of shared instances across each pair's views, in both directions."""
    hits = queries = used = 0
    gallery = 0
    for a, b in pairs:
        shared = np.intersect1d(a.ids, b.ids)
        if len(shared) == 0 or len(a.ids) < 2 or len(b.ids) < 2:
            continue  # nothing to retrieve, or a trivial one-candidate gallery
        used += 1
        ea = F.normalize(embed(a.image, a.boxes).float().cpu(), dim=1)
        eb = F.normalize(embed(b.image, b.boxes).float().cpu(), dim=1)
        for (q_ids, q_emb), (g_ids, g_emb) in (((a.ids, ea), (b.ids, eb)), ((b.ids, eb), (a.ids, ea))):
            rows = [int(np.flatnonzero(q_ids == i)[0]) for i in shared]
            best = (q_emb[rows] @ g_emb.T).argmax(dim=1).numpy()
            hits += int((g_ids[best] == shared).sum())
            queries += len(shared)
            gallery += len(shared) * len(g_ids)
    return RetrievalResult(hits / max(queries, 1), queries, used, gallery / max(queries, 1))


def box_embedder(model: torch.nn.Module) -> Embedder:
    """A :class:`~masa_core.models.masa_model.MasaModel` as an :data:`Embedder`."""

    def embed(image: np.ndarray, boxes: np.ndarray) -> Tensor:
        with torch.inference_mode():
            return model(image, boxes)

    return embed
