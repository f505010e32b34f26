"""Optional plug-in: an Ultralytics YOLO model from weights the user provides.

Needs ``pip install ultralytics`` (not a dependency of this package); imported on construction.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from masa_core.detectors.base import Detections
from masa_core.errors import MissingPackageError

INSTALL_HINT = "pip install ultralytics"


def class_ids_for(names: Sequence[str], wanted: Sequence[str]) -> list[int]:
    """Indices in ``names`` of the ``wanted`` class names (case-insensitive); ValueError if unknown."""
    lower = [n.lower() for n in names]
    missing = [w for w in wanted if w.lower() not in lower]
    if missing:
        shown = ", ".join(names[:20]) + (", ..." if len(names) > 20 else "")
        raise ValueError(f"unknown class name(s) {missing}; the model knows: {shown}")
    return [lower.index(w.lower()) for w in wanted]


def names_tuple(names: Mapping[int, str] | Sequence[str]) -> tuple[str, ...]:
    """Ultralytics ``model.names`` ({id: name} or a list) as a tuple indexed by class id."""
    if isinstance(names, Mapping):
        return tuple(str(names[i]) for i in range(max(names) + 1)) if names else ()
    return tuple(str(n) for n in names)


class UltralyticsYOLO:
    """Any Ultralytics detection model (YOLOv8/11, RT-DETR, ...) loaded from ``weights``.

    ``class_names`` are the model's; ``classes`` restricts output to some of them. The frame is
    passed as BGR, which Ultralytics assumes for numpy arrays.
    """

    def __init__(
        self,
        weights: str | Path,
        score_thr: float = 0.25,
        nms_iou_thr: float = 0.7,
        classes: Sequence[str] = (),
        device: str = "cpu",
        imgsz: int = 640,
    ) -> None:
        try:
            from ultralytics import YOLO
        except ImportError as err:
            message = f"the 'yolo' detector needs the ultralytics package: {INSTALL_HINT} ({err})"
            raise MissingPackageError(message) from err
        if not Path(weights).is_file():
            raise FileNotFoundError(f"YOLO weights not found: {weights}")
        self._model: Any = YOLO(str(weights))
        self.class_names: tuple[str, ...] = names_tuple(self._model.names)
        self._class_ids = class_ids_for(self.class_names, classes) if classes else None
        self.score_thr = float(score_thr)
        self.nms_iou_thr = float(nms_iou_thr)
        self.device = device
        self.imgsz = int(imgsz)

    def __call__(self, frame: np.ndarray, frame_index: int = 0) -> Detections:
        bgr = np.ascontiguousarray(frame[..., ::-1])
        result = self._model.predict(
            bgr,
            conf=self.score_thr,
            iou=self.nms_iou_thr,
            classes=self._class_ids,
            device=self.device,
            imgsz=self.imgsz,
            verbose=False,
        )[0]
        boxes = result.boxes
        if boxes is None or len(boxes) == 0:
            return Detections.empty()
        return Detections(boxes.xyxy.cpu().numpy(), boxes.conf.cpu().numpy(), boxes.cls.cpu().numpy().astype(np.int64))
