"""Seeded degradations of given observations: reproducible, with the asked rates and noise."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from masa_core.eval.degrade import Degradation, degrade, degrade_frame
from masa_core.eval.given_boxes import track_given_boxes
from masa_core.formats.mot import MotRows
from tests.paths import REPO, TUD_CAMPUS_GT, TUD_CAMPUS_VIDEO

IMAGE = (640, 480)


def synthetic(frames: int = 500, per_frame: int = 40, seed: int = 7) -> dict[int, MotRows]:
    """Random boxes 10..100 px wide, 20..200 px tall, ids 1..per_frame in every frame."""
    rng = np.random.default_rng(seed)
    out = {}
    for f in range(1, frames + 1):
        wh = rng.uniform([10, 20], [100, 200], (per_frame, 2))
        xy = rng.uniform(0, [IMAGE[0] - 100, IMAGE[1] - 200], (per_frame, 2))
        out[f] = MotRows(np.hstack([xy, xy + wh]), np.arange(1, per_frame + 1), np.ones(per_frame))
    return out


def count(rows: dict[int, MotRows]) -> int:
    return sum(len(r) for r in rows.values())


def assert_same(a: dict[int, MotRows], b: dict[int, MotRows]) -> None:
    assert a.keys() == b.keys()
    for f in a:
        np.testing.assert_array_equal(a[f].boxes, b[f].boxes)
        np.testing.assert_array_equal(a[f].ids, b[f].ids)


def test_same_seed_same_result_other_seed_differs() -> None:
    rows = synthetic(frames=50)
    spec = Degradation(drop=0.3, jitter=0.1, fp_rate=2.0, seed=3)
    assert_same(degrade(rows, spec, IMAGE), degrade(rows, spec, IMAGE))
    first = degrade(rows, spec, IMAGE)
    other = degrade(rows, Degradation(drop=0.3, jitter=0.1, fp_rate=2.0, seed=4), IMAGE)
    assert any(not np.array_equal(first[f].boxes, other[f].boxes) for f in first)


def test_no_degradation_changes_nothing() -> None:
    rows = synthetic(frames=5)
    assert Degradation().is_identity and Degradation().tag == ""
    assert_same(degrade(rows, Degradation(seed=9), IMAGE), rows)


def test_a_frame_does_not_depend_on_other_frames() -> None:
    rows = synthetic(frames=20)
    spec = Degradation(drop=0.5, jitter=0.2, fp_rate=1.0, seed=1)
    whole = degrade(rows, spec, IMAGE)
    alone = degrade_frame(rows[17], 17, spec, IMAGE, np.array([[30.0, 60.0]]), 1_000_000)
    np.testing.assert_array_equal(whole[17].boxes[whole[17].ids < 1_000_000], alone.boxes[alone.ids < 1_000_000])


def test_drop_rate() -> None:
    rows = synthetic()  # 20,000 boxes
    for p in (0.1, 0.5, 0.9):
        kept = count(degrade(rows, Degradation(drop=p, seed=2), IMAGE))
        n = count(rows)
        sigma = np.sqrt(n * p * (1 - p))
        assert abs((n - kept) - n * p) < 4 * sigma, p
    assert count(degrade(rows, Degradation(drop=1.0), IMAGE)) == 0


def test_jitter_magnitude_and_kept_boxes_keep_their_ids() -> None:
    rows = synthetic()
    sigma = 0.1
    out = degrade(rows, Degradation(jitter=sigma, seed=5), IMAGE)
    shifts, scales = [], []
    for f, r in rows.items():
        np.testing.assert_array_equal(out[f].ids, r.ids)
        wh, new_wh = r.boxes[:, 2:] - r.boxes[:, :2], out[f].boxes[:, 2:] - out[f].boxes[:, :2]
        centre, new_centre = (r.boxes[:, :2] + r.boxes[:, 2:]) / 2, (out[f].boxes[:, :2] + out[f].boxes[:, 2:]) / 2
        shifts.append((new_centre - centre) / wh)
        scales.append(np.log(new_wh / wh))
    shifts, scales = np.concatenate(shifts), np.concatenate(scales)
    np.testing.assert_allclose(shifts.std(axis=0), sigma, rtol=0.03)
    np.testing.assert_allclose(scales.std(axis=0), sigma, rtol=0.03)
    np.testing.assert_allclose(shifts.mean(axis=0), 0, atol=0.003)


def test_jitter_does_not_depend_on_drop() -> None:
    rows = synthetic(frames=10)
    jittered = degrade(rows, Degradation(jitter=0.1, seed=1), IMAGE)
    both = degrade(rows, Degradation(drop=0.5, jitter=0.1, seed=1), IMAGE)
    for f, r in both.items():
        np.testing.assert_array_equal(r.boxes, jittered[f].boxes[np.isin(jittered[f].ids, r.ids)])


def test_false_positive_rate_and_boxes() -> None:
    rows = synthetic(frames=2000, per_frame=1)
    rate = 1.5
    out = degrade(rows, Degradation(fp_rate=rate, seed=11), IMAGE)
    fps = [r.boxes[r.ids >= 1_000_000] for r in out.values()]
    n = sum(len(b) for b in fps)
    assert abs(n - rate * 2000) < 4 * np.sqrt(rate * 2000)
    boxes = np.concatenate(fps)
    assert (boxes[:, :2] >= 0).all() and (boxes[:, 2] <= IMAGE[0]).all() and (boxes[:, 3] <= IMAGE[1]).all()
    assert (boxes[:, 2:] > boxes[:, :2]).all()
    for r in out.values():
        assert len(np.unique(r.ids)) == len(r)  # false-positive ids never collide
    # frames without any gt box receive false positives too
    assert count(degrade({}, Degradation(fp_rate=2.0), IMAGE, num_frames=100, sizes=np.array([[20.0, 40.0]]))) > 100


@pytest.mark.parametrize("sigma", [0.5, 3.0])
def test_extreme_settings_give_finite_positive_boxes(sigma: float) -> None:
    out = degrade(synthetic(frames=50), Degradation(drop=0.3, jitter=sigma, fp_rate=3.0, seed=0), IMAGE)
    boxes = np.concatenate([r.boxes for r in out.values()])
    assert np.isfinite(boxes).all()
    assert (boxes[:, 2:] > boxes[:, :2]).all()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"drop": 1.5}, "drop"), ({"drop": -0.1}, "drop"), ({"jitter": -1}, "jitter"), ({"fp_rate": np.nan}, "fp_rate")],
)
def test_bad_settings_refused(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        Degradation(**kwargs)


def test_tag_names_the_settings() -> None:
    assert Degradation(drop=0.2, fp_rate=1, seed=3).tag == "drop0.2_fp1_s3"


def test_given_boxes_with_degradation(tmp_path: Path) -> None:
    spec = Degradation(drop=0.3, jitter=0.05, fp_rate=1.0, seed=0)
    run = track_given_boxes(
        TUD_CAMPUS_VIDEO, TUD_CAMPUS_GT, "iou", max_frames=20, results_file=tmp_path / "iou.txt", degradation=spec
    )
    clean = track_given_boxes(TUD_CAMPUS_VIDEO, TUD_CAMPUS_GT, "iou", max_frames=20, results_file=tmp_path / "c.txt")
    given = count(run.given)
    fps = sum(int((r.ids >= 1_000_000).sum()) for r in run.given.values())
    assert run.degradation == spec and fps > 0
    assert given - fps < clean.metrics["num_gt_dets"]  # some boxes dropped
    assert run.metrics["FN"] > 0 and run.metrics["FP"] > 0 and run.metrics["LocA"] < clean.metrics["LocA"]
    assert run.metrics["num_gt_dets"] == clean.metrics["num_gt_dets"]  # scored against the unchanged gt
    again = track_given_boxes(
        TUD_CAMPUS_VIDEO, TUD_CAMPUS_GT, "iou", max_frames=20, results_file=tmp_path / "again.txt", degradation=spec
    )
    assert again.metrics == run.metrics


def test_script_flags(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = importlib.util.spec_from_file_location("eval_given_boxes", REPO / "scripts" / "eval_given_boxes.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    args = ["--sequences", str(TUD_CAMPUS_GT.parents[1]), "--trackers", "iou", "--max-frames", "5", "--quiet"]
    args += ["--results-dir", str(tmp_path), "--drop", "0.5", "--jitter", "0.1", "--fp-rate", "2"]
    args += ["--degrade-seed", "4"]
    script.main(args)
    table = capsys.readouterr().out
    assert "drop0.5_jit0.1_fp2_s4" in table
    assert (tmp_path / "TUD-Campus" / "iou_drop0.5_jit0.1_fp2_s4.txt").is_file()
    with pytest.raises(SystemExit):
        script.main([*args, "--drop", "2"])
