"""MediaPipe's SSD-MobileNetV2 (OpenImages v4, 23 classes) run with LiteRT, decoded in numpy.

The model ends before post-processing: it outputs raw box encodings (1, 1917, 4) and class logits
(1, 1917, 24, class 0 = background). Anchors and decoding follow MediaPipe's
``object_detection_oid_v4`` graph (``SsdAnchorsCalculator`` and ``TfLiteTensorsToDetections``):

* input: the whole frame stretched to 300x300 RGB, float32 scaled to [-1, 1];
* anchors: 6 layers with strides 16..512 (feature maps 19, 10, 5, 3, 2, 1), scales linear from 0.2
  to 0.95, aspect ratios 1, 2, 0.5, 3, 0.3333 plus an interpolated-scale anchor of ratio 1; the
  lowest layer only has (0.1, ratio 1), (0.2, ratio 2), (0.2, ratio 0.5); 1917 anchors in all;
* boxes: encodings are (dy, dx, dh, dw) divided by 10, 10, 5, 5; centres offset by anchor size,
  sizes exponentiated; scores are the sigmoid of the logits with class 0 ignored.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from masa_core.boxes import box_iou
from masa_core.detectors.base import Detections

BOX_SCALES = (10.0, 10.0, 5.0, 5.0)  # y, x, h, w
# Per-class thresholds calibrated on a precision / recall curve (docs/detectors.md), used when no
# score_thr is given; other classes keep SCORE_THR. Person: the threshold of the best F1 on the
# TUD clips, pooled, with the default tiling (scripts/calibrate_detector.py).
CLASS_SCORE_THR: dict[str, float] = {"Person": 0.36}
SCORE_THR = 0.3  # MediaPipe's own threshold, for the other classes


@dataclass(frozen=True)
class SsdAnchorOptions:
    """The subset of MediaPipe's ``SsdAnchorsCalculatorOptions`` this model uses."""

    input_size: int = 300
    min_scale: float = 0.2
    max_scale: float = 0.95
    strides: tuple[int, ...] = (16, 32, 64, 128, 256, 512)
    aspect_ratios: tuple[float, ...] = (1.0, 2.0, 0.5, 3.0, 0.3333)
    reduce_boxes_in_lowest_layer: bool = True
    interpolated_scale_aspect_ratio: float = 1.0
    offset: float = 0.5


def _layer_scale(opts: SsdAnchorOptions, layer: int) -> float:
    n = len(opts.strides)
    if n == 1:
        return (opts.min_scale + opts.max_scale) / 2
    return opts.min_scale + (opts.max_scale - opts.min_scale) * layer / (n - 1)


def _layer_shapes(opts: SsdAnchorOptions, layer: int) -> list[tuple[float, float]]:
    """(scale, aspect ratio) of each anchor at one grid cell of ``layer``."""
    scale = _layer_scale(opts, layer)
    if layer == 0 and opts.reduce_boxes_in_lowest_layer:
        return [(0.1, 1.0), (scale, 2.0), (scale, 0.5)]
    shapes = [(scale, ar) for ar in opts.aspect_ratios]
    if opts.interpolated_scale_aspect_ratio > 0:
        nxt = 1.0 if layer == len(opts.strides) - 1 else _layer_scale(opts, layer + 1)
        shapes.append((math.sqrt(scale * nxt), opts.interpolated_scale_aspect_ratio))
    return shapes


def ssd_anchors(opts: SsdAnchorOptions | None = None) -> np.ndarray:
    """Anchors (N, 4) as normalised (y_center, x_center, h, w), in the model's output order.

    Order per layer is row, column, then anchor shape. Layers with equal strides are not merged
    (the strides here are all distinct).
    """
    opts = opts or SsdAnchorOptions()
    out = []
    for layer, stride in enumerate(opts.strides):
        size = math.ceil(opts.input_size / stride)
        shapes = np.array(_layer_shapes(opts, layer), dtype=np.float64)
        ratio_sqrt = np.sqrt(shapes[:, 1])
        h, w = shapes[:, 0] / ratio_sqrt, shapes[:, 0] * ratio_sqrt
        centres = (np.arange(size) + opts.offset) / size
        yc, xc = np.meshgrid(centres, centres, indexing="ij")
        k = len(shapes)
        layer_anchors = np.stack(
            [
                np.repeat(yc.reshape(-1), k),
                np.repeat(xc.reshape(-1), k),
                np.tile(h, size * size),
                np.tile(w, size * size),
            ],
            axis=1,
        )
        out.append(layer_anchors)
    return np.concatenate(out).astype(np.float32)


