"""Optional plug-in: an Ultralytics YOLO detection model from a ``.pt`` checkpoint the user provides.

Needs ``pip install --no-deps ultralytics==8.4.190`` (AGPL-3.0; not a dependency of this package,
imported on construction; scripts/setup.sh installs it). The checkpoint is loaded in ultralytics'
restricted mode (``torch.load`` with ``weights_only=True`` and an allow-list of its own model
classes, the switch its ``ULTRALYTICS_SAFE_LOAD=1`` turns on), never as a full pickle; see
docs/detectors.md.
"""

from __future__ import annotations

import os
import threading
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np

from masa_core.detectors.base import Detections
from masa_core.device import resolve_device as torch_device
from masa_core.errors import MasaError, MissingPackageError

# --no-deps: its metadata wants opencv-python beside our headless OpenCV (requirements-nodeps.txt).
INSTALL_HINT = "pip install --no-deps ultralytics==8.4.190"
# Set (unless the user set them) before ultralytics is imported: no DNS probe at import, no
# telemetry, update check, download or pip auto-install from the library.
OFFLINE_ENV = {"YOLO_OFFLINE": "1", "YOLO_AUTOINSTALL": "false"}
BOX_TASKS = ("detect", "segment", "pose")  # ultralytics tasks whose results carry axis-aligned boxes
_LOAD_LOCK = threading.Lock()  # the restricted-load switch is a module global of ultralytics


class YoloWeightsError(MasaError, ValueError):
    """The ``yolo`` detector's weights file or class names cannot be used; the message says why."""


def class_ids_for(names: Sequence[str], wanted: Sequence[str]) -> list[int]:
    """Indices in ``names`` of the ``wanted`` class names (case-insensitive); error if unknown."""
    lower = [n.lower() for n in names]
    missing = [w for w in wanted if w.lower() not in lower]
    if missing:
        shown = ", ".join(names[:20]) + (", ..." if len(names) > 20 else "")
        raise YoloWeightsError(f"unknown class name(s) {missing}; the model knows: {shown}")
    return [lower.index(w.lower()) for w in wanted]


def names_tuple(names: Mapping[int, str] | Sequence[str]) -> tuple[str, ...]:
    """Ultralytics ``model.names`` ({id: name} or a list) as a tuple indexed by class id."""
    if isinstance(names, Mapping):
        return tuple(str(names[i]) for i in range(max(names) + 1)) if names else ()
    return tuple(str(n) for n in names)


def check_weights_file(weights: str | Path) -> Path:
    """``weights`` as an absolute path to a non-empty ``.pt`` file; :class:`YoloWeightsError` if not."""
    path = Path(weights).expanduser()
    if not path.exists():
        raise YoloWeightsError(f"YOLO weights not found: {weights}")
    if not path.is_file():
        raise YoloWeightsError(f"YOLO weights {weights} is not a file; give the model's .pt checkpoint")
    if path.suffix.lower() != ".pt":
        raise YoloWeightsError(f"YOLO weights {weights}: expected an Ultralytics PyTorch checkpoint (.pt)")
    if path.stat().st_size == 0:
        raise YoloWeightsError(f"YOLO weights {weights} is empty")
    if not zipfile.is_zipfile(path):  # torch.save has written zip archives since torch 1.6
        raise YoloWeightsError(
            f"YOLO weights {weights} is not a PyTorch checkpoint (no zip archive: damaged, truncated or another file)"
        )
    # Absolute: ultralytics re-downloads a corrupt file given by a bare official name (yolo11n.pt).
    return path.resolve()


def resolve_device(device: str) -> str:
    """:func:`masa_core.device.resolve_device` (``auto``: the GPU when torch sees one), in the
    ``cpu`` / ``cuda:N`` spelling Ultralytics takes."""
    dev = torch_device(device)
    return f"cuda:{dev.index or 0}" if dev.type == "cuda" else dev.type


def import_ultralytics() -> tuple[type, Any]:
    """``ultralytics.YOLO`` and ``ultralytics.nn.tasks``, imported offline.

    Its import sets ``OMP_NUM_THREADS=1`` (when unset), ``cv2.setNumThreads(0)`` and numpy's print
    options for the whole process; those are put back.
    """
    import cv2

    for name, value in OFFLINE_ENV.items():
        os.environ.setdefault(name, value)
    omp, cv_threads, np_print = os.environ.get("OMP_NUM_THREADS"), cv2.getNumThreads(), np.get_printoptions()
    try:
        import ultralytics.nn.tasks as tasks
        from ultralytics import YOLO
    except ImportError as err:
        message = f"the 'yolo' detector needs the ultralytics package: {INSTALL_HINT} ({err})"
        raise MissingPackageError(message) from err
    finally:
        if omp is None:
            os.environ.pop("OMP_NUM_THREADS", None)
        cv2.setNumThreads(cv_threads)
        np.set_printoptions(**np_print)
    if not hasattr(tasks, "SAFE_LOAD"):
        raise MissingPackageError(f"this ultralytics has no restricted (weights_only) loading: {INSTALL_HINT}")
    return YOLO, tasks


