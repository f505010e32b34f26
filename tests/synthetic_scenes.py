"""Deterministic synthetic scenes for trackers: look-alike objects moving at constant velocity.

Every object has an embedding made of one shared vector plus a small own part, so two objects
look alike (cosine similarity about 0.8) and a frame's noise is a fraction of what tells them
apart. A scene is a list of frames; each frame holds boxes, scores, embeddings, a stamp in seconds
and the true object of each row (-1 for a false positive).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

DIM = 32
SIZE = np.array([40.0, 100.0])  # box width, height in pixels


@dataclass
class Frame:
    boxes: np.ndarray  # (N, 4) float32 x1y1x2y2
    scores: np.ndarray  # (N,) float32
    embeds: np.ndarray  # (N, DIM) float32
    stamp: float
    truth: np.ndarray  # (N,) int64 object index, -1 for a false positive


@dataclass(frozen=True)
class Walker:
    """An object that starts at ``start`` (box centre, px) and moves at ``velocity`` (px/s)."""

    start: tuple[float, float]
    velocity: tuple[float, float]

    def box(self, t: float) -> np.ndarray:
        centre = np.asarray(self.start) + t * np.asarray(self.velocity)
        return np.concatenate([centre - SIZE / 2, centre + SIZE / 2])


def _appearances(count: int, rng: np.random.Generator) -> np.ndarray:
    shared = rng.standard_normal(DIM)
    own = rng.standard_normal((count, DIM))
    return shared / np.linalg.norm(shared) * 2.0 + own / np.linalg.norm(own, axis=1, keepdims=True) * 1.0


def make_scene(
    walkers: list[Walker],
    stamps: list[float],
    visible: Callable[[int, int], bool] = lambda obj, frame: True,
    false_positives: Callable[[int], int] = lambda frame: 0,
    seed: int = 0,
) -> list[Frame]:
    """The frames of ``walkers`` at ``stamps``; ``visible(obj, frame)`` says whether an object is
    detected, ``false_positives(frame)`` how many random look-alike boxes are added (score 0.9)."""
    rng = np.random.default_rng(seed)
    looks = _appearances(len(walkers) + 1, rng)
    frames = []
    for f, stamp in enumerate(stamps):
        rows = [(w.box(stamp), looks[i], i) for i, w in enumerate(walkers) if visible(i, f)]
        for _ in range(false_positives(f)):
            centre = rng.uniform([100, 100], [900, 500])
            rows.append((np.concatenate([centre - SIZE / 2, centre + SIZE / 2]), looks[-1], -1))
        boxes = np.array([r[0] for r in rows], np.float32).reshape(-1, 4)
        embeds = np.array([r[1] for r in rows], np.float32).reshape(-1, DIM)
        embeds = embeds + 0.15 * rng.standard_normal(embeds.shape).astype(np.float32)
        truth = np.array([r[2] for r in rows], np.int64)
        scores = np.full(len(rows), 0.9, np.float32)
        frames.append(Frame(boxes, scores, embeds, stamp, truth))
    return frames


def run(tracker, frames: list[Frame]) -> list[np.ndarray]:
    """The published ids of every frame's rows (-1: not published)."""
    out = []
    for f, frame in enumerate(frames):
        result = tracker.update(
            torch.from_numpy(frame.boxes),
            torch.from_numpy(frame.scores),
            torch.zeros(len(frame.boxes), dtype=torch.long),
            torch.from_numpy(frame.embeds),
            frame_id=f,
            stamp=frame.stamp,
        )
        out.append(result.ids.numpy())
    return out


def identities(frames: list[Frame], ids: list[np.ndarray]) -> dict[int, list[int]]:
    """{object: the distinct published ids it had, in order of appearance}; key -1 gathers the
    ids given to false positives."""
    seen: dict[int, list[int]] = {}
    for frame, frame_ids in zip(frames, ids, strict=True):
        for obj, i in zip(frame.truth, frame_ids, strict=True):
            if i >= 0 and i not in seen.setdefault(int(obj), []):
                seen[int(obj)].append(int(i))
    return seen


def consistent(frames: list[Frame], ids: list[np.ndarray]) -> bool:
    """True when every object kept one id, no two objects shared one, and no false positive was published."""
    seen = identities(frames, ids)
    real = {obj: got for obj, got in seen.items() if obj >= 0}
    one_each = all(len(got) == 1 for got in real.values()) and len(real) == len({g[0] for g in real.values()})
    return one_each and not seen.get(-1)


def stamps(fps: float, seconds: float, start: float = 0.0) -> list[float]:
    return [start + k / fps for k in range(round(fps * seconds))]


SCENES: dict[str, Callable[[], list[Frame]]] = {
    # Two look-alike people walk towards each other and cross (their boxes overlap for ~10 frames).
    "crossing": lambda: make_scene([Walker((200, 300), (150, 0)), Walker((500, 320), (-150, 0))], stamps(30, 2.0)),
    # One of three people walks behind something for one second (30 frames without a box).
    "occlusion_1s": lambda: make_scene(
        [Walker((200, 300), (120, 0)), Walker((300, 450), (0, 0)), Walker((700, 150), (-60, 0))],
        stamps(30, 3.0),
        visible=lambda obj, f: obj != 0 or not 30 <= f < 60,
    ),
    # Three false boxes a frame for half a second, each in one frame only.
    "false_positive_burst": lambda: make_scene(
        [Walker((200, 300), (90, 0)), Walker((600, 300), (-90, 0))],
        stamps(30, 2.0),
        false_positives=lambda f: 3 if 20 <= f < 35 else 0,
    ),
    # Every detection missed for half a second (a detector hiccup), the people keep walking.
    "missed_gap": lambda: make_scene(
        [Walker((200, 300), (120, 30)), Walker((600, 250), (-120, 30))],
        stamps(30, 2.0),
        visible=lambda obj, f: not 25 <= f < 40,
    ),
    # The camera drops from 30 Hz to 10 Hz: two fast walkers go 3x as far between frames.
    "frame_rate_drop": lambda: make_scene(
        [Walker((100, 300), (450, 0)), Walker((100, 400), (450, 0))],
        stamps(30, 0.5) + stamps(10, 1.0, start=0.5),
    ),
}
