"""Constant-velocity Kalman filter for many boxes at once, in real time (seconds).

The state of one box is ``(cx, cy, w, h, vx, vy, vw, vh)``: centre, size and their rates in pixels
per second, the box state of BoT-SORT's filter. Its noise model is BoT-SORT's too: standard
deviations proportional to the box's width and height, with weights 1/20 (position) and 1/160
(velocity) per frame of its nominal 30 fps. Here the step is a real time ``dt``: the process noise
grows linearly with ``dt`` and equals BoT-SORT's per-frame noise at ``dt = 1/30 s``, so a dropped
frame or a 10 Hz camera is a longer prediction, not a different filter.

Every function takes stacked arrays, ``mean (M, 8)`` and ``cov (M, 8, 8)``, and returns new ones.
"""

from __future__ import annotations

import numpy as np

NOMINAL_FPS = 30.0
POS_WEIGHT = 1.0 / 20
VEL_WEIGHT = 1.0 / 160
CHI2_95_4DOF = 9.4877  # Mahalanobis gate of DeepSORT / ByteTrack for a 4-d measurement
MIN_SIZE = 1.0  # pixels: predicted width and height never fall below this


def xyxy_to_xywh(boxes: np.ndarray) -> np.ndarray:
    """(N, 4) x1y1x2y2 → (N, 4) centre x, centre y, width, height."""
    wh = boxes[:, 2:] - boxes[:, :2]
    return np.concatenate([boxes[:, :2] + wh / 2, wh], axis=1)


def xywh_to_xyxy(xywh: np.ndarray) -> np.ndarray:
    """(N, 4) centre x, centre y, width, height → (N, 4) x1y1x2y2."""
    half = xywh[:, 2:4] / 2
    return np.concatenate([xywh[:, :2] - half, xywh[:, :2] + half], axis=1)


def _size_std(wh: np.ndarray, weight: float) -> np.ndarray:
    """(M, 4) standard deviations ``weight * (w, h, w, h)``."""
    return weight * np.concatenate([wh, wh], axis=1)


def initiate(boxes_xyxy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """New states from (M, 4) boxes: zero velocity, BoT-SORT's initial uncertainty."""
    z = xyxy_to_xywh(boxes_xyxy.astype(np.float64))
    mean = np.concatenate([z, np.zeros_like(z)], axis=1)
    std = np.concatenate(
        [_size_std(z[:, 2:], 2 * POS_WEIGHT), _size_std(z[:, 2:], 10 * VEL_WEIGHT * NOMINAL_FPS)], axis=1
    )
    cov = np.zeros((len(z), 8, 8))
    cov[:, np.arange(8), np.arange(8)] = std**2
    return mean, cov


def predict(mean: np.ndarray, cov: np.ndarray, dt: float) -> tuple[np.ndarray, np.ndarray]:
    """States ``dt`` seconds later (``dt >= 0``)."""
    if len(mean) == 0 or dt <= 0:
        return mean.copy(), cov.copy()
    transition = np.eye(8)
    transition[:4, 4:] = dt * np.eye(4)
    steps = dt * NOMINAL_FPS  # process noise in units of BoT-SORT's frames
    wh = np.maximum(mean[:, 2:4], MIN_SIZE)
    q = steps * np.concatenate([_size_std(wh, POS_WEIGHT) ** 2, _size_std(wh, VEL_WEIGHT * NOMINAL_FPS) ** 2], axis=1)
    mean = mean @ transition.T
    mean[:, 2:4] = np.maximum(mean[:, 2:4], MIN_SIZE)
    cov = transition @ cov @ transition.T
    cov[:, np.arange(8), np.arange(8)] += q
    return mean, cov


def project(mean: np.ndarray, cov: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Measurement-space (box) mean (M, 4) and covariance (M, 4, 4), measurement noise included."""
    r = _size_std(np.maximum(mean[:, 2:4], MIN_SIZE), POS_WEIGHT) ** 2
    s = cov[:, :4, :4].copy()
    s[:, np.arange(4), np.arange(4)] += r
    return mean[:, :4].copy(), s


def update(mean: np.ndarray, cov: np.ndarray, boxes_xyxy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """States corrected by one measured (M, 4) x1y1x2y2 box each."""
    z_mean, s = project(mean, cov)
    gain = np.linalg.solve(s, cov[:, :4, :]).transpose(0, 2, 1)  # (M, 8, 4) = P Hᵀ S⁻¹ (S symmetric)
    innovation = xyxy_to_xywh(boxes_xyxy.astype(np.float64)) - z_mean
    mean = mean + np.einsum("mij,mj->mi", gain, innovation)
    mean[:, 2:4] = np.maximum(mean[:, 2:4], MIN_SIZE)
    cov = cov - gain @ s @ gain.transpose(0, 2, 1)
    return mean, (cov + cov.transpose(0, 2, 1)) / 2


def gating_distance(mean: np.ndarray, cov: np.ndarray, boxes_xyxy: np.ndarray) -> np.ndarray:
    """(M, N) squared Mahalanobis distances between M predicted states and N boxes."""
    if len(mean) == 0 or len(boxes_xyxy) == 0:
        return np.zeros((len(mean), len(boxes_xyxy)))
    z_mean, s = project(mean, cov)
    d = xyxy_to_xywh(boxes_xyxy.astype(np.float64))[None, :, :] - z_mean[:, None, :]  # (M, N, 4)
    return np.einsum("mni,mij,mnj->mn", d, np.linalg.inv(s), d)


def warp(mean: np.ndarray, cov: np.ndarray, affine: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """States moved by a 2×3 image affine (camera motion between frames), as BoT-SORT's GMC does."""
    if len(mean) == 0:
        return mean.copy(), cov.copy()
    rot = np.kron(np.eye(4), affine[:, :2])  # (8, 8): the 2×2 part on every (x, y) pair
    mean = mean @ rot.T
    mean[:, :2] += affine[:, 2]
    mean[:, 2:4] = np.maximum(mean[:, 2:4], MIN_SIZE)
    return mean, rot @ cov @ rot.T
