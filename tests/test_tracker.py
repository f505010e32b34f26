"""Behaviour of MasaTracker on small hand-made scenes."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from torch import Tensor
from torchvision.ops import box_iou

from masa_core.tracking import MasaTracker, TrackerConfig, TrackResult
from masa_core.tracking.matching import distance_gate, match_similarity

D = 8


def emb(*idx: int, scale: float = 5.0) -> Tensor:
    """(len(idx), D) one-hot embeddings scaled by ``scale``."""
    out = torch.zeros(len(idx), D)
    out[torch.arange(len(idx)), torch.tensor(idx)] = scale
    return out


def box(x: float, y: float = 0.0, size: float = 10.0) -> list[float]:
    return [x, y, x + size, y + size]


def step(
    tracker: MasaTracker,
    frame: int,
    xs: list[float],
    embed_idx: list[int],
    scores: list[float] | None = None,
    labels: list[int] | None = None,
) -> TrackResult:
    n = len(xs)
    return tracker.update(
        torch.tensor([box(x) for x in xs]).reshape(n, 4),
        torch.tensor(scores if scores is not None else [0.9] * n),
        torch.tensor(labels if labels is not None else [0] * n, dtype=torch.long),
        emb(*embed_idx) if n else torch.zeros(0, D),
        frame,
    )


def empty(tracker: MasaTracker, frame: int) -> TrackResult:
    return tracker.update(torch.zeros(0, 4), torch.zeros(0), torch.zeros(0, dtype=torch.long), torch.zeros(0, D), frame)


def test_default_config_is_official_constructor_defaults() -> None:
    cfg = TrackerConfig()
    assert (cfg.init_score_thr, cfg.obj_score_thr, cfg.match_score_thr) == (0.8, 0.5, 0.5)
    assert (cfg.memo_tracklet_frames, cfg.memo_momentum) == (10, 0.8)
    assert (cfg.distractor_score_thr, cfg.distractor_nms_thr) == (0.5, 0.3)
    assert (cfg.match_metric, cfg.max_distance, cfg.fps, cfg.with_cats) == ("bisoftmax", -1.0, 1, True)
    pnp = TrackerConfig.plug_and_play()
    assert (pnp.init_score_thr, pnp.obj_score_thr, pnp.max_distance, pnp.fps, pnp.with_cats) == (
        0.1,
        0.01,
        100.0,
        30,
        False,
    )


def test_first_frame_starts_tracks_with_increasing_ids_by_score() -> None:
    tracker = MasaTracker()
    res = step(tracker, 0, [0, 50, 100], [0, 1, 2], scores=[0.85, 0.95, 0.9])
    # Ids are handed out in descending-score order; rows come back in input order.
    assert res.ids.tolist() == [2, 0, 1]
    assert res.ages.tolist() == [0, 0, 0]
    assert res.match_scores.tolist() == [0.0, 0.0, 0.0]
    assert res.ids.dtype == torch.int64 and res.ages.dtype == torch.int64
    assert res.match_scores.dtype == torch.float32
    assert tracker.num_tracks == 3


def test_crossing_objects_keep_ids_by_appearance() -> None:
    tracker = MasaTracker()
    first = step(tracker, 0, [0, 100], [0, 1])
    a, b = first.ids.tolist()
    for t in range(1, 11):
        # A moves right, B moves left; they swap places by frame 10.
        res = step(tracker, t, [10.0 * t, 100 - 10.0 * t], [0, 1])
        assert res.ids.tolist() == [a, b], t
        assert res.ages.tolist() == [t, t]
    # Positions swapped entirely, embeddings still decide.
    res = step(tracker, 11, [0, 100], [1, 0])
    assert res.ids.tolist() == [b, a]
    assert tracker.num_tracks == 2


def test_occlusion_shorter_than_memory_recovers_same_id() -> None:
    tracker = MasaTracker()
    tid = int(step(tracker, 0, [0, 200], [0, 1]).ids[0])
    for t in range(1, 10):  # 9 frames without object 0
        step(tracker, t, [200], [1])
    res = step(tracker, 10, [0, 200], [0, 1])
    assert int(res.ids[0]) == tid
    assert int(res.ages[0]) == 10


def test_occlusion_longer_than_memory_gives_new_id() -> None:
    tracker = MasaTracker()
    tid = int(step(tracker, 0, [0, 200], [0, 1]).ids[0])
    for t in range(1, 11):  # 10 frames without object 0
        step(tracker, t, [200], [1])
    assert tracker.num_tracks == 1
    res = step(tracker, 11, [0, 200], [0, 1])
    assert int(res.ids[0]) not in (tid, int(res.ids[1]))
    assert int(res.ids[0]) == 2  # ids are never reused
    assert int(res.ages[0]) == 0


def test_skipped_frame_ids_age_memory_by_difference() -> None:
    tracker = MasaTracker()
    tid = int(step(tracker, 0, [0], [0]).ids[0])
    assert int(step(tracker, 10, [0], [0]).ids[0]) == tid  # gap 10 == memo_tracklet_frames: still matched
    res = step(tracker, 21, [0], [0])  # gap 11: the track expired
    assert int(res.ids[0]) == tid + 1


def test_empty_frames_keep_memory_and_age_it() -> None:
    tracker = MasaTracker()
    tid = int(step(tracker, 0, [0, 50], [0, 1]).ids[0])
    embeds_before = tracker.track_embeds
    for t in range(1, 10):
        res = empty(tracker, t)
        assert res.ids.shape == res.match_scores.shape == res.ages.shape == (0,)
        assert tracker.num_tracks == 2
    torch.testing.assert_close(tracker.track_embeds, embeds_before)
    res = step(tracker, 10, [0], [0])
    assert int(res.ids[0]) == tid and int(res.ages[0]) == 10
    # Ten more empty frames: both tracks age out.
    for t in range(11, 21):
        empty(tracker, t)
    assert tracker.num_tracks == 0


def test_duplicate_low_score_detection_is_suppressed() -> None:
    tracker = MasaTracker()
    boxes = torch.tensor([box(0), box(1)])  # IoU 9/11
    res = tracker.update(boxes, torch.tensor([0.9, 0.4]), torch.zeros(2, dtype=torch.long), emb(0, 1), 0)
    assert res.ids.tolist() == [0, -1]
    assert res.ages.tolist() == [0, -1]
    assert tracker.num_tracks == 1


def test_duplicate_above_distractor_score_thr_is_not_suppressed() -> None:
    # Official rule: only detections scoring below distractor_score_thr can be removed.
    tracker = MasaTracker()
    boxes = torch.tensor([box(0), box(1)])
    res = tracker.update(boxes, torch.tensor([0.9, 0.85]), torch.zeros(2, dtype=torch.long), emb(0, 1), 0)
    assert res.ids.tolist() == [0, 1]


@pytest.mark.parametrize(("with_cats", "same_id"), [(True, False), (False, True)])
def test_with_cats_controls_cross_class_matches(with_cats: bool, same_id: bool) -> None:
    tracker = MasaTracker(TrackerConfig(with_cats=with_cats))
    tid = int(step(tracker, 0, [0], [0], labels=[3]).ids[0])
    res = step(tracker, 1, [0], [0], labels=[7])
    assert (int(res.ids[0]) == tid) is same_id


def test_low_score_detections_continue_but_do_not_start_tracks() -> None:
    tracker = MasaTracker()  # init 0.8, obj 0.5
    res = step(tracker, 0, [0, 100], [0, 1], scores=[0.9, 0.6])
    assert res.ids.tolist() == [0, -1]  # 0.6 <= init_score_thr: no new track
    res = step(tracker, 1, [0], [0], scores=[0.6])
    assert res.ids.tolist() == [0]  # 0.6 > obj_score_thr: continues track 0
    assert float(res.match_scores[0]) > 0.5
    embeds_before = tracker.track_embeds
    res = step(tracker, 2, [0], [0], scores=[0.4])
    assert res.ids.tolist() == [-1]  # 0.4 <= obj_score_thr: neither matched nor started
    assert res.match_scores.tolist() == [0.0] and res.ages.tolist() == [-1]
    torch.testing.assert_close(tracker.track_embeds, embeds_before)


def test_momentum_weights_the_new_embedding() -> None:
    tracker = MasaTracker(TrackerConfig(memo_momentum=0.8))
    a = torch.tensor([[5.0, 0.0]])
    b = torch.tensor([[4.0, 3.0]])
    one = torch.zeros(1, dtype=torch.long)
    tracker.update(torch.tensor([box(0)]), torch.tensor([0.9]), one, a, 0)
    res = tracker.update(torch.tensor([box(0)]), torch.tensor([0.9]), one, b, 1)
    assert res.ids.tolist() == [0]
    # One track, one detection: bisoftmax = 1, cosine = 0.8 -> (1 + 0.8) / 2.
    torch.testing.assert_close(res.match_scores, torch.tensor([0.9]))
    torch.testing.assert_close(tracker.track_embeds, torch.tensor([[0.2 * 5 + 0.8 * 4, 0.8 * 3]]))


def test_one_to_one_two_detections_cannot_share_a_track() -> None:
    tracker = MasaTracker()
    step(tracker, 0, [0], [0])
    # Both detections look exactly like track 0; the higher-scoring one (row 1) gets it.
    res = step(tracker, 1, [0, 40], [0, 0], scores=[0.85, 0.95])
    assert res.ids.tolist() == [1, 0]
    assert res.ages.tolist() == [0, 1]
    assert float(res.match_scores[0]) == 0.0 and float(res.match_scores[1]) > 0.5


def test_rows_are_returned_in_input_order() -> None:
    tracker = MasaTracker()
    step(tracker, 0, [0, 50, 100], [0, 1, 2], scores=[0.95, 0.9, 0.85])
    res = step(tracker, 1, [100, 0, 50], [2, 0, 1], scores=[0.81, 0.99, 0.9])
    assert res.ids.tolist() == [2, 0, 1]


def test_max_distance_gates_far_detections() -> None:
    cfg = TrackerConfig(max_distance=20.0, fps=6)
    tracker = MasaTracker(cfg)
    step(tracker, 0, [0], [0])
    res = step(tracker, 1, [500], [0])  # same appearance, 500 px away
    assert res.ids.tolist() == [1]
    res = step(tracker, 2, [505], [0])  # near the new track
    assert res.ids.tolist() == [1]


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
def test_accepts_any_float_dtype(dtype: torch.dtype) -> None:
    tracker = MasaTracker()
    lab = torch.zeros(2, dtype=torch.long)
    boxes = torch.tensor([box(0), box(50)], dtype=dtype)
    tracker.update(boxes, torch.tensor([0.9, 0.9], dtype=dtype), lab, emb(0, 1).to(dtype), 0)
    res = tracker.update(boxes, torch.tensor([0.9, 0.9], dtype=dtype), lab, emb(1, 0).to(dtype), 1)
    assert res.ids.tolist() == [1, 0]


def test_inference_mode_and_normal_calls_can_be_mixed() -> None:
    tracker = MasaTracker()
    with torch.inference_mode():
        step(tracker, 0, [0, 50], [0, 1])
    res = step(tracker, 1, [0, 50], [0, 1])  # memory built in inference mode, updated outside it
    assert res.ids.tolist() == [0, 1]
    with torch.inference_mode():
        assert step(tracker, 2, [0, 50], [0, 1]).ids.tolist() == [0, 1]
    embeds = emb(0).requires_grad_()
    res = tracker.update(torch.tensor([box(0)]), torch.tensor([0.9]), torch.zeros(1, dtype=torch.long), embeds, 3)
    assert res.ids.tolist() == [0] and not tracker.track_embeds.requires_grad


def _snapshot(tracker: MasaTracker) -> tuple[list[int], Tensor, int]:
    return tracker.track_ids.tolist(), tracker.track_embeds, tracker.num_tracks


@pytest.mark.parametrize(
    ("boxes", "scores", "labels", "embeds", "frame", "message"),
    [
        (
            torch.zeros(2, 4),
            torch.ones(3),
            torch.zeros(2, dtype=torch.long),
            emb(0, 1),
            5,
            "scores must have shape",
        ),
        (
            torch.zeros(2, 5),
            torch.ones(2),
            torch.zeros(2, dtype=torch.long),
            emb(0, 1),
            5,
            "boxes must have shape",
        ),
        (
            torch.zeros(2, 4),
            torch.ones(2),
            torch.zeros(1, dtype=torch.long),
            emb(0, 1),
            5,
            "labels must have",
        ),
        (torch.zeros(2, 4), torch.ones(2), torch.zeros(2, dtype=torch.long), emb(0), 5, "embeds must have"),
        (
            torch.zeros(1, 4),
            torch.ones(1),
            torch.zeros(1, dtype=torch.long),
            torch.ones(1, 3),
            5,
            "dimension 3",
        ),
        (torch.zeros(1, 4), torch.ones(1), torch.zeros(1), emb(0), 5, "labels must be an integer"),
        (torch.zeros(1, 4), torch.ones(1), torch.zeros(1, dtype=torch.long), emb(0), 1, "frame_id = 1"),
    ],
)
def test_bad_input_raises_and_leaves_memory_unchanged(
    boxes: Tensor, scores: Tensor, labels: Tensor, embeds: Tensor, frame: int, message: str
) -> None:
    tracker = MasaTracker()
    step(tracker, 0, [0, 50], [0, 1])
    step(tracker, 1, [0, 50], [0, 1])
    before = _snapshot(tracker)
    with pytest.raises(ValueError, match=message):
        tracker.update(boxes, scores, labels, embeds, frame)
    after = _snapshot(tracker)
    assert after[0] == before[0] and after[2] == before[2]
    torch.testing.assert_close(after[1], before[1])


@pytest.mark.parametrize("field", ["boxes", "scores", "embeds"])
def test_non_finite_input_raises_and_leaves_memory_unchanged(field: str) -> None:
    tracker = MasaTracker()
    step(tracker, 0, [0], [0])
    before = _snapshot(tracker)
    args = {
        "boxes": torch.tensor([box(0)]),
        "scores": torch.tensor([0.9]),
        "labels": torch.zeros(1, dtype=torch.long),
        "embeds": emb(0),
    }
    args[field] = args[field].clone()
    args[field].view(-1)[0] = float("nan")
    with pytest.raises(ValueError, match="finite"):
        tracker.update(frame_id=1, **args)
    assert tracker.num_tracks == before[2]
    torch.testing.assert_close(tracker.track_embeds, before[1])
    # The tracker keeps working and frame 1 is still accepted.
    assert step(tracker, 1, [0], [0]).ids.tolist() == [0]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"match_score_thr": 1.5}, r"tracker.match_score_thr = 1.5: must be a number in \[0, 1\]"),
        ({"init_score_thr": -0.1}, r"tracker.init_score_thr = -0.1: must be a number in \[0, 1\]"),
        ({"memo_momentum": float("nan")}, r"tracker.memo_momentum = nan"),
        ({"memo_tracklet_frames": -1}, r"tracker.memo_tracklet_frames = -1: must be an integer >= 0"),
        ({"memo_tracklet_frames": 2.5}, r"tracker.memo_tracklet_frames = 2.5"),
        ({"match_metric": "dot"}, r"tracker.match_metric = 'dot': must be one of \['bisoftmax', 'softmax'"),
        (
            {"max_distance": -5.0},
            r"tracker.max_distance = -5.0: must be -1 \(disabled\) or a finite number > 0",
        ),
        ({"fps": 0}, r"tracker.fps = 0: must be an integer >= 1"),
        ({"with_cats": "yes"}, r"tracker.with_cats = 'yes': must be True or False"),
    ],
)
def test_config_validation_messages(changes: dict[str, object], message: str) -> None:
    cfg = dataclasses.replace(TrackerConfig(), **changes)
    with pytest.raises(ValueError, match=message):
        cfg.validate()
    with pytest.raises(ValueError, match=message):
        MasaTracker(cfg)


def test_reset_forgets_tracks_and_restarts_ids() -> None:
    tracker = MasaTracker()
    step(tracker, 0, [0, 50], [0, 1])
    tracker.reset()
    assert tracker.num_tracks == 0
    assert step(tracker, 0, [0], [0]).ids.tolist() == [0]


# --- Agreement with a literal, loop-based transcription of the official algorithm ---------------


class _LoopReference:
    """Per-row loops, dict memory: the official MasaTaoTracker steps, on consecutive non-empty frames."""

    def __init__(self, cfg: TrackerConfig) -> None:
        self.cfg = cfg
        self.tracks: dict[int, dict[str, Tensor | int]] = {}
        self.next_id = 0

    def update(self, boxes: Tensor, scores: Tensor, labels: Tensor, embeds: Tensor, frame_id: int) -> list[int]:
        cfg = self.cfg
        inds = torch.sort(scores, descending=True, stable=True).indices
        boxes, scores, labels, embeds = boxes[inds], scores[inds], labels[inds], embeds[inds]
        ious = box_iou(boxes, boxes)
        valid = [True] * len(scores)
        for i in range(len(scores)):
            if scores[i] < cfg.distractor_score_thr and bool((ious[i, :i] > cfg.distractor_nms_thr).any()):
                valid[i] = False
        v = torch.tensor(valid)
        inds, boxes, scores, labels, embeds = inds[v], boxes[v], scores[v], labels[v], embeds[v]
        ids = [-1] * len(scores)
        if self.tracks:
            keys = list(self.tracks)
            memo_e = torch.stack([self.tracks[k]["embed"] for k in keys])
            sim = match_similarity(embeds, memo_e, cfg.match_metric)
            if cfg.max_distance != -1:
                memo_b = torch.stack([self.tracks[k]["bbox"] for k in keys])
                gaps = torch.tensor([frame_id - self.tracks[k]["last"] for k in keys])
                sim = sim * distance_gate(boxes, memo_b, gaps, cfg.max_distance, cfg.fps)
            if cfg.with_cats:
                memo_l = torch.stack([self.tracks[k]["label"] for k in keys])
                sim = sim * (labels[:, None] == memo_l[None]).float()
            for i in range(len(scores)):
                conf, j = torch.max(sim[i], dim=0)
                if conf > cfg.match_score_thr and scores[i] > cfg.obj_score_thr:
                    ids[i] = keys[int(j)]
                    sim[:i, j] = 0
                    sim[i + 1 :, j] = 0
        for i in range(len(scores)):
            if ids[i] == -1 and scores[i] > cfg.init_score_thr:
                ids[i] = self.next_id
                self.next_id += 1
        m = cfg.memo_momentum
        for i, tid in enumerate(ids):
            if tid in self.tracks:
                tr = self.tracks[tid]
                tr.update(bbox=boxes[i], label=labels[i], last=frame_id)
                tr["embed"] = (1 - m) * tr["embed"] + m * embeds[i]
            elif tid > -1:
                self.tracks[tid] = {
                    "bbox": boxes[i],
                    "label": labels[i],
                    "embed": embeds[i],
                    "last": frame_id,
                }
        for k in [k for k, tr in self.tracks.items() if frame_id - tr["last"] >= cfg.memo_tracklet_frames]:
            del self.tracks[k]
        out = [-1] * len(valid)
        for row, tid in zip(inds.tolist(), ids, strict=True):
            out[row] = tid
        return out


@pytest.mark.parametrize(
    "cfg",
    [
        TrackerConfig(),
        TrackerConfig.plug_and_play(),
        TrackerConfig(match_metric="cosine", with_cats=False, init_score_thr=0.3, obj_score_thr=0.2),
        TrackerConfig(match_metric="softmax", memo_tracklet_frames=3, memo_momentum=0.5, match_score_thr=0.3),
    ],
    ids=["official-defaults", "plug-and-play", "cosine", "softmax"],
)
def test_matches_loop_reference_on_random_scenes(cfg: TrackerConfig) -> None:
    gen = torch.Generator().manual_seed(1)
    proto = torch.randn(12, 16, generator=gen) * 2  # 12 object identities
    pos = torch.rand(12, 2, generator=gen) * 200
    tracker, ref = MasaTracker(cfg), _LoopReference(cfg)
    for frame in range(25):
        present = torch.nonzero(torch.rand(12, generator=gen) < 0.7).squeeze(1)
        n = present.numel()
        pos = pos + torch.randn(12, 2, generator=gen) * 5
        xy = pos[present]
        boxes = torch.cat([xy, xy + 30], dim=1)
        scores = torch.rand(n, generator=gen)
        labels = torch.randint(0, 2, (n,), generator=gen)
        embeds = proto[present] + torch.randn(n, 16, generator=gen) * 0.7
        res = tracker.update(boxes, scores, labels, embeds, frame)
        assert res.ids.tolist() == ref.update(boxes, scores, labels, embeds, frame), frame
        assert tracker.track_ids.tolist() == sorted(ref.tracks)
