"""COCO run-length encoding as MOTS uses it, and MOTS text files.

A mask is flattened column-major (Fortran order); ``counts`` alternate runs of 0s and 1s, starting
with 0s. The counts string is COCO's compact form: each count (after the first two, minus the count
two places before it) is written as 5-bit groups, least significant first, each group plus 48 as
one ASCII character, with bit 0x20 set while more groups follow.

A MOTS file has one line per object and frame: ``frame id class_id img_height img_width rle``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# MOTS class ids: 1 car, 2 pedestrian. masa_core is class-agnostic; its masks are written as 2.
MOTS_PEDESTRIAN = 2


def mask_to_counts(mask: np.ndarray) -> list[int]:
    """Run lengths of a 2-D mask in column-major order, starting with a (maybe empty) run of 0s."""
    flat = np.asarray(mask, bool).ravel(order="F")
    if flat.size == 0:
        return []
    changes = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    bounds = np.concatenate([[0], changes, [flat.size]])
    counts = np.diff(bounds).tolist()
    return [0, *counts] if flat[0] else counts


def counts_to_mask(counts: Sequence[int], height: int, width: int) -> np.ndarray:
    """Inverse of :func:`mask_to_counts`: (height, width) bool mask."""
    if sum(counts) != height * width:
        raise ValueError(
            f"RLE counts sum to {sum(counts)}, but the mask has {height}×{width} = {height * width} pixels"
        )
    values = np.arange(len(counts)) % 2 == 1
    flat = np.repeat(values, np.asarray(counts, np.int64))
    return flat.reshape((height, width), order="F")


def counts_to_string(counts: Sequence[int]) -> str:
    """COCO's compact counts string."""
    chars: list[str] = []
    for i, count in enumerate(counts):
        x = int(count) - (int(counts[i - 2]) if i > 2 else 0)
        more = True
        while more:
            c = x & 0x1F
            x >>= 5
            more = x != -1 if c & 0x10 else x != 0
            if more:
                c |= 0x20
            chars.append(chr(c + 48))
    return "".join(chars)


def string_to_counts(text: str) -> list[int]:
    """Inverse of :func:`counts_to_string`."""
    counts: list[int] = []
    pos = 0
    while pos < len(text):
        x = shift = 0
        more = True
        while more:
            if pos >= len(text):
                raise ValueError(f"RLE string {text!r} ends inside a count")
            c = ord(text[pos]) - 48
            if not 0 <= c < 64:
                raise ValueError(f"RLE string {text!r}: character {text[pos]!r} is not in the RLE alphabet")
            x |= (c & 0x1F) << shift
            more = bool(c & 0x20)
            pos += 1
            shift += 5
            if not more and c & 0x10:
                x |= -1 << shift
        if len(counts) > 2:
            x += counts[-2]
        counts.append(x)
    return counts


def encode(mask: np.ndarray) -> dict:
    """COCO RLE of a 2-D bool mask: ``{"size": [height, width], "counts": str}``."""
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"RLE encodes 2-D masks, got shape {mask.shape}")
    return {"size": [int(mask.shape[0]), int(mask.shape[1])], "counts": counts_to_string(mask_to_counts(mask))}


def decode(rle: Mapping) -> np.ndarray:
    """(height, width) bool mask of a COCO RLE dict (counts as string or list)."""
    height, width = (int(v) for v in rle["size"])
    counts = rle["counts"]
    if isinstance(counts, bytes):
        counts = counts.decode("ascii")
    return counts_to_mask(string_to_counts(counts) if isinstance(counts, str) else list(counts), height, width)


@dataclass(frozen=True)
class MotsObject:
    """One row of a MOTS file."""

    frame: int
    id: int
    class_id: int
    mask: np.ndarray


def remove_overlaps(masks: Sequence[np.ndarray], scores: Sequence[float]) -> list[np.ndarray]:
    """MOTS requires disjoint masks in a frame: a pixel claimed by several masks goes to the one
    with the highest score."""
    taken: np.ndarray | None = None
    out: list[np.ndarray | None] = [None] * len(masks)
    for i in np.argsort(-np.asarray(scores, np.float64), kind="stable"):
        mask = np.asarray(masks[i], bool)
        out[i] = mask if taken is None else mask & ~taken
        taken = mask.copy() if taken is None else taken | mask
    return [m for m in out if m is not None]


def format_mots_line(frame: int, obj_id: int, class_id: int, mask: np.ndarray) -> str:
    """``frame id class_id img_height img_width rle``."""
    rle = encode(mask)
    height, width = rle["size"]
    return f"{frame} {obj_id} {class_id} {height} {width} {rle['counts']}"


def write_mots(path: str | Path, objects: Sequence[MotsObject]) -> None:
    """Write MOTS rows sorted by frame then id; empty masks are left out."""
    lines = [
        format_mots_line(o.frame, o.id, o.class_id, o.mask)
        for o in sorted(objects, key=lambda o: (o.frame, o.id))
        if np.any(o.mask)
    ]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(line + "\n" for line in lines))


def read_mots(path: str | Path) -> list[MotsObject]:
    """Rows of a MOTS file, masks decoded."""
    objects = []
    for lineno, line in enumerate(Path(path).read_text().splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.split()
        if len(fields) != 6:
            raise ValueError(f"{path}:{lineno}: expected 6 fields (frame id class_id h w rle), got {len(fields)}")
        frame, obj_id, class_id, height, width = (int(v) for v in fields[:5])
        mask = decode({"size": [height, width], "counts": fields[5]})
        objects.append(MotsObject(frame, obj_id, class_id, mask))
    return objects
