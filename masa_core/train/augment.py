"""Two augmented views of one image that carry SAM's instances along, so every instance seen in
both views is a free correspondence (MASA's training signal).

Geometry is one 2×3 affine matrix per view, composed from large-scale jitter (resize the image
by a random factor of the output size), horizontal flip, rotation, shear and a random crop
(translation of the output window); the image is warped bilinearly and the instance-ID map
(painted from the masks, smaller masks on top) with nearest neighbour, so an instance's pixels
land exactly where the image's do. Colour jitter acts on each view alone. MixUp blends a second
image, augmented the same way, into both views; its instances join with IDs of their own.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

MIXUP_ID_OFFSET = 10_000
PAD_VALUE = 114


@dataclass(frozen=True)
class AugmentConfig:
    """Ranges of the random augmentations (official MASA uses the same kinds, with larger data)."""

    out_size: int = 256
    scale_range: tuple[float, float] = (0.5, 2.0)  # large-scale jitter: longest side / out_size
    rotate_deg: float = 10.0
    shear_deg: float = 2.0
    flip_prob: float = 0.5
    brightness: float = 0.25
    contrast: float = 0.25
    saturation: float = 0.25
    hue_deg: float = 5.0
    mixup_prob: float = 0.3
    mixup_ratio: tuple[float, float] = (0.3, 0.5)  # weight of the blended-in image
    min_area: int = 32  # pixels of an instance in a view
    min_visible: float = 0.3  # fraction of its warped area inside the view

    def validate(self) -> None:
        if self.out_size < 32 or self.out_size % 32:
            raise ValueError(f"out_size = {self.out_size}: must be a multiple of 32, at least 32")
        lo, hi = self.scale_range
        if not 0 < lo <= hi:
            raise ValueError(f"scale_range = {self.scale_range}: need 0 < low <= high")
        if not 0 <= self.mixup_prob <= 1 or not 0 <= self.flip_prob <= 1:
            raise ValueError("mixup_prob and flip_prob are probabilities in [0, 1]")


@dataclass
class View:
    """One augmented view: (S, S, 3) uint8 RGB image, (N, 4) float32 x1y1x2y2 boxes and (N,) IDs
    of the instances visible in it, the (S, S) uint16 ID maps (0 = no instance) it was cut from:
    ``id_map`` for the image and ``mix_id_map`` for the blended-in one (None without MixUp), and the
    2×3 ``matrix`` taking source-image pixels to view pixels."""

    image: np.ndarray
    boxes: np.ndarray
    ids: np.ndarray
    id_map: np.ndarray
    mix_id_map: np.ndarray | None = None
    matrix: np.ndarray | None = None


def instance_map(masks: np.ndarray) -> np.ndarray:
    """(M, H, W) bool masks (M may be 0) → (H, W) uint16 map of instance index + 1, smaller masks painted last."""
    if len(masks) > 65_534:
        raise ValueError("at most 65534 instances per image")
    out = np.zeros(masks.shape[1:], dtype=np.uint16)
    for i in np.argsort([-m.sum() for m in masks], kind="stable"):
        out[masks[i]] = i + 1
    return out


def random_affine(rng: np.random.Generator, hw: tuple[int, int], cfg: AugmentConfig) -> np.ndarray:
    """A 2×3 matrix from source pixels to output pixels (see the module docstring)."""
    h, w = hw
    s = cfg.out_size * rng.uniform(*cfg.scale_range) / max(h, w)
    angle = math.radians(rng.uniform(-cfg.rotate_deg, cfg.rotate_deg))
    shear = math.tan(math.radians(rng.uniform(-cfg.shear_deg, cfg.shear_deg)))
    flip = -1.0 if rng.random() < cfg.flip_prob else 1.0
    # About the image centre: flip, shear, rotate, scale.
    c, si = math.cos(angle), math.sin(angle)
    linear = s * np.array([[c, -si], [si, c]]) @ np.array([[1.0, shear], [0.0, 1.0]]) @ np.diag([flip, 1.0])
    centre = np.array([w / 2, h / 2])
    # Random crop: place the transformed centre so the output window falls anywhere on the image.
    half = 0.5 * np.abs(linear) @ np.array([w, h])  # half extent of the warped image
    lo = np.minimum(cfg.out_size - half, half)
    hi = np.maximum(cfg.out_size - half, half)
    target = rng.uniform(lo, hi)
    return np.hstack([linear, (target - linear @ centre)[:, None]])


def warp(image: np.ndarray, ids: np.ndarray, matrix: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Image (bilinear, grey border) and ID map (nearest, 0 border) through one affine matrix."""
    img = cv2.warpAffine(
        image,
        matrix,
        (size, size),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=(PAD_VALUE,) * 3,
    )
    idm = cv2.warpAffine(
        ids, matrix, (size, size), flags=cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT, borderValue=0
    )
    return img, idm


