"""Tracking TUD-Campus with its ground-truth boxes given, and how consistently each person keeps the
track ID it first got (the end-to-end check shared by the pipeline and variant tests)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from masa_core import Detections, Pipeline
from masa_core.formats.mot import read_mot
from masa_core.pipeline import FrameResult
from tests.paths import TUD_CAMPUS_GT


@dataclass
class IdentityCheck:
    """Per frame results; ``first_id`` maps each person (gt id) to the first track ID they got."""

    results: list[FrameResult] = field(default_factory=list)
    boxes_given: list[int] = field(default_factory=list)
    first_id: dict[int, int] = field(default_factory=dict)
    consistent: int = 0
    total: int = 0


def track_tud_campus_with_gt(pipeline: Pipeline, frames: list[np.ndarray]) -> IdentityCheck:
    """Run ``frames`` (TUD-Campus from frame 1) with their gt boxes; match each track to the nearest gt box."""
    gt = read_mot(TUD_CAMPUS_GT, gt_filter=True)
    check = IdentityCheck()
    for i, frame in enumerate(frames):
        rows = gt[i + 1]
        result = pipeline.process(frame, Detections(rows.boxes, np.ones(len(rows), np.float32)))
        check.results.append(result)
        check.boxes_given.append(len(rows))
        for t in result.tracks:
            gt_id = int(rows.ids[np.argmin(np.abs(rows.boxes - np.array(t.box)).sum(1))])
            check.total += 1
            check.consistent += check.first_id.setdefault(gt_id, t.id) == t.id
    return check
