"""INT8 on the CPU: the calibration data with which OpenVINO's runtime quantizes the adapter and the
track head (NNCF post-training quantization, ``model.int8``).

The calibration images are the user's own (``model.calibration_dir``: frames like the camera's); the
project ships none. Their inputs to each part come from the model's own torch forward passes: the
adapter's are the backbone's maps of each image, the track head's the RoI features of a grid of
boxes of three sizes over each image. The backbone stays fp32: quantized, it cost identities
(docs/benchmarks.md, "INT8 on the CPU").
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from masa_core.errors import MasaError
from masa_core.models.backends import ConvertedPart
from masa_core.video_io import IMAGE_SUFFIXES

INT8_PARTS = ("adapter", "track_head")
MIN_IMAGES = 4
MAX_IMAGES = 64
BOX_FRACTIONS = (0.1, 0.2, 0.4)  # box sides, as fractions of the image's shorter side
BOXES_PER_IMAGE = 32


class CalibrationError(MasaError, ValueError):
    """The calibration images cannot be used; one line, for the user."""


def calibration_images(folder: str | Path) -> list[Path]:
    """The image files of ``folder`` (at most :data:`MAX_IMAGES`, by name), or :class:`CalibrationError`."""
    path = Path(folder)
    if not path.is_dir():
        raise CalibrationError(f"model.calibration_dir = {str(folder)!r}: not a folder of images")
    files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)[:MAX_IMAGES]
    if len(files) < MIN_IMAGES:
        raise CalibrationError(
            f"model.calibration_dir = {str(folder)!r}: {len(files)} images; INT8 needs at least {MIN_IMAGES} "
            f"({', '.join(IMAGE_SUFFIXES)}), frames like the camera's"
        )
    return files


class Calibration:
    """The calibration set of one model: its digest (part of the converted model's cache key) and,
    computed on first use, each quantized part's inputs."""

    parts = INT8_PARTS

    def __init__(self, model: Any, folder: str | Path) -> None:
        self.model = model
        self.files = calibration_images(folder)
        digest = hashlib.sha256()
        for f in self.files:
            _read_rgb(f)  # every image is checked now, not at the first conversion
            digest.update(f.name.encode() + hashlib.sha256(f.read_bytes()).digest())
        self.digest = digest.hexdigest()
        self._inputs: dict[str, list[list[np.ndarray]]] | None = None

    def inputs(self, part: str, batch: int = 1) -> list[list[np.ndarray]]:
        """The inputs of ``part`` (one list of arrays per call) over the calibration images, each
        image repeated to a batch of ``batch`` (the adapter's; the track head takes any number of
        boxes). Handed out once: a later call (another batch size) computes them again."""
        if self._inputs is None or part not in self._inputs:
            self._inputs = self._compute()
        data = self._inputs.pop(part)
        return data if batch == 1 else [[np.repeat(a, batch, axis=0) for a in arrays] for arrays in data]

    def _compute(self) -> dict[str, list[list[np.ndarray]]]:
        inputs: dict[str, list[list[np.ndarray]]] = {name: [] for name in INT8_PARTS}
        backbone, adapter = _torch_forward(self.model.backbone), _torch_forward(self.model.adapter)
        with torch.no_grad():
            for f in self.files:
                rgb = _read_rgb(f)
                image, scale = self.model.preprocess(rgb)
                taps = backbone(image)
                inputs["adapter"].append([t.float().cpu().numpy() for t in taps])
                boxes = grid_boxes(rgb.shape[0] * scale, rgb.shape[1] * scale)
                rois = self.model.adapter.roi_extractor(adapter(taps), boxes.to(image), None)
                inputs["track_head"].append([rois.float().cpu().numpy()])
        return inputs


def grid_boxes(height: float, width: float) -> torch.Tensor:
    """At most :data:`BOXES_PER_IMAGE` boxes (x1, y1, x2, y2) tiling a ``height`` × ``width`` image
    at each of :data:`BOX_FRACTIONS` of its shorter side, taken evenly from all of them."""
    boxes = []
    for fraction in BOX_FRACTIONS:
        side = max(2.0, fraction * min(height, width))
        for y in np.arange(0.0, height - side + 1, side):
            for x in np.arange(0.0, width - side + 1, side):
                boxes.append((x, y, x + side, y + side))
    pick = np.linspace(0, len(boxes) - 1, min(len(boxes), BOXES_PER_IMAGE)).round().astype(int)
    return torch.tensor(np.asarray(boxes, dtype=np.float32)[pick])


def _torch_forward(module: torch.nn.Module) -> Any:
    """``module``'s own torch forward, also where a backend runs it."""
    forward = module.__dict__.get("forward")
    return forward.torch_forward if isinstance(forward, ConvertedPart) else module


def _read_rgb(path: Path) -> np.ndarray:
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise CalibrationError(f"model.calibration_dir: cannot read {path.name} as an image")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