def decode_boxes(raw: np.ndarray, anchors: np.ndarray) -> np.ndarray:
    """Raw (N, 4) encodings (dy, dx, dh, dw) → normalised (N, 4) x1, y1, x2, y2."""
    sy, sx, sh, sw = BOX_SCALES
    ay, ax, ah, aw = anchors.T
    yc = raw[:, 0] / sy * ah + ay
    xc = raw[:, 1] / sx * aw + ax
    h = np.exp(np.clip(raw[:, 2] / sh, -10.0, 10.0)) * ah
    w = np.exp(np.clip(raw[:, 3] / sw, -10.0, 10.0)) * aw
    return np.stack([xc - w / 2, yc - h / 2, xc + w / 2, yc + h / 2], axis=1)


def nms(boxes: np.ndarray, scores: np.ndarray, iou_thr: float, labels: np.ndarray | None = None) -> np.ndarray:
    """Greedy NMS; indices kept, best score first. With ``labels`` only same-label boxes suppress."""
    if len(boxes) == 0:
        return np.zeros(0, dtype=np.int64)
    work = boxes.astype(np.float64)
    if labels is not None:  # shift each class to its own region so classes never overlap
        span = float(work.max() - work.min()) + 1.0
        work = work + (labels.astype(np.float64) * span)[:, None]
    order = np.argsort(-scores, kind="stable")
    keep: list[int] = []
    while len(order):
        i = int(order[0])
        keep.append(i)
        rest = order[1:]
        order = rest[box_iou(work[i : i + 1], work[rest])[0] <= iou_thr]
    return np.asarray(keep, dtype=np.int64)


def read_labels(path: str | Path) -> tuple[str, ...]:
    """Label map lines; the first ('???') is the background class."""
    return tuple(line.strip() for line in Path(path).read_text().splitlines() if line.strip())


