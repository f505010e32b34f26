"""Peer trackers from boxmot (ByteTrack, OC-SORT, BoT-SORT), motion only, for the given-boxes benchmark.

boxmot is installed with ``--no-deps`` (``requirements-peers.txt``): its own metadata wants
``opencv-python`` beside our headless OpenCV and ``pandas<3``, but the three trackers import only
numpy, scipy, torch, cv2, rich and ``lap`` (from ``lapx``). BoT-SORT runs without ReID
(``use_embeddings=False``), so no weights are ever downloaded; its camera-motion compensation
(ECC on the frame) stays on, as in its defaults.

Every peer takes the same boxes as the other trackers and returns, like
:meth:`masa_core.baselines.iou_tracker.IouTracker.update`, one id per *given* box (-1 where the
peer outputs no track for it this frame). The box written to the results is therefore the given
box, not the peer's Kalman-smoothed box, so detection quality is the same for every tracker and
the comparison measures association (and which boxes a tracker chooses to output).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from masa_core.errors import MissingPackageError

# kind: (boxmot module, class, keyword arguments). The peers' constructor defaults otherwise
# (boxmot 25.0.0); "frame_rate" is filled in from the sequence where the peer takes it.
PEERS: dict[str, tuple[str, str, dict[str, Any]]] = {
    "bytetrack": ("boxmot.trackers.box.bytetrack.tracker", "ByteTrack", {}),
    "ocsort": ("boxmot.trackers.box.ocsort.tracker", "OcSort", {}),
    "botsort": ("boxmot.trackers.box.botsort.tracker", "BotSort", {"use_embeddings": False}),
}
_TAKES_FRAME_RATE = frozenset({"bytetrack", "botsort"})
INSTALL_HINT = "pip install --no-deps -r requirements-peers.txt (see docs/evaluation.md)"


class PeerTracker:
    """One boxmot tracker behind the ``update(boxes, scores, frame) -> ids`` interface.

    kind: ``bytetrack``, ``ocsort`` or ``botsort``. frame_rate: the sequence's frames per second
    (ByteTrack and BoT-SORT scale their lost-track buffer by ``frame_rate / 30``).
    Raises MissingPackageError (an ImportError) with the install line when boxmot is missing.
    """

    def __init__(self, kind: str, frame_rate: float = 30.0, **overrides: Any) -> None:
        if kind not in PEERS:
            raise ValueError(f"peer tracker {kind!r}: must be one of {', '.join(PEERS)}")
        module_name, class_name, kwargs = PEERS[kind]
        try:
            import importlib

            cls = getattr(importlib.import_module(module_name), class_name)
        except ImportError as err:
            message = f"peer tracker {kind!r} needs boxmot 25.0.0 and lapx: {INSTALL_HINT} ({err})"
            raise MissingPackageError(message) from err
        logging.getLogger("boxmot").setLevel(logging.WARNING)  # one INFO line per tracker, ECC warnings stay
        kwargs = dict(kwargs)
        if kind in _TAKES_FRAME_RATE:
            kwargs["frame_rate"] = max(1, round(frame_rate))
        kwargs.update(overrides)
        self.kind = kind
        self.settings = kwargs
        self.tracker = cls(**kwargs)

    def reset(self) -> None:
        """Forget all tracks (a new sequence); ids start from 0 again."""
        self.tracker.reset()

    def update(self, boxes: np.ndarray, scores: np.ndarray, frame_rgb: np.ndarray) -> np.ndarray:
        """Ids (N,) int64 for the (N, 4) x1y1x2y2 ``boxes`` of one frame, -1 for boxes without a track.

        scores: (N,) in [0, 1]. frame_rgb: (H, W, 3) uint8 RGB (passed to boxmot as BGR).
        """
        boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
        scores = np.asarray(scores, np.float32).reshape(-1)
        dets = np.zeros((len(boxes), 6), np.float32)  # x1, y1, x2, y2, score, class (0: class-agnostic)
        dets[:, :4], dets[:, 4] = boxes, scores
        bgr = np.ascontiguousarray(frame_rgb[..., ::-1])
        # boxmot's numpy output rows: x1, y1, x2, y2, track id, score, class, detection index (-1: none)
        out = self.tracker.update(dets, bgr)
        ids = np.full(len(boxes), -1, np.int64)
        if len(out):
            det_index = out[:, 7].astype(np.int64)
            matched = det_index >= 0
            ids[det_index[matched]] = out[matched, 4].astype(np.int64)
        return ids
