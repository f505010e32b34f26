"""Instance proposals for training: SAM's automatic ("everything") masks, cached on disk.

Each image gets one JSON file in the SA-1B annotation form — ``{"image": {...}, "annotations":
[{"segmentation": COCO RLE, "bbox": [x, y, w, h], "area", "predicted_iou", "stability_score"}]}``
— so SA-1B's own files and our cache are read by the same code. A cache entry records the image's
sha256 and the generator settings and is regenerated when either changes.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from masa_core.assets import asset_path
from masa_core.formats import rle
from masa_core.models.checkpoint import check_state_dict, load_state_dict_file


@dataclass(frozen=True)
class ProposalConfig:
    """Settings of SAM's automatic mask generator (segment-anything's names)."""

    checkpoint: str = ""  # MobileSAM ``mobile_sam.pt``; empty → the fetched asset
    points_per_side: int = 16
    pred_iou_thresh: float = 0.86
    stability_score_thresh: float = 0.9
    min_mask_region_area: int = 100
    max_masks: int = 64  # keep the largest masks


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class ProposalCache:
    """Reads SA-1B-style mask files next to the images, or generates and caches SAM masks."""

    def __init__(self, cache_dir: str | Path, cfg: ProposalConfig | None = None, device: str = "cpu") -> None:
        self.cache_dir = Path(cache_dir)
        self.cfg = cfg or ProposalConfig()
        self.device = device
        self._generator: Any = None

    def entry(self, image_path: Path) -> Path:
        return self.cache_dir / f"{image_path.stem}.json"

    def masks(self, image_path: str | Path, image_rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(M, H, W) bool masks and (M, 4) x1y1x2y2 boxes of one image.

        An SA-1B annotation file with the image's stem beside it wins; else the cache; else SAM.
        """
        image_path = Path(image_path)
        sa1b = image_path.with_suffix(".json")
        if sa1b.is_file():
            return read_annotations(json.loads(sa1b.read_text()), image_rgb.shape[:2], self.cfg.max_masks)
        entry = self.entry(image_path)
        key = {"sha256": file_sha256(image_path), "generator": asdict(self.cfg)}
        if entry.is_file():
            data = json.loads(entry.read_text())
            if data.get("cache_key") == key:
                return read_annotations(data, image_rgb.shape[:2], self.cfg.max_masks)
        data = {"cache_key": key, **self.generate(image_rgb)}
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = entry.with_suffix(".json.part")
        tmp.write_text(json.dumps(data))
        tmp.replace(entry)
        return read_annotations(data, image_rgb.shape[:2], self.cfg.max_masks)

    def generate(self, image_rgb: np.ndarray) -> dict:
        """SA-1B-style annotations of SAM's automatic masks for one RGB image."""
        if self._generator is None:
            self._generator = build_mask_generator(self.cfg, self.device)
        with torch.inference_mode():
            found = self._generator.generate(image_rgb)
        found.sort(key=lambda m: -m["area"])
        h, w = image_rgb.shape[:2]
        return {
            "image": {"height": h, "width": w},
            "annotations": [
                {
                    "segmentation": rle.encode(m["segmentation"]),
                    "bbox": [float(v) for v in m["bbox"]],
                    "area": int(m["area"]),
                    "predicted_iou": float(m["predicted_iou"]),
                    "stability_score": float(m["stability_score"]),
                }
                for m in found[: self.cfg.max_masks]
            ],
        }


def read_annotations(data: dict, hw: tuple[int, int], max_masks: int) -> tuple[np.ndarray, np.ndarray]:
    """Masks and boxes of an SA-1B-style annotation dict, largest first, at most ``max_masks``.

    Masks whose RLE size is not the image's are refused: they belong to another image.
    """
    anns = sorted(data.get("annotations", []), key=lambda a: -a.get("area", 0))[:max_masks]
    masks = []
    for a in anns:
        m = rle.decode(a["segmentation"])
        if m.shape != tuple(hw):
            raise ValueError(f"mask of size {m.shape} does not fit the image {tuple(hw)}")
        if m.any():
            masks.append(m)
    if not masks:
        return np.zeros((0, *hw), dtype=bool), np.zeros((0, 4), dtype=np.float32)
    stack = np.stack(masks)
    return stack, masks_to_boxes(stack)


def masks_to_boxes(masks: np.ndarray) -> np.ndarray:
    """(M, H, W) bool → (M, 4) float32 x1y1x2y2 boxes enclosing each mask's pixels (pixel edges)."""
    boxes = np.zeros((len(masks), 4), dtype=np.float32)
    for i, m in enumerate(masks):
        ys, xs = np.nonzero(m.any(axis=1))[0], np.nonzero(m.any(axis=0))[0]
        if len(ys):
            boxes[i] = (xs[0], ys[0], xs[-1] + 1, ys[-1] + 1)
    return boxes


def build_mask_generator(cfg: ProposalConfig, device: str = "cpu") -> Any:
    """segment-anything's ``SamAutomaticMaskGenerator`` over MobileSAM (weights_only loading)."""
    from segment_anything import SamAutomaticMaskGenerator

    with warnings.catch_warnings():  # mobile_sam re-registers timm models
        warnings.simplefilter("ignore")
        from mobile_sam import sam_model_registry

    sam = sam_model_registry["vit_t"](checkpoint=None)
    path = cfg.checkpoint or asset_path("mobile_sam")
    state = load_state_dict_file(path)
    check_state_dict(sam, state, f"{path} (MobileSAM)")
    sam.load_state_dict(state)
    sam.to(device).eval()
    return SamAutomaticMaskGenerator(
        sam,
        points_per_side=cfg.points_per_side,
        pred_iou_thresh=cfg.pred_iou_thresh,
        stability_score_thresh=cfg.stability_score_thresh,
        min_mask_region_area=cfg.min_mask_region_area,
    )