@contextmanager
def restricted_loading(tasks: Any) -> Iterator[None]:
    """Ultralytics' weights_only checkpoint loading, on for the duration (its ULTRALYTICS_SAFE_LOAD)."""
    import torch

    if not hasattr(torch.serialization, "get_unsafe_globals_in_checkpoint"):
        # Older torch: ultralytics would silently fall back to a full pickle load. Refuse instead.
        raise MissingPackageError("loading YOLO weights safely needs torch >= 2.6")
    with _LOAD_LOCK, mock.patch.object(tasks, "SAFE_LOAD", True):
        yield


def load_failure(weights: str | Path, err: Exception) -> YoloWeightsError:
    """One line for ultralytics' reason that ``weights`` did not load (its text names its own models)."""
    text = str(err).strip()
    if "references types outside" in text:  # a dict without a model, or a global off the allow-list
        reason = (
            "it holds no Ultralytics model, or its pickle references code or types outside the model "
            "classes that a restricted (weights_only) load allows"
        )
    elif isinstance(err, RuntimeError) and ("inline_container" in text or "PytorchStreamReader" in text):
        reason = "the zip archive is not one that torch.save wrote (damaged, or another kind of archive)"
    else:
        reason = text.splitlines()[0].removeprefix("ERROR ❌️").strip() if text else type(err).__name__
    return YoloWeightsError(f"YOLO weights {weights} cannot be loaded as an Ultralytics checkpoint: {reason}")


def load_yolo(weights: str | Path) -> Any:
    """An ``ultralytics.YOLO`` box model from the checkpoint ``weights``, loaded the restricted way."""
    YOLO, tasks = import_ultralytics()
    path = check_weights_file(weights)
    with restricted_loading(tasks):
        try:
            model = YOLO(str(path))
        except Exception as err:  # any failure to read a user's file is that file's fault: say so in one line
            raise load_failure(weights, err) from err
    if model.task not in BOX_TASKS:
        raise YoloWeightsError(
            f"YOLO weights {weights} hold a {model.task!r} model; the detector needs one of {', '.join(BOX_TASKS)}"
        )
    return model


class UltralyticsYOLO:
    """An Ultralytics YOLO box model (YOLOv8 / YOLO11 ..., detect, segment or pose) from ``weights``.

    ``class_names`` are the model's; ``classes`` restricts output to some of them. Post-processing
    (confidence threshold, NMS at ``nms_iou_thr``, class filter, scaling back to the frame) is the
    library's own. The frame is passed as BGR, which Ultralytics assumes for numpy arrays.
    """

    def __init__(
        self,
        weights: str | Path,
        score_thr: float = 0.25,
        nms_iou_thr: float = 0.7,
        classes: Sequence[str] = (),
        device: str = "auto",
        imgsz: int = 640,
    ) -> None:
        self._model: Any = load_yolo(weights)
        self.class_names: tuple[str, ...] = names_tuple(self._model.names)
        self._class_ids = class_ids_for(self.class_names, classes) if classes else None
        self.score_thr = float(score_thr)
        self.nms_iou_thr = float(nms_iou_thr)
        self.device = resolve_device(device)
        self.imgsz = int(imgsz)

    def predict_options(self) -> dict[str, Any]:
        """The keyword arguments given to ``YOLO.predict`` (the same call runs it directly)."""
        return {
            "conf": self.score_thr,
            "iou": self.nms_iou_thr,
            "classes": self._class_ids,
            "device": self.device,
            "imgsz": self.imgsz,
            "verbose": False,
        }

    def __call__(self, frame: np.ndarray, frame_index: int = 0) -> Detections:
        if frame.ndim != 3 or frame.shape[2] != 3:
            raise ValueError(f"UltralyticsYOLO expects an (H, W, 3) RGB frame, got shape {frame.shape}")
        bgr = np.ascontiguousarray(frame[..., ::-1])
        boxes = self._model.predict(bgr, **self.predict_options())[0].boxes
        if boxes is None or len(boxes) == 0:
            return Detections.empty()
        return Detections(boxes.xyxy.cpu().numpy(), boxes.conf.cpu().numpy(), boxes.cls.cpu().numpy().astype(np.int64))