def colour_jitter(rng: np.random.Generator, image: np.ndarray, cfg: AugmentConfig) -> np.ndarray:
    """Random brightness, contrast, saturation and hue of a uint8 RGB image."""
    hsv = cv2.cvtColor(image, cv2.COLOR_RGB2HSV).astype(np.float32)
    hsv[..., 0] = (hsv[..., 0] + rng.uniform(-cfg.hue_deg, cfg.hue_deg) / 2) % 180  # OpenCV hue is degrees / 2
    hsv[..., 1] *= rng.uniform(1 - cfg.saturation, 1 + cfg.saturation)
    out = cv2.cvtColor(hsv.clip(0, 255).astype(np.uint8), cv2.COLOR_HSV2RGB).astype(np.float32)
    mean = out.mean()
    out = (out - mean) * rng.uniform(1 - cfg.contrast, 1 + cfg.contrast) + mean
    out = out * rng.uniform(1 - cfg.brightness, 1 + cfg.brightness)
    return out.clip(0, 255).astype(np.uint8)


def visible_instances(
    idm: np.ndarray, source_areas: np.ndarray, matrix: np.ndarray, cfg: AugmentConfig
) -> tuple[np.ndarray, np.ndarray]:
    """Boxes and IDs of instances with at least ``min_area`` pixels and ``min_visible`` of their
    warped area in the view."""
    labels, counts = np.unique(idm, return_counts=True)
    det = abs(np.linalg.det(matrix[:, :2]))
    boxes, ids = [], []
    for label, count in zip(labels, counts, strict=True):
        if label == 0 or count < cfg.min_area or count < cfg.min_visible * source_areas[label - 1] * det:
            continue
        ys, xs = np.nonzero(idm == label)
        boxes.append((xs.min(), ys.min(), xs.max() + 1, ys.max() + 1))
        ids.append(int(label))
    return np.asarray(boxes, dtype=np.float32).reshape(-1, 4), np.asarray(ids, dtype=np.int64)


def make_view(
    rng: np.random.Generator,
    image: np.ndarray,
    ids: np.ndarray,
    cfg: AugmentConfig,
    mix: tuple[np.ndarray, np.ndarray, float] | None = None,
) -> View:
    """One view of ``image`` (with its ID map); ``mix`` = (image, ID map, weight) to blend in."""
    areas = np.bincount(ids.ravel(), minlength=int(ids.max(initial=0)) + 1)[1:].astype(np.float64)
    matrix = random_affine(rng, image.shape[:2], cfg)
    img, idm = warp(image, ids, matrix, cfg.out_size)
    boxes, vis = visible_instances(idm, areas, matrix, cfg)
    mix_idm = None
    if mix is not None:
        mix_image, mix_ids, weight = mix
        mix_areas = np.bincount(mix_ids.ravel(), minlength=int(mix_ids.max(initial=0)) + 1)[1:].astype(np.float64)
        mix_matrix = random_affine(rng, mix_image.shape[:2], cfg)
        mimg, mix_idm = warp(mix_image, mix_ids, mix_matrix, cfg.out_size)
        img = cv2.addWeighted(img, 1 - weight, mimg, weight, 0)
        mboxes, mvis = visible_instances(mix_idm, mix_areas, mix_matrix, cfg)
        boxes, vis = np.concatenate([boxes, mboxes]), np.concatenate([vis, mvis + MIXUP_ID_OFFSET])
    return View(colour_jitter(rng, img, cfg), boxes, vis, idm, mix_idm, matrix)


def make_pair(
    rng: np.random.Generator,
    image: np.ndarray,
    ids: np.ndarray,
    cfg: AugmentConfig,
    mix: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[View, View]:
    """Two independent views of ``image`` and its (H, W) uint16 instance-ID map (see
    :func:`instance_map`); an instance keeps its ID in both. ``mix`` = (image, ID map) of a second
    image, blended into both views with probability ``cfg.mixup_prob``; its IDs are offset by
    ``MIXUP_ID_OFFSET``."""
    blend = None
    if mix is not None and rng.random() < cfg.mixup_prob:
        blend = (mix[0], mix[1], float(rng.uniform(*cfg.mixup_ratio)))
    return make_view(rng, image, ids, cfg, blend), make_view(rng, image, ids, cfg, blend)
