"""Unlabeled images → pairs of augmented views with instance correspondences.

A folder of images (any of the usual suffixes, searched recursively) is the whole data set; each
image's instances come from an SA-1B annotation file beside it or from SAM's automatic masks
(:class:`ProposalCache`). Pair ``(index, epoch)`` is drawn from its own seeded generator, so a
run, a resumed run and every DDP rank see the same pairs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from masa_core.errors import MasaError
from masa_core.train.augment import AugmentConfig, View, instance_map, make_pair
from masa_core.train.proposals import ProposalCache, ProposalConfig
from masa_core.video_io import IMAGE_SUFFIXES

HELD_OUT_PARTS = ("mot15", "vtest")  # evaluation data: never trained on


@dataclass(frozen=True)
class DataConfig:
    """images: folder of unlabeled images; cache: proposal cache (empty → ``<images>/.proposals``)."""

    images: str = "data/train_images"
    cache: str = ""
    repeats: int = 1  # pairs per image per epoch
    holdout_every: int = 10  # every n-th image (sorted by path) is held out of training; 0 = none
    proposals: ProposalConfig = field(default_factory=ProposalConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)


class DataError(MasaError, ValueError):
    """The training data cannot be used."""


class PairDataset:
    """``len(images) * repeats`` view pairs per epoch; ``pair(i, epoch)`` is deterministic."""

    def __init__(self, cfg: DataConfig, seed: int = 0, device: str = "cpu", split: str = "train") -> None:
        """``split``: "train" (without the held-out images), "holdout" (only them) or "all"."""
        cfg.augment.validate()
        if split not in ("train", "holdout", "all"):
            raise ValueError(f"split = {split!r}: expected train, holdout or all")
        root = Path(cfg.images)
        if not root.is_dir():
            raise DataError(f"training images: {root} is not a folder")
        self.paths = sorted(
            p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and not p.parent.name.startswith(".")
        )
        if not self.paths:
            raise DataError(f"no images ({', '.join(IMAGE_SUFFIXES)}) under {root}")
        if split != "all" and cfg.holdout_every > 0:
            n = cfg.holdout_every
            self.paths = [p for i, p in enumerate(self.paths) if (i % n == n - 1) == (split == "holdout")]
            if not self.paths:
                raise DataError(f"no {split} images under {root} with holdout_every = {n}")
        held = [p for p in self.paths if any(part in str(p).lower() for part in HELD_OUT_PARTS)]
        if held:
            raise DataError(f"refusing held-out evaluation data in the training set: {held[0]}")
        self.cfg = cfg
        self.seed = seed
        self.proposals = ProposalCache(cfg.cache or root / ".proposals", cfg.proposals, device)
        self._items: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def __len__(self) -> int:
        return len(self.paths) * self.cfg.repeats

    def item(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """(RGB image, uint16 instance-ID map) of image ``index``, read once and kept."""
        index %= len(self.paths)
        if index not in self._items:
            path = self.paths[index]
            bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if bgr is None:
                raise DataError(f"cannot read image {path}")
            rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            masks, _ = self.proposals.masks(path, rgb)
            self._items[index] = (rgb, instance_map(masks))
        return self._items[index]

    def prepare(self) -> None:
        """Read every image and compute (or load) its proposals up front."""
        for i in range(len(self.paths)):
            self.item(i)

    def pair(self, index: int, epoch: int) -> tuple[View, View]:
        rng = np.random.default_rng([self.seed, epoch, index])
        image, ids = self.item(index)
        mix = None
        if len(self.paths) > 1:
            other = (index % len(self.paths) + 1 + int(rng.integers(len(self.paths) - 1))) % len(self.paths)
            mix = self.item(other)
        return make_pair(rng, image, ids, self.cfg.augment, mix)