class MediaPipeSSD:
    """OpenImages-v4 SSD-MobileNetV2 detector (23 classes, e.g. Person, Car, Bicycle).

    ``class_names`` excludes the background, so model class ``c`` is label ``c - 1``. Each anchor
    keeps its best allowed class; anchors under their class's threshold are dropped, then
    per-class NMS (or class-agnostic with ``class_agnostic_nms``) at ``nms_iou_thr`` keeps
    ``max_detections``. ``classes`` restricts output to those names (case-insensitive); empty
    keeps all. A class's threshold is ``class_score_thr[name]``, else ``score_thr`` when one is
    given, else the calibrated :data:`CLASS_SCORE_THR` or MediaPipe's :data:`SCORE_THR` (0.3).
    The ``score_thr`` attribute is then the lowest threshold of the classes kept: the lowest score
    this detector reports (what trackers are told as its operating threshold).
    """

    def __init__(
        self,
        model_path: str | Path | None = None,
        labels_path: str | Path | None = None,
        score_thr: float | None = None,
        nms_iou_thr: float = 0.5,
        classes: Sequence[str] = (),
        num_threads: int = 2,
        max_detections: int = 100,
        class_agnostic_nms: bool = False,
        class_score_thr: Mapping[str, float] | None = None,
    ) -> None:
        from ai_edge_litert.interpreter import Interpreter

        from masa_core.assets import asset_path

        model_path = model_path or asset_path("ssd_oidv4")
        labels_path = labels_path or asset_path("ssd_oidv4_labels")
        names = read_labels(labels_path)
        self.class_names: tuple[str, ...] = names[1:]
        self.nms_iou_thr = float(nms_iou_thr)
        self.max_detections = int(max_detections)
        self.class_agnostic_nms = class_agnostic_nms
        self._allowed = self._class_mask(classes)
        defaults = CLASS_SCORE_THR if score_thr is None else {}
        base_thr = SCORE_THR if score_thr is None else float(score_thr)
        self.class_thr = self._class_thresholds(base_thr, {**defaults, **(class_score_thr or {})})
        self.score_thr = float(self.class_thr[self._allowed].min())

        self._interp = Interpreter(model_path=str(model_path), num_threads=int(num_threads))
        self._interp.allocate_tensors()
        inp = self._interp.get_input_details()[0]
        self._input_index = inp["index"]
        self._input_hw = (int(inp["shape"][1]), int(inp["shape"][2]))
        outs = {tuple(d["shape"][-1:]): d["index"] for d in self._interp.get_output_details()}
        self._box_index = outs[(4,)]
        self._score_index = outs[(len(names),)]
        self.anchors = ssd_anchors(SsdAnchorOptions(input_size=self._input_hw[0]))

    def _class_mask(self, classes: Sequence[str]) -> np.ndarray:
        """Boolean mask over ``class_names`` of the classes to report."""
        if not classes:
            return np.ones(len(self.class_names), dtype=bool)
        lower = [n.lower() for n in self.class_names]
        unknown = [c for c in classes if c.lower() not in lower]
        if unknown:
            raise ValueError(f"unknown class name(s) {unknown} for MediaPipeSSD; known: {', '.join(self.class_names)}")
        wanted = {c.lower() for c in classes}
        return np.array([n in wanted for n in lower], dtype=bool)

    def _class_thresholds(self, score_thr: float, per_class: Mapping[str, float]) -> np.ndarray:
        """(C,) threshold of each class: ``per_class[name]`` (case-insensitive) or ``score_thr``."""
        lower = {n.lower(): i for i, n in enumerate(self.class_names)}
        thr = np.full(len(self.class_names), score_thr, dtype=np.float64)
        for name, value in per_class.items():
            if name.lower() not in lower:
                raise ValueError(
                    f"class_score_thr: unknown class {name!r} for MediaPipeSSD; known: {', '.join(self.class_names)}"
                )
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"class_score_thr: {name} = {value!r}, must be in [0, 1]")
            thr[lower[name.lower()]] = value
        return thr

    def _infer(self, frame: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Raw (N, 4) box encodings and (N, C) class logits for an RGB uint8 frame."""
        h, w = self._input_hw
        resized = cv2.resize(frame, (w, h), interpolation=cv2.INTER_LINEAR)
        tensor = (resized.astype(np.float32) - 127.5) / 127.5
        self._interp.set_tensor(self._input_index, tensor[None])
        self._interp.invoke()
        raw = self._interp.get_tensor(self._box_index)[0]
        logits = self._interp.get_tensor(self._score_index)[0]
        return raw, logits

    def __call__(self, frame: np.ndarray, frame_index: int = 0) -> Detections:
        if frame.ndim != 3 or frame.shape[2] != 3:
            raise ValueError(f"MediaPipeSSD expects an (H, W, 3) RGB frame, got shape {frame.shape}")
        raw, logits = self._infer(np.ascontiguousarray(frame, dtype=np.uint8))
        fg = np.where(self._allowed[None, :], logits[:, 1:], -np.inf)
        labels = np.argmax(fg, axis=1)
        best = fg[np.arange(len(fg)), labels]
        all_scores = 1.0 / (1.0 + np.exp(-np.clip(best, -80.0, 80.0)))
        keep = all_scores >= self.class_thr[labels]
        if not np.any(keep):
            return Detections.empty()
        scores, labels = all_scores[keep], labels[keep]
        boxes = decode_boxes(raw[keep], self.anchors[keep])
        fh, fw = frame.shape[:2]
        boxes = np.clip(boxes, 0.0, 1.0) * np.array([fw, fh, fw, fh], dtype=np.float32)
        valid = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
        boxes, scores, labels = boxes[valid], scores[valid], labels[valid]
        kept = nms(boxes, scores, self.nms_iou_thr, None if self.class_agnostic_nms else labels)
        kept = kept[: self.max_detections]
        return Detections(boxes[kept], scores[kept], labels[kept])
