"""Reading frames from a video file or an image folder, and writing an MP4."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from masa_core.errors import MasaError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


class VideoError(MasaError, OSError):
    """A video or image folder cannot be read or written."""


class FrameSource:
    """RGB frames of a video file or of the images in a folder (sorted by name).

    Iterating yields (H, W, 3) uint8 RGB arrays; ``len()`` is the frame count (for a video, as
    its container reports it); ``fps`` is the video's rate (25 for a folder). ``frames_read`` counts
    the frames the last iteration yielded; :meth:`shortfall` says when a video ended before the
    count its container declares (truncated or damaged).
    """

    def __init__(self, path: str | Path, max_frames: int | None = None) -> None:
        self.path = Path(path)
        self.max_frames = max_frames
        self.frames_read = 0
        if self.path.is_dir():
            self._images = sorted(p for p in self.path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            if not self._images:
                raise VideoError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in folder {self.path}")
            self.fps = 25.0
            count = len(self._images)
        else:
            self._images = []
            cap = self._open()
            self.fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
            count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
            cap.release()
        self._count = min(count, max_frames) if max_frames else count

    def _open(self) -> cv2.VideoCapture:
        if not self.path.is_file():
            raise VideoError(f"input not found: {self.path}")
        cap = cv2.VideoCapture(str(self.path))
        ok, _ = cap.read() if cap.isOpened() else (False, None)
        if not ok:
            cap.release()
            raise VideoError(f"cannot read video {self.path}: not a video OpenCV can decode")
        cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
        return cap

    def __len__(self) -> int:
        return self._count

    def shortfall(self) -> str | None:
        """After a full iteration of a video: why it yielded fewer frames than declared, else None."""
        if self._images or self.frames_read >= self._count:
            return None
        return (
            f"video {self.path} ended after {self.frames_read} of the {self._count} frames its container "
            "declares (truncated or damaged)"
        )

    def __iter__(self) -> Iterator[np.ndarray]:
        self.frames_read = 0
        if self._images:
            for i, p in enumerate(self._images):
                if self.max_frames and i >= self.max_frames:
                    return
                bgr = cv2.imread(str(p), cv2.IMREAD_COLOR)
                if bgr is None:
                    raise VideoError(f"cannot read image {p}")
                self.frames_read += 1
                yield cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            return
        cap = self._open()
        try:
            i = 0
            while not self.max_frames or i < self.max_frames:
                ok, bgr = cap.read()
                if not ok:
                    return
                self.frames_read += 1
                yield cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
                i += 1
        finally:
            cap.release()


class VideoWriter:
    """Writes RGB frames to an MP4 (mp4v); opened on the first frame, so its size is known."""

    def __init__(self, path: str | Path, fps: float) -> None:
        self.path = Path(path)
        self.fps = fps
        self._writer: cv2.VideoWriter | None = None

    def write(self, frame_rgb: np.ndarray) -> None:
        if self._writer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            h, w = frame_rgb.shape[:2]
            self._writer = cv2.VideoWriter(str(self.path), cv2.VideoWriter_fourcc(*"mp4v"), self.fps, (w, h))
            if not self._writer.isOpened():
                raise VideoError(f"cannot open {self.path} for writing")
        self._writer.write(cv2.cvtColor(frame_rgb, cv2.COLOR_RGB2BGR))

    def close(self) -> None:
        if self._writer is not None:
            self._writer.release()
            self._writer = None

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
