"""Drawing tracks on frames: a stable colour per ID, the box, a label, a short trail, and the
instance mask (filled, translucent, outlined) when the track has one."""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Sequence

import cv2
import numpy as np

from masa_core.pipeline import Track
from masa_core.segmentation.box_prompt import box_window

MASK_ALPHA = 0.45


def id_colour(track_id: int) -> tuple[int, int, int]:
    """A bright RGB colour that is the same for an ID in every frame and every run."""
    hue = (track_id * 47) % 180  # golden-ratio-like stride over OpenCV's 0..179 hue circle
    hsv = np.uint8([[[hue, 220, 255]]])
    r, g, b = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0, 0]
    return int(r), int(g), int(b)


class TrackPainter:
    """Draws each frame's tracks with trails of the last ``trail`` box-bottom centres."""

    def __init__(self, trail: int = 20) -> None:
        self._trails: dict[int, deque[tuple[int, int]]] = defaultdict(lambda: deque(maxlen=trail))

    def draw(self, frame_rgb: np.ndarray, tracks: Sequence[Track]) -> np.ndarray:
        """A copy of ``frame_rgb`` with ``tracks`` drawn on it."""
        out = frame_rgb.copy()
        for t in tracks:
            if t.mask is not None:
                draw_mask(out, t.box, t.mask, id_colour(t.id))
        for t in tracks:
            colour = id_colour(t.id)
            x1, y1, x2, y2 = (round(v) for v in t.box)
            self._trails[t.id].append(((x1 + x2) // 2, y2))
            points = np.array(self._trails[t.id], np.int32)
            if len(points) > 1:
                cv2.polylines(out, [points], False, colour, 2, cv2.LINE_AA)
            cv2.rectangle(out, (x1, y1), (x2, y2), colour, 2)
            text = f"{t.id} {t.label_name} {t.score:.2f}"
            (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.45, 1)
            cv2.rectangle(out, (x1, max(0, y1 - th - 6)), (x1 + tw + 4, y1), colour, -1)
            cv2.putText(
                out,
                text,
                (x1 + 2, max(th, y1 - 4)),
                cv2.FONT_HERSHEY_SIMPLEX,
                0.45,
                (0, 0, 0),
                1,
                cv2.LINE_AA,
            )
        return out


def draw_mask(
    image: np.ndarray, box: tuple[float, float, float, float], mask: np.ndarray, colour: tuple[int, int, int]
) -> None:
    """Blend ``colour`` into ``image`` (in place) where a box-cropped ``Track.mask`` is set, and
    outline its contours."""
    x1, y1, x2, y2 = box_window(box, image.shape[0], image.shape[1])
    if mask.shape != (y2 - y1, x2 - x1) or not mask.any():
        return
    region = image[y1:y2, x1:x2]
    tint = np.asarray(colour, np.float32)
    region[mask] = (region[mask] * (1 - MASK_ALPHA) + tint * MASK_ALPHA).astype(np.uint8)
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    cv2.drawContours(image, contours, -1, colour, 1, cv2.LINE_AA, offset=(x1, y1))
