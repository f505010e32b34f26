"""Camera-motion compensation for a moving robot: the image affine between consecutive frames.

This is BoT-SORT's ``sparseOptFlow`` global motion compensation, with OpenCV: Shi-Tomasi corners
in the previous (half-size, grey) frame, tracked into the current one with pyramidal Lucas-Kanade
optical flow, and a rotation + uniform scale + translation fitted with RANSAC
(``cv2.estimateAffinePartial2D``). The tracker moves its predicted boxes by that affine before it
matches (``tracker.camera_motion: sparse_flow``).
"""

from __future__ import annotations

import cv2
import numpy as np

IDENTITY = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])


class SparseFlowMotion:
    """Callable: RGB frame → 2×3 affine from the previous frame to this one (identity when unknown).

    downscale: the frames are shrunk by this factor before corners are found (BoT-SORT: 2).
    """

    def __init__(self, downscale: int = 2, max_corners: int = 1000) -> None:
        self.downscale = downscale
        self.max_corners = max_corners
        self.reset()

    def reset(self) -> None:
        """Forget the previous frame (a new sequence starts)."""
        self._prev: np.ndarray | None = None
        self._prev_points: np.ndarray | None = None

    def __call__(self, frame_rgb: np.ndarray) -> np.ndarray:
        grey = cv2.cvtColor(frame_rgb, cv2.COLOR_RGB2GRAY)
        h, w = grey.shape
        grey = cv2.resize(grey, (max(w // self.downscale, 1), max(h // self.downscale, 1)))
        prev, prev_points = self._prev, self._prev_points
        self._prev = grey
        self._prev_points = cv2.goodFeaturesToTrack(
            grey, maxCorners=self.max_corners, qualityLevel=0.01, minDistance=1, blockSize=3
        )
        if prev is None or prev_points is None or prev.shape != grey.shape:
            return IDENTITY.copy()
        points, status, _ = cv2.calcOpticalFlowPyrLK(prev, grey, prev_points, None)
        ok = status.reshape(-1) == 1
        if ok.sum() < 5:
            return IDENTITY.copy()
        affine, _ = cv2.estimateAffinePartial2D(prev_points[ok], points[ok], method=cv2.RANSAC)
        if affine is None or not np.isfinite(affine).all():
            return IDENTITY.copy()
        affine = affine.astype(np.float64)
        affine[:, 2] *= self.downscale
        return affine
